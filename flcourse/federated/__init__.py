"""Federated learning: clients that own their data, strategies that combine their work, one loop.

Layers, each importing only those above it in this list:

- :mod:`~.aggregators` pure array functions (the weighted average, ...); :mod:`~.defences` robust
  aggregation (median, Krum, ...), also pure;
- :mod:`~.messages` what travels and how a reply is checked;
- :mod:`~.local`, :mod:`~.client` local training and the client; :mod:`~.federation` who exists;
- :mod:`~.runners` where clients run; :mod:`~.grid` one round's exchanges; :mod:`~.simtime` the
  clients' speeds, links and presence on a simulated clock;
- :mod:`~.strategies` one file per algorithm; :mod:`~.checkpoint`, :mod:`~.identity`,
  :mod:`~.history` what a run saves;
- :mod:`~.server` the one round loop; :mod:`~.attacks` malicious clients, for studying defences;
  :mod:`~.secagg_client` a client behind secure aggregation.

See notebooks 05, 06, 07 and 08.
"""
from . import attacks, defences
from .aggregators import weighted_average
from .checkpoint import CheckpointError
from .client import NumpyClient, check_fit_config, make_clients
from .federation import OnDemand
from .grid import RoundGrid
from .history import load_history, save_history
from .local import LocalStep, full_batch_if_none, local_sgd, n_local_steps
from .messages import DEFAULT_MAX_EXAMPLES, FitRes, InvalidUpdateError, Update, check_fit_res, check_update
from .runners import ClientFailure, InProcessClients, ProcessClients
from .secagg_client import SecAggClient
from .server import Server
from .simtime import SimulatedSystems, settle_round, simulated_seconds
from .strategies import (Bulyan, CenteredClipping, DPFedAvg, FedAvg, FedAvgM, FedBuff, FedMedian, FedProx, FedSGD,
                         FedTrimmedAvg, GeometricMedian, Krum, NormBounding, RobustFedAvg, Scaffold, SecAggFedAvg,
                         Strategy, TimedFedAvg, TimedFedProx, available_strategies, sample_clients)

__all__ = ["DEFAULT_MAX_EXAMPLES", "Bulyan", "CenteredClipping", "CheckpointError", "ClientFailure", "DPFedAvg",
           "FedAvg", "FedAvgM", "FedBuff", "FedMedian", "FedProx", "FedSGD", "FedTrimmedAvg", "FitRes",
           "GeometricMedian", "InProcessClients", "InvalidUpdateError", "Krum", "LocalStep", "NormBounding",
           "NumpyClient", "OnDemand", "ProcessClients", "RobustFedAvg", "RoundGrid", "Scaffold", "SecAggClient",
           "SecAggFedAvg", "Server", "SimulatedSystems", "Strategy", "TimedFedAvg", "TimedFedProx", "Update",
           "attacks", "available_strategies", "check_fit_config", "check_fit_res", "check_update", "defences",
           "full_batch_if_none", "load_history", "local_sgd", "make_clients", "n_local_steps", "sample_clients",
           "save_history", "settle_round", "simulated_seconds", "weighted_average"]
