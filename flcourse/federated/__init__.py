"""Federated learning: clients that own their data, strategies that combine their work, one loop.

Layers, each importing only those above it in this list:

- :mod:`~.aggregators` pure array functions (the weighted average, ...);
- :mod:`~.messages` what travels and how a reply is checked;
- :mod:`~.local`, :mod:`~.client` local training and the client; :mod:`~.federation` who exists;
- :mod:`~.runners` where clients run; :mod:`~.grid` one round's exchanges;
- :mod:`~.strategies` one file per algorithm; :mod:`~.checkpoint`, :mod:`~.identity`,
  :mod:`~.history` what a run saves;
- :mod:`~.server` the one round loop.

See notebooks 05 and 06.
"""
from .aggregators import weighted_average
from .checkpoint import CheckpointError
from .client import NumpyClient, check_fit_config, make_clients
from .federation import OnDemand
from .grid import RoundGrid
from .history import load_history, save_history
from .local import LocalStep, full_batch_if_none, local_sgd, n_local_steps
from .messages import DEFAULT_MAX_EXAMPLES, FitRes, InvalidUpdateError, Update, check_fit_res, check_update
from .runners import ClientFailure, InProcessClients, ProcessClients
from .server import Server
from .strategies import (FedAvg, FedAvgM, FedProx, FedSGD, Scaffold, Strategy, available_strategies,
                         sample_clients)

__all__ = ["DEFAULT_MAX_EXAMPLES", "CheckpointError", "ClientFailure", "FedAvg", "FedAvgM", "FedProx",
           "FedSGD", "FitRes", "InProcessClients", "InvalidUpdateError", "LocalStep", "NumpyClient",
           "OnDemand", "ProcessClients", "RoundGrid", "Scaffold", "Server", "Strategy", "Update",
           "available_strategies", "check_fit_config", "check_fit_res", "check_update",
           "full_batch_if_none", "load_history", "local_sgd", "make_clients", "n_local_steps",
           "sample_clients", "save_history", "weighted_average"]
