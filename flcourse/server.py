"""The federated server: the one loop that runs rounds, and where the clients run.

Each round: sample -> broadcast -> local work -> collect -> validate -> aggregate -> evaluate.
Clients run in this process (:class:`InProcessClients`) or each in its own OS process
(:class:`ProcessClients`); the loop is the same. See notebook 05.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ._validation import check_choice, check_params, check_rng, check_scalar
from .federated import FedAvg, InvalidUpdateError, NumpyClient, check_update, local_sgd
from .models import Model
from .processes import STARTUP_TIMEOUT, ProcessPool, serve


class ClientFailure(RuntimeError):
    """A client failed (raised, exited, hung or sent an invalid update) and the policy is "fail"."""


class InProcessClients:
    """The simulation engine: every client in this process, nothing copied or pickled.

    Selected :class:`NumpyClient` s that share a model and hold equally many samples train
    together, one vectorised step for all of them (:func:`local_sgd`), with exactly the
    numbers each would compute alone; any other client is called on its own.
    """

    def __init__(self, clients):
        self.clients = list(clients)

    def __len__(self) -> int:
        return len(self.clients)

    def fit(self, cids, params, config, timeout):
        """Run ``fit`` on the clients ``cids``; {cid: ("ok", result) or ("error", message)}."""
        outcomes, groups = {}, {}
        for cid in cids:
            client = self.clients[cid]
            if type(client) is NumpyClient:
                groups.setdefault((id(client.model), len(client.y)), []).append(cid)
            else:
                outcomes[cid] = self._fit_one(cid, params, config)
        for group in groups.values():
            outcomes.update(self._fit_group(group, params, config))
        return outcomes

    def _fit_group(self, cids, params, config):
        clients = [self.clients[cid] for cid in cids]
        if len(cids) == 1:
            return {cids[0]: self._fit_one(cids[0], params, config)}
        try:
            stacked = local_sgd(clients[0].model, params, np.stack([c.X for c in clients]),
                                np.stack([c.y for c in clients]), cids, config)
        except Exception:  # noqa: BLE001 - run them one by one, to tell whose failure it is
            return {cid: self._fit_one(cid, params, config) for cid in cids}
        return {cid: ("ok", (new, len(client.y), {})) for cid, client, new in zip(cids, clients, stacked)}

    def _fit_one(self, cid, params, config):
        try:
            return "ok", self.clients[cid].fit(params, config)
        except Exception as error:  # noqa: BLE001 - one client's failure is the policy's call
            return "error", f"client {cid} raised {type(error).__name__}: {error}"

    def evaluate(self, cids, params, config, timeout):
        return {cid: ("ok", self.clients[cid].evaluate(params, config)) for cid in cids}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class ProcessClients:
    """Each client in its own OS process, talking to the server over a pipe.

    The server sends ``("fit" | "evaluate", params, config)`` and waits at most the round's
    timeout; a client that raises, exits or hangs is reported by id (a hung one is stopped).
    """

    def __init__(self, clients, *, start_method: str | None = None):
        self.clients, self.start_method, self._pool = list(clients), start_method, None

    def __len__(self) -> int:
        return len(self.clients)

    def __enter__(self):
        if self._pool is not None:
            raise RuntimeError("ProcessClients is already running: pass it to one Server.run at a time.")
        self._pool = ProcessPool(client_main, [(client,) for client in self.clients],
                                 start_method=self.start_method, name="client", owner="ProcessClients")
        outcomes = self._pool.collect(range(len(self.clients)), STARTUP_TIMEOUT)
        failed = [cid for cid, (status, _) in outcomes.items() if status != "ok"]
        if failed:
            self.__exit__()
            raise ClientFailure(f"client {failed[0]} did not start")
        return self

    def fit(self, cids, params, config, timeout):
        return self._ask("fit", cids, params, config, timeout)

    def evaluate(self, cids, params, config, timeout):
        return self._ask("evaluate", cids, params, config, timeout)

    def _ask(self, method, cids, params, config, timeout):
        alive = [cid for cid in cids if self._pool.processes[cid].is_alive()
                 and self._pool.send(cid, (method, params, config))]
        outcomes = {cid: ("error", f"client {cid} is no longer running (it failed in an earlier round)")
                    for cid in cids if cid not in alive}
        for cid, outcome in self._pool.collect(alive, timeout).items():
            if outcome[0] == "timeout":
                self._pool.stop(cid)  # a hung client is stopped and does not come back
            outcomes[cid] = outcome if outcome[0] == "ok" else ("error", self._pool.describe(cid, outcome, timeout))
        return outcomes

    @property
    def processes(self) -> list:
        return [] if self._pool is None else self._pool.processes

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.close()
        self._pool = None
        return False


def client_main(cid, connection, client):
    """What a client process runs: answer fit / evaluate requests with the client's results."""
    serve(connection, lambda message: getattr(client, message[0])(*message[1:]))


