"""The checks of :class:`~flcourse.federated.server.Server`'s settings, made when a run starts."""
from __future__ import annotations

import os
from pathlib import Path

from .._validation import check_bool, check_choice, check_optional_callable, check_rng, check_scalar
from ..models import Model
from ..optim import check_eval_set
from .federation import OnDemand, client_ids
from .runners import InProcessClients, ProcessClients

MAX_TIMEOUT = 86400.0  # a day: longer is a mistake, and too long for the selector


def as_runner(clients, owner: str):
    """A runner as given, or InProcessClients over a list of clients or an OnDemand federation."""
    if isinstance(clients, OnDemand):
        return InProcessClients(clients)
    if isinstance(clients, (InProcessClients, ProcessClients)) or callable(getattr(clients, "set_states", None)):
        return clients
    clients = list_of_clients(clients, owner)
    client_ids(clients, owner)  # the errors name the owner, not the runner made here
    return InProcessClients(clients)


def list_of_clients(clients, owner: str) -> list:
    """``clients`` (any iterable of clients) as a list; TypeError naming it otherwise."""
    if isinstance(clients, (str, bytes, dict)) or not hasattr(clients, "__iter__"):
        raise TypeError(f"The 'clients' parameter of {owner} must be a list of clients, an OnDemand "
                        f"federation, InProcessClients or ProcessClients. Got {type(clients).__name__} instead.")
    return list(clients)


def check_run(server, n_rounds, resume, progress, callback) -> None:
    """Raise a clear error for a bad argument of ``Server.run`` or a bad setting of ``server``."""
    check_scalar(n_rounds, "n_rounds", "Server.run", int, low=0, closed="left")
    check_bool(resume, "resume", "Server.run")
    check_bool(progress, "progress", "Server.run")
    check_optional_callable(callback, "callback", "Server.run")
    check_server(server, "Server")


def check_server(server, owner: str) -> None:
    """Raise a clear error for a setting of ``server`` that cannot work."""
    if not isinstance(server.model, Model):
        raise TypeError(f"The 'model' parameter of {owner} must be a flcourse Model. "
                        f"Got {type(server.model).__name__} instead.")
    check_strategy(server.strategy, owner)
    if server.test_set is not None:
        if not isinstance(server.test_set, (tuple, list)) or len(server.test_set) != 2:
            raise TypeError(f"The 'test_set' parameter of {owner} must be a pair (X_test, y_test) "
                            f"or None. Got {type(server.test_set).__name__} instead.")
        check_eval_set(server.model, server.test_set, owner, name="test_set")
    check_bool(server.evaluate_clients, "evaluate_clients", owner)
    check_choice(server.on_invalid, "on_invalid", owner, {"fail", "drop"})
    check_scalar(server.round_timeout, "round_timeout", owner, low=0, high=MAX_TIMEOUT, closed="right")
    if server.max_examples is not None:
        check_scalar(server.max_examples, "max_examples", owner, int, low=1, closed="left")
    check_scalar(server.param_bound, "param_bound", owner, low=0, allow_inf=True)
    if server.checkpoint_path is not None:
        check_checkpoint_path(server.checkpoint_path, owner)
    check_rng(server.seed, owner)


def check_strategy(strategy, owner: str) -> None:
    """A strategy must have the life cycle's methods; its own parameters are checked too."""
    needed = [] if callable(getattr(strategy, "run_round", None)) else ["configure_fit", "aggregate_fit"]
    needed += ["initialize", "get_state", "set_state", "get_params"]
    for method in needed:
        if not callable(getattr(strategy, method, None)):
            raise TypeError(f"The 'strategy' parameter of {owner} must have a {method} method "
                            f"(a flcourse Strategy: FedAvg, FedProx, ...). Got {type(strategy).__name__} instead.")
    if callable(getattr(strategy, "validate", None)):
        strategy.validate()


def check_checkpoint_path(path, owner: str) -> None:
    """The path must name a file in an existing folder."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"The 'checkpoint_path' parameter of {owner} must be a str, a path or "
                        f"None. Got {type(path).__name__} instead.")
    folder = Path(path).parent
    if Path(path).is_dir() or not folder.is_dir():
        what = "a folder" if Path(path).is_dir() else f"in {folder}, which is not a folder"
        raise ValueError(f"The 'checkpoint_path' parameter of {owner} must name a file in an "
                         f"existing folder. Got {os.fspath(path)!r}, {what}, instead.")
