"""The federated server: the one loop that runs rounds.

Each round: the strategy configures -> the grid sends and collects -> every reply is checked ->
the strategy aggregates -> the new parameters are evaluated -> the round is recorded and saved.
A strategy with several stages in a round (secure aggregation) defines
``run_round(server_round, params, cids, rng, grid)`` and calls ``grid.send`` once per stage;
the loop does not change. Clients run in this process (:class:`InProcessClients`, also on
demand) or each in its own OS process (:class:`ProcessClients`); the numbers are the same.
No client can crash the server or take over the model: every reply is checked (a plain finite
float array of the right shape, bounded in size, with at most as many examples as the client
holds) before any arithmetic touches it. See notebooks 05 and 06.
"""
from __future__ import annotations

import math
import time
import warnings

import numpy as np

from .._validation import check_params, check_rng, derived_rng
from ..models import Model
from .checkpoint import CheckpointWriter, NoCheckpoint, flatten_state, load_checkpoint, unflatten_state
from .grid import RoundGrid
from .history import load_history, save_history
from .identity import run_identity
from .messages import DEFAULT_MAX_EXAMPLES
from .runners import ClientFailure, InProcessClients, ProcessClients
from .server_checks import as_runner, check_run, check_server

__all__ = ["ClientFailure", "InProcessClients", "ProcessClients", "Server", "load_history",
           "save_history"]