class Server:
    """Runs federated rounds with a strategy over a set of clients.

    Parameters
    ----------
    model : Model
        Gives the shape of the parameters and evaluates them centrally.
    strategy : FedAvg, FedSGD or another object with ``configure_fit`` and ``aggregate_fit``
    clients : InProcessClients, ProcessClients, or a list of clients (run in-process)
    test_set : tuple (X_test, y_test), optional
        Evaluate the global parameters centrally after every round.
    evaluate_clients : bool, default=False
        Also ask the selected clients to evaluate the new parameters on their own data.
    on_invalid : {"fail", "drop"}, default="fail"
        What a failed client or an invalid update does to the round: fail it with
        :class:`ClientFailure`, or drop that client (recorded in the history).
    round_timeout : float, default=60.0
        Seconds a client may take in a round (process clients).
    checkpoint_path : str or Path, optional
        Save the server's state there after every round (see :meth:`run`'s ``resume``).
    seed : int, Generator or None
        Drives the selection of clients and the seeds of their local work.

    Attributes
    ----------
    params_ : ndarray of shape (n_params,)
    history_ : dict of lists, one entry per round (round 0: before training)
    """

    def __init__(self, model: Model, strategy: FedAvg, clients, *, test_set=None,
                 evaluate_clients: bool = False, on_invalid: str = "fail",
                 round_timeout: float = 60.0, checkpoint_path=None, seed=None):
        self.model, self.strategy = model, strategy
        self.clients = clients if hasattr(clients, "fit") else InProcessClients(clients)
        self.test_set, self.evaluate_clients = test_set, evaluate_clients
        self.on_invalid, self.round_timeout = on_invalid, round_timeout
        self.checkpoint_path, self.seed = checkpoint_path, seed

    def run(self, n_rounds: int, *, params=None, resume: bool = False, progress: bool = False):
        """Run rounds until ``n_rounds`` have been done in all; return ``self``.

        With ``resume=True`` the state saved in ``checkpoint_path`` is loaded first and the run
        goes on from the round after it, ending exactly where an uninterrupted run would.
        """
        self._validate(n_rounds)
        if resume:
            first = self._load_checkpoint() + 1
        else:
            self.params_ = self.model.init_params() if params is None else \
                check_params(params, self.model.n_params, "Server.run")
            self._rng, self.history_, first = check_rng(self.seed, "Server"), {}, 1
            self._evaluate(0, [], [], 0, 0, 0.0)
        rounds = range(first, n_rounds + 1)
        with self.clients:
            for server_round in _progress(rounds, progress):
                self._round(server_round)
                self._save_checkpoint(server_round)
        return self

    def _round(self, server_round):
        started = time.perf_counter()
        cids, config = self.strategy.configure_fit(server_round, len(self.clients), self._rng)
        outcomes = self.clients.fit(list(cids), self.params_, config, self.round_timeout)
        results, dropped = self._validated(outcomes)
        if results:
            self.params_ = self.strategy.aggregate_fit(self.params_, results)
        sent, received = len(cids) * self.params_.nbytes, len(results) * self.params_.nbytes
        self._evaluate(server_round, cids, dropped, sent, received, time.perf_counter() - started)

    def _validated(self, outcomes):
        results, dropped = [], []
        for cid in sorted(outcomes):
            status, payload = outcomes[cid]
            try:
                if status != "ok":
                    raise ClientFailure(payload)
                results.append(check_update(cid, payload, self.model.n_params))
            except (ClientFailure, InvalidUpdateError) as error:
                if self.on_invalid == "fail":
                    raise ClientFailure(f"round failed: {error}") from None
                dropped.append([int(cid), str(error).splitlines()[0]])
        return results, dropped

    def _evaluate(self, server_round, cids, dropped, sent, received, seconds):
        entry = {"round": server_round, "n_selected": len(cids), "n_dropped": len(dropped),
                 "dropped": dropped, "bytes_sent": sent, "bytes_received": received,
                 "wall_seconds": seconds}
        if self.test_set is not None:
            X_test, y_test = self.test_set
            entry["test_loss"] = float(self.model.loss(self.params_, X_test, y_test))
            entry["test_accuracy"] = self.model.score(self.params_, X_test, y_test)
        if self.evaluate_clients and len(cids):
            entry.update(self._client_metrics(cids))
        for key, value in entry.items():
            self.history_.setdefault(key, []).append(value)

    def _client_metrics(self, cids):
        outcomes = self.clients.evaluate(list(cids), self.params_, {}, self.round_timeout)
        done = [payload for status, payload in outcomes.values() if status == "ok"]
        sizes = [n for _, n, _ in done]
        return {"client_loss": float(np.average([loss for loss, _, _ in done], weights=sizes)),
                "client_accuracy": float(np.average([m["accuracy"] for _, _, m in done], weights=sizes))}

    def _validate(self, n_rounds):
        check_scalar(n_rounds, "n_rounds", "Server.run", int, low=0, closed="left")
        check_scalar(self.round_timeout, "round_timeout", "Server", low=0)
        check_choice(self.on_invalid, "on_invalid", "Server", {"fail", "drop"})
        if hasattr(self.strategy, "validate"):
            self.strategy.validate()

    def _save_checkpoint(self, server_round):
        if self.checkpoint_path is None:
            return
        state = {"round": server_round, "rng": self._rng.bit_generator.state,
                 "history": self.history_, "strategy": repr(self.strategy)}
        path = Path(self.checkpoint_path)
        temporary = path.with_name(path.name + ".tmp")
        with open(temporary, "wb") as file:
            np.savez(file, params=self.params_, state=json.dumps(state))
        os.replace(temporary, path)  # atomic: a crash never leaves half a checkpoint

    def _load_checkpoint(self) -> int:
        if self.checkpoint_path is None or not Path(self.checkpoint_path).exists():
            raise ValueError(f"The 'checkpoint_path' parameter of Server must name a saved "
                             f"checkpoint to resume from. Got {self.checkpoint_path!r} instead.")
        with np.load(self.checkpoint_path) as saved:
            state = json.loads(str(saved["state"]))
            self.params_ = saved["params"].copy()
        if state["strategy"] != repr(self.strategy):
            raise ValueError(f"The checkpoint was written by {state['strategy']}, not by "
                             f"{self.strategy!r}: resuming would not continue the same run.")
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state["rng"]
        self.history_ = state["history"]
        return state["round"]

    def __repr__(self) -> str:
        return f"Server({self.model!r}, {self.strategy!r}, n_clients={len(self.clients)})"


def _progress(rounds, show):
    if not show:
        return rounds
    from tqdm.auto import tqdm

    return tqdm(rounds, desc="rounds", unit="round")


def save_history(history: dict, path) -> None:
    """Write a round history to ``path`` as JSON."""
    Path(path).write_text(json.dumps(history, indent=1))


def load_history(path) -> dict:
    """Read a round history written by :func:`save_history`."""
    return json.loads(Path(path).read_text())
