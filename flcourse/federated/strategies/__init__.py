"""Strategies, one file each: what a server asks of its clients and how it combines their answers.

Every strategy is a :class:`Strategy`; :func:`available_strategies` finds them all by name
(the command line's ``--strategy``), so a new strategy is one new file. See notebooks 05, 06, 07 and 08.
"""
import importlib
import pkgutil

from .base import Strategy, sample_clients
from .dpfedavg import DPFedAvg, clip_by_norm
from .fedavg import FedAvg, FedSGD, split_stragglers
from .fedavgm import FedAvgM
from .fedbuff import FedBuff
from .fedprox import FedProx
from .robust import CenteredClipping, FedMedian, FedTrimmedAvg, GeometricMedian, NormBounding, RobustFedAvg
from .robust_krum import Bulyan, Krum
from .scaffold import Scaffold
from .secagg import SecAggFedAvg
from .timed import TimedFedAvg, TimedFedProx


def available_strategies() -> dict:
    """{lower-case name: class} of every Strategy defined in this package's modules (each
    module is imported, so a new file is enough)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    found, pending = {}, list(Strategy.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith(__name__ + "."):
            found.setdefault(cls.__name__.lower(), cls)
    return dict(sorted(found.items()))


__all__ = ["Bulyan", "CenteredClipping", "DPFedAvg", "FedAvg", "FedAvgM", "FedBuff", "FedMedian", "FedProx", "FedSGD",
           "FedTrimmedAvg", "GeometricMedian", "Krum", "NormBounding", "RobustFedAvg", "Scaffold", "SecAggFedAvg",
           "Strategy", "TimedFedAvg", "TimedFedProx", "available_strategies", "clip_by_norm", "sample_clients",
           "split_stragglers"]