class Server:
    """Runs federated rounds with a strategy over a federation of clients.

    Parameters
    ----------
    model : Model
        Gives the shape of the parameters and evaluates them centrally.
    strategy : Strategy
        FedAvg, FedProx, Scaffold, ... (:mod:`flcourse.federated.strategies`).
    clients : InProcessClients, ProcessClients, OnDemand, or a list of clients (in-process)
        Client ids (``cid``) must be distinct; a run depends on the set of clients, not on
        their order.
    test_set : tuple (X_test, y_test), optional
        Evaluate the global parameters centrally after every round.
    evaluate_clients : bool, default=False
        Also ask the selected clients to evaluate the new parameters on their own data.
    on_invalid : {"fail", "drop"}, default="fail"
        What a failed client or an invalid reply does to the round: fail it with
        :class:`ClientFailure`, or drop that client (recorded in the history).
    round_timeout : float in (0, 86400], default=60.0
        Seconds a client may take in each stage of a round (process clients).
    max_examples : int or None
        The most examples any update may claim. A client that declares its size
        (``n_samples``) may never claim more than that; one that declares none is held to
        ``max_examples``, or to 10**9 when this is None.
    param_bound : float, default=1e6
        An update with a parameter larger than this in absolute value is invalid.
    checkpoint_path : str or Path, optional
        Save the server's, the strategy's and the clients' state there after every round.
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
        self.clients = as_runner(clients, "Server")
        self.test_set, self.evaluate_clients = test_set, evaluate_clients
        self.on_invalid, self.round_timeout = on_invalid, round_timeout
        self.max_examples, self.param_bound = max_examples, param_bound
        self.checkpoint_path, self.seed = checkpoint_path, seed

    def run(self, n_rounds: int, *, params=None, resume: bool = False, progress: bool = False,
            callback=None) -> "Server":
        """Run rounds until ``n_rounds`` have been done in all; return ``self``.

        With ``resume=True`` the state saved in ``checkpoint_path`` is loaded and checked
        against this server (model, strategy and its parameters, clients), and the run goes on
        from the round after it, ending exactly where an uninterrupted run would: parameters,
        strategy state and client state included. ``callback(server_round, server)``, if
        given, is called after every round, once its checkpoint is saved.
        """
        check_run(self, n_rounds, resume, progress, callback)
        self._limits, self._client_states = {}, {}
        writer = self._checkpoint_writer()
        with writer, self.clients:
            first = self._resume(n_rounds, writer) + 1 if resume else self._start(params, writer)
            for server_round in _progress(range(first, n_rounds + 1), progress):
                row, contacted = self._round(server_round)
                writer.save(server_round, self.params_, self._rng.bit_generator.state, [row],
                            self._state_to_save(writer, contacted))
                if callback is not None:
                    callback(server_round, self)
        return self

    def _checkpoint_writer(self):
        if self.checkpoint_path is None:
            return NoCheckpoint()
        identity = run_identity(self.model, self.strategy, self.clients.fingerprint())
        return CheckpointWriter(self.checkpoint_path, identity)

    def _start(self, params, writer) -> int:
        self._rng, self.history_ = check_rng(self.seed, "Server"), {}
        if params is None:
            self.params_ = self.model.init_params(seed=derived_rng(self.seed, 1, "Server"))
        else:
            self.params_ = check_params(params, self.model.n_params, "Server.run").copy()
        self.strategy.initialize(self.params_.copy())
        self.clients.set_states({})
        writer.start([self._record(0, [], RoundGrid(self.clients, 0, "drop", self._limit), 0.0, {})])
        return 1

    def _resume(self, n_rounds, writer) -> int:
        if self.checkpoint_path is None:
            raise ValueError("The 'checkpoint_path' parameter of Server must name a saved checkpoint "
                             "to resume from. Got None instead.")
        saved = load_checkpoint(self.checkpoint_path, writer.identity)
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
        state = unflatten_state(saved.extra_state)
        self.strategy.initialize(self.params_.copy())
        self.strategy.set_state(state.get("strategy", {}))
        self._client_states = {int(cid): s for cid, s in state.get("clients", {}).items()}
        self.clients.set_states(self._client_states)
        writer.resume(saved.server_round)
        return saved.server_round

    def _round(self, server_round):
        started = time.perf_counter()
        grid = RoundGrid(self.clients, self.round_timeout, self.on_invalid, self._limit,
                         n_params=self.model.n_params, param_bound=self.param_bound)
        run_round = getattr(self.strategy, "run_round", None) or self._fit_round
        params, metrics = run_round(server_round, self.params_, self.clients.cids, self._rng, grid)
        owner = f"{type(self.strategy).__name__}.aggregate_fit"
        self.params_ = check_params(params, self.model.n_params, owner).copy()
        contacted = sorted(grid.contacted)
        return self._record(server_round, contacted, grid, time.perf_counter() - started, metrics), contacted

    def _fit_round(self, server_round, params, cids, rng, grid):
        """The one-stage round of FedAvg and its kin: configure, fit, aggregate."""
        instructions = self.strategy.configure_fit(server_round, params.copy(), cids, rng)
        results, failures = grid.fit(params, instructions, getattr(self.strategy, "required_extras", ()))
        if not results:
            return params, {}
        return self.strategy.aggregate_fit(server_round, params.copy(), results, failures)

    def _limit(self, cid) -> int:
        """The most examples client ``cid``'s updates may claim."""
        if cid not in self._limits:
            default = DEFAULT_MAX_EXAMPLES if self.max_examples is None else self.max_examples
            size = self.clients.size(cid)
            self._limits[cid] = default if size is None else min(size, default)
        return self._limits[cid]

    def _state_to_save(self, writer, contacted) -> dict | None:
        if isinstance(writer, NoCheckpoint):
            return None
        self._client_states.update(self.clients.get_states(contacted))
        return flatten_state({"strategy": self.strategy.get_state(),
                              "clients": {str(cid): s for cid, s in sorted(self._client_states.items())}})

    def _record(self, server_round, cids, grid, seconds, metrics) -> dict:
        row = {"round": server_round, "n_selected": len(cids), "n_dropped": len(grid.dropped),
               "dropped": grid.dropped, "bytes_sent": grid.bytes_sent,
               "bytes_received": grid.bytes_received, "wall_seconds": seconds,
               "wire_bytes_sent": grid.wire_bytes_sent, "wire_bytes_received": grid.wire_bytes_received}
        if self.test_set is not None:
            X_test, y_test = self.test_set
            row["test_loss"] = float(self.model.loss(self.params_, X_test, y_test))
            row["test_accuracy"] = self.model.score(self.params_, X_test, y_test)
        if self.evaluate_clients and server_round == 0:  # every list has one entry per round
            row.update({"client_loss": None, "client_accuracy": None, "eval_dropped": []})
        elif self.evaluate_clients:
            row.update(self._client_metrics(cids, grid))
        row["strategy_metrics"] = dict(metrics)
        for key, value in row.items():
            self.history_.setdefault(key, []).append(value)
        return row

    def _client_metrics(self, cids, grid):
        """The clients' size-weighted loss and accuracy on their own data; failures follow
        the policy like failed updates (listed in ``eval_dropped`` under "drop")."""
        done, dropped = grid.evaluate(self.params_, list(cids))
        scored = [(n, accuracy) for _, n, accuracy in done if accuracy is not None]
        return {"client_loss": _weighted_mean([(n, loss) for loss, n, _ in done]),
                "client_accuracy": _weighted_mean(scored), "eval_dropped": dropped}

    def __repr__(self) -> str:
        return f"Server({self.model!r}, {self.strategy!r}, n_clients={len(self.clients)})"


def _weighted_mean(pairs) -> float:
    """sum(n * value) / sum(n) over (n, value) pairs; NaN for none."""
    if not pairs:
        return math.nan
    weights, values = zip(*pairs)
    return float(np.average(values, weights=weights))


def _progress(rounds, show):
    if not show:
        return rounds
    from tqdm.auto import tqdm

    return tqdm(rounds, desc="rounds", unit="round")
