"""The federated server: the one loop that runs rounds.

Each round: sample -> broadcast -> local work -> collect -> validate -> aggregate -> evaluate.
Clients run in this process (:class:`InProcessClients`) or each in its own OS process
(:class:`ProcessClients`); the loop is the same. No client can crash the server or take over
the model: every reply is checked (a plain finite float array of the right shape, bounded in
size, with at most as many examples as the client holds) before any arithmetic touches it,
and whatever goes wrong while checking it counts as that client's failure. See notebook 05.
"""
from __future__ import annotations

import math
import numbers
import os
import time
import warnings
from pathlib import Path

import numpy as np

from ._validation import check_choice, check_params, check_rng, check_scalar, derived_rng
from .checkpoint import CheckpointWriter, load_checkpoint
from .history import load_history, save_history
from .identity import run_identity
from .federated import DEFAULT_MAX_EXAMPLES, check_update
from .models import Model
from .optim import check_eval_set
from .runners import ClientFailure, InProcessClients, ProcessClients, as_client_list, client_ids

__all__ = ["ClientFailure", "InProcessClients", "ProcessClients", "Server", "load_history",
           "save_history"]

MAX_TIMEOUT = 86400.0  # a day: longer is a mistake, and too long for the selector


class Server:
    """Runs federated rounds with a strategy over a set of clients.

    Parameters
    ----------
    model : Model
        Gives the shape of the parameters and evaluates them centrally.
    strategy : FedAvg, FedSGD or another object with ``configure_fit`` and ``aggregate_fit``
    clients : InProcessClients, ProcessClients, or a list of clients (run in-process)
        Client ids (``cid``) must be distinct; a run depends on the set of clients, not on
        their order.
    test_set : tuple (X_test, y_test), optional
        Evaluate the global parameters centrally after every round.
    evaluate_clients : bool, default=False
        Also ask the selected clients to evaluate the new parameters on their own data.
    on_invalid : {"fail", "drop"}, default="fail"
        What a failed client or an invalid update does to the round: fail it with
        :class:`ClientFailure`, or drop that client (recorded in the history).
    round_timeout : float in (0, 86400], default=60.0
        Seconds a client may take in a round (process clients).
    max_examples : int or None
        The most examples any update may claim. A client that declares its size
        (``n_samples``, as :class:`NumpyClient` does) may never claim more than that; one that
        declares none is held to ``max_examples``, or to 10**9 when this is None.
    param_bound : float, default=1e6
        An update with a parameter larger than this in absolute value is invalid.
    checkpoint_path : str or Path, optional
        Save the server's state there after every round (see :meth:`run`'s ``resume``).
    seed : int, Generator or None
        Drives the starting parameters, the selection of clients and the seeds of their work.

    Attributes
    ----------
    params_ : ndarray of shape (n_params,)
    history_ : dict of lists, one entry per round (round 0: before training)
    """

    def __init__(self, model: Model, strategy, clients, *, test_set=None,
                 evaluate_clients: bool = False, on_invalid: str = "fail",
                 round_timeout: float = 60.0, max_examples: int | None = None,
                 param_bound: float = 1e6, checkpoint_path=None, seed=None):
        self.model, self.strategy = model, strategy
        if not hasattr(clients, "fit"):
            clients = as_client_list(clients, "Server")
            client_ids(clients, "Server")
            clients = InProcessClients(clients)
        self.clients = clients
        self.test_set, self.evaluate_clients = test_set, evaluate_clients
        self.on_invalid, self.round_timeout = on_invalid, round_timeout
        self.max_examples, self.param_bound = max_examples, param_bound
        self.checkpoint_path, self.seed = checkpoint_path, seed

    def run(self, n_rounds: int, *, params=None, resume: bool = False, progress: bool = False,
            callback=None) -> "Server":
        """Run rounds until ``n_rounds`` have been done in all; return ``self``.

        With ``resume=True`` the state saved in ``checkpoint_path`` is loaded and checked
        against this server (model, strategy, clients), and the run goes on from the round
        after it, ending exactly where an uninterrupted run would. ``callback(server_round,
        server)``, if given, is called after every round, once its checkpoint is saved.
        """
        self._validate(n_rounds, resume, progress, callback)
        self._limits = self._example_limits()
        writer = self._checkpoint_writer()
        with writer:
            first = self._resume(n_rounds, writer) + 1 if resume else self._start(params, writer)
            with self.clients:
                for server_round in _progress(range(first, n_rounds + 1), progress):
                    row = self._round(server_round)
                    writer.save(server_round, self.params_, self._rng.bit_generator.state, [row])
                    if callback is not None:
                        callback(server_round, self)
        return self

    def _checkpoint_writer(self):
        if self.checkpoint_path is None:
            return _NoCheckpoint()
        return CheckpointWriter(self.checkpoint_path, self._identity())

    def _start(self, params, writer) -> int:
        self._rng, self.history_ = check_rng(self.seed, "Server"), {}
        if params is None:
            self.params_ = self.model.init_params(seed=derived_rng(self.seed, 1, "Server"))
        else:
            self.params_ = check_params(params, self.model.n_params, "Server.run").copy()
        writer.start([self._record(0, [], [], 0, 0, 0.0)])
        return 1

    def _resume(self, n_rounds, writer) -> int:
        if self.checkpoint_path is None:
            raise ValueError("The 'checkpoint_path' parameter of Server must name a saved checkpoint "
                             "to resume from. Got None instead.")
        saved = load_checkpoint(self.checkpoint_path, writer.identity)  # computed once per run
        if saved.server_round > n_rounds:
            raise ValueError(f"The 'n_rounds' parameter of Server.run must be at least the round "
                             f"of the checkpoint to resume ({saved.server_round}). Got {n_rounds} instead.")
        if saved.fell_back:
            warnings.warn(f"The newest state in {self.checkpoint_path} was torn (the process died while "
                          f"saving it); resuming from the one saved before it, round {saved.server_round}.",
                          stacklevel=3)
        self.params_, self.history_ = saved.params, saved.history
        self._rng = np.random.Generator(getattr(np.random, saved.rng_state["bit_generator"])())
        self._rng.bit_generator.state = saved.rng_state
        writer.resume(saved.server_round)
        return saved.server_round

    def _round(self, server_round) -> dict:
        started = time.perf_counter()
        positions, config = self.strategy.configure_fit(server_round, len(self.clients.cids), self._rng)
        cids = [self.clients.cids[p] for p in positions]
        outcomes = self.clients.fit(cids, self.params_, config, self.round_timeout)
        results, dropped = self._validated(outcomes)
        if results:
            self.params_ = check_params(self.strategy.aggregate_fit(self.params_, results),
                                        self.model.n_params, f"{type(self.strategy).__name__}.aggregate_fit")
        sent, received = len(cids) * self.params_.nbytes, len(results) * self.params_.nbytes
        return self._record(server_round, cids, dropped, sent, received, time.perf_counter() - started)

    def _validated(self, outcomes):
        results, dropped = [], []
        for cid in sorted(outcomes):
            try:
                results.append(self._check_result(cid, *outcomes[cid]))
            except Exception as error:  # noqa: BLE001 - whatever a client sent, it is its failure
                self._fail_or_drop(cid, error, dropped)
        return results, dropped

    def _check_result(self, cid, status, payload):
        if status != "ok":
            raise ClientFailure(payload)
        return check_update(cid, payload, self.model.n_params, max_examples=self._limits[cid],
                            param_bound=self.param_bound)

    def _fail_or_drop(self, cid, error, dropped):
        message = str(error) if isinstance(error, (ClientFailure, ValueError)) and str(error) \
            else f"client {cid}: checking its reply raised {type(error).__name__}: {error}"
        if self.on_invalid == "fail":
            raise ClientFailure(f"round failed: {message}") from None
        dropped.append([int(cid), message.splitlines()[0]])

    def _record(self, server_round, cids, dropped, sent, received, seconds) -> dict:
        row = {"round": server_round, "n_selected": len(cids), "n_dropped": len(dropped),
               "dropped": dropped, "bytes_sent": sent, "bytes_received": received,
               "wall_seconds": seconds}
        if self.test_set is not None:
            X_test, y_test = self.test_set
            row["test_loss"] = float(self.model.loss(self.params_, X_test, y_test))
            row["test_accuracy"] = self.model.score(self.params_, X_test, y_test)
        if self.evaluate_clients and len(cids):
            row.update(self._client_metrics(cids))
        for key, value in row.items():
            self.history_.setdefault(key, []).append(value)
        return row

    def _client_metrics(self, cids):
        """The clients' size-weighted loss and accuracy on their own data; failures follow
        the policy like failed updates (listed in ``eval_dropped`` under "drop")."""
        outcomes = self.clients.evaluate(list(cids), self.params_, {}, self.round_timeout)
        done, dropped = [], []
        for cid in sorted(outcomes):
            try:
                done.append(self._check_evaluation(cid, *outcomes[cid]))
            except Exception as error:  # noqa: BLE001
                self._fail_or_drop(cid, error, dropped)
        scored = [(n, accuracy) for _, n, accuracy in done if accuracy is not None]
        return {"client_loss": _weighted_mean([(n, loss) for loss, n, _ in done]),
                "client_accuracy": _weighted_mean(scored), "eval_dropped": dropped}

    def _check_evaluation(self, cid, status, payload):
        if status != "ok":
            raise ClientFailure(payload)
        if not isinstance(payload, (tuple, list)) or len(payload) != 3:
            raise ValueError(f"evaluation from client {cid} must be a tuple (loss, n_examples, metrics)")
        loss, n_examples, metrics = payload
        if isinstance(loss, bool) or not isinstance(loss, numbers.Real) or not math.isfinite(loss):
            raise ValueError(f"evaluation from client {cid} must report a finite loss; got {loss!r}")
        if isinstance(n_examples, bool) or not isinstance(n_examples, numbers.Integral) \
                or not 1 <= n_examples <= self._limits[cid]:
            raise ValueError(f"evaluation from client {cid} must report n_examples as an int in "
                             f"[1, {self._limits[cid]}]")
        accuracy = metrics.get("accuracy") if isinstance(metrics, dict) else None
        accuracy = float(accuracy) if isinstance(accuracy, numbers.Real) and 0 <= accuracy <= 1 else None
        return float(loss), int(n_examples), accuracy

    def _client_sizes(self):
        sizes = self.clients.sizes() if hasattr(self.clients, "sizes") else {}
        return [(cid, sizes.get(cid)) for cid in self.clients.cids]

    def _identity(self) -> dict:
        prints = self.clients.fingerprints() if hasattr(self.clients, "fingerprints") else {}
        clients = [(cid, n, prints.get(cid)) for cid, n in self._client_sizes()]
        return run_identity(self.model, self.strategy, clients)

    def _example_limits(self) -> dict:
        """The most examples each client's update may claim."""
        default = DEFAULT_MAX_EXAMPLES if self.max_examples is None else self.max_examples
        return {cid: default if size is None else min(size, default) for cid, size in self._client_sizes()}

    def _validate(self, n_rounds, resume, progress, callback):
        owner = "Server"
        check_scalar(n_rounds, "n_rounds", "Server.run", int, low=0, closed="left")
        for name, value in (("resume", resume), ("progress", progress)):
            _check_bool(value, name, "Server.run")
        if callback is not None and not callable(callback):
            raise TypeError(f"The 'callback' parameter of Server.run must be callable or None. "
                            f"Got {type(callback).__name__} instead.")
        if not isinstance(self.model, Model):
            raise TypeError(f"The 'model' parameter of {owner} must be a flcourse Model. "
                            f"Got {type(self.model).__name__} instead.")
        for method in ("configure_fit", "aggregate_fit"):
            if not callable(getattr(self.strategy, method, None)):
                raise TypeError(f"The 'strategy' parameter of {owner} must have a {method} method "
                                f"(FedAvg, FedSGD, ...). Got {type(self.strategy).__name__} instead.")
        if not isinstance(getattr(self.clients, "cids", None), list):
            raise TypeError(f"The 'clients' parameter of {owner} must be a list of clients, "
                            f"InProcessClients or ProcessClients. Got {type(self.clients).__name__} instead.")
        self._validate_settings(owner)
        if hasattr(self.strategy, "validate"):
            self.strategy.validate()

    def _validate_settings(self, owner):
        if self.test_set is not None:
            if not isinstance(self.test_set, (tuple, list)) or len(self.test_set) != 2:
                raise TypeError(f"The 'test_set' parameter of {owner} must be a pair (X_test, y_test) "
                                f"or None. Got {type(self.test_set).__name__} instead.")
            check_eval_set(self.model, self.test_set, owner, name="test_set")
        _check_bool(self.evaluate_clients, "evaluate_clients", owner)
        check_choice(self.on_invalid, "on_invalid", owner, {"fail", "drop"})
        check_scalar(self.round_timeout, "round_timeout", owner, low=0, high=MAX_TIMEOUT, closed="right")
        if self.max_examples is not None:
            check_scalar(self.max_examples, "max_examples", owner, int, low=1, closed="left")
        check_scalar(self.param_bound, "param_bound", owner, low=0, allow_inf=True)
        if self.checkpoint_path is not None:
            _check_checkpoint_path(self.checkpoint_path, owner)
        check_rng(self.seed, owner)

    def __repr__(self) -> str:
        return f"Server({self.model!r}, {self.strategy!r}, n_clients={len(self.clients)})"


def _weighted_mean(pairs) -> float:
    """sum(n * value) / sum(n) over (n, value) pairs; NaN for none."""
    if not pairs:
        return math.nan
    weights, values = zip(*pairs)
    return float(np.average(values, weights=weights))


class _NoCheckpoint:
    """What the round loop saves to when there is no ``checkpoint_path``: nothing."""

    def start(self, rows):
        pass

    def resume(self, server_round):
        pass

    def save(self, *args):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _check_checkpoint_path(path, owner):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"The 'checkpoint_path' parameter of {owner} must be a str, a path or "
                        f"None. Got {type(path).__name__} instead.")
    folder = Path(path).parent
    if Path(path).is_dir() or not folder.is_dir():
        what = "a folder" if Path(path).is_dir() else f"in {folder}, which is not a folder"
        raise ValueError(f"The 'checkpoint_path' parameter of {owner} must name a file in an "
                         f"existing folder. Got {os.fspath(path)!r}, {what}, instead.")


def _check_bool(value, name, owner):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"The {name!r} parameter of {owner} must be a bool. Got {value!r} instead.")


def _progress(rounds, show):
    if not show:
        return rounds
    from tqdm.auto import tqdm

    return tqdm(rounds, desc="rounds", unit="round")
