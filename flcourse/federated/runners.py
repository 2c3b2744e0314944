"""Where federated clients run: in this process, or each in its own OS process.

A runner holds a federation: clients known by id (``client.cid``, or their position in a list),
or an :class:`~flcourse.federated.OnDemand` federation that builds a client from its id when a
round selects it. Ids are unique and listed sorted, so a run depends on which clients take
part, never on the order they were given in. Both runners answer

    send(method, {cid: args}, timeout) -> {cid: ("ok", reply) or ("error", message)}

and keep each client's ``state`` across rounds (the client's own storage: SCAFFOLD's c_i), with
the same numbers. The process runner uses the one runtime of :mod:`flcourse.runtime`, as the
data-parallel workers do. See notebooks 05 and 06.
"""
from __future__ import annotations

import copy

from ..runtime import STARTUP_TIMEOUT, ProcessPool, serve
from .federation import Federation, as_federation
from .messages import FitRes, array_bytes, as_wire_reply

STATE_METHODS = ("get_state", "set_state")


class ClientFailure(RuntimeError):
    """A client failed (raised, exited, hung or sent an invalid reply) and the policy is "fail"."""


def can_train_together(client) -> bool:
    """Whether ``client`` offers the grouped-training capability: a ``fit_stacked`` defined by
    the same class as its ``fit`` (a subclass that overrides ``fit`` alone is called alone)."""
    cls = type(client)
    fit_owner = next((k for k in cls.__mro__ if "fit" in vars(k)), None)
    stacked_owner = next((k for k in cls.__mro__ if "fit_stacked" in vars(k)), None)
    return stacked_owner is not None and fit_owner is stacked_owner and hasattr(client, "stack_key")


class Runner:
    """What both runners share: the federation's ids, sizes and fingerprint, and the short forms
    ``fit`` / ``evaluate`` (one request for many clients)."""

    federation: Federation

    def __len__(self) -> int:
        return len(self.cids)

    def fit(self, cids, params, config: dict, timeout=None) -> dict:
        """``send("fit", ...)`` with the same ``(params, config)`` for every client of ``cids``."""
        return self.send("fit", {cid: (params, config) for cid in cids}, timeout)

    def evaluate(self, cids, params, config: dict, timeout=None) -> dict:
        """``send("evaluate", ...)`` with the same ``(params, config)`` for every client of ``cids``."""
        return self.send("evaluate", {cid: (params, config) for cid in cids}, timeout)

    def size(self, cid) -> int | None:
        """The number of samples client ``cid`` declares (``n_samples``), or None."""
        return self.federation.size(cid)

    def fingerprint(self) -> dict:
        """What identifies the federation in a checkpoint: its size and a sha256 of its clients."""
        return self.federation.fingerprint()


class InProcessClients(Runner):
    """The simulation engine: every client in this process, nothing pickled.

    A client called alone gets its own copy of the parameters and config, so it cannot
    change what the server or the others see. Selected clients that can train together
    (:func:`can_train_together`) and agree on their ``stack_key`` (same model, same number of
    samples, same instructions) train in one vectorised pass, with exactly the numbers each
    would compute alone.

    Parameters
    ----------
    clients : list of clients, or OnDemand
    """

    def __init__(self, clients):
        self.federation: Federation = as_federation(clients, type(self).__name__)
        self.cids = self.federation.cids

    def send(self, method: str, requests: dict, timeout=None) -> dict:
        """Call ``method(*args)`` on each client of ``requests``; failures are reported, never raised."""
        clients = {cid: self.federation.client(cid) for cid in requests}
        if method != "fit":
            outcomes = {cid: self._call(cid, clients[cid], method, args) for cid, args in requests.items()}
        else:
            outcomes = self._fit(clients, requests)
        self.federation.keep_states(clients)
        return outcomes

    def _fit(self, clients, requests) -> dict:
        outcomes, groups = {}, {}
        for cid, args in requests.items():
            client = clients[cid]
            if can_train_together(client):
                groups.setdefault((id(args[0]), client.stack_key(args[1])), []).append(cid)
            else:
                outcomes[cid] = self._call(cid, client, "fit", args)
        for cids in groups.values():
            outcomes.update(self._fit_group([clients[cid] for cid in cids], cids, requests[cids[0]]))
        return outcomes

    def _fit_group(self, clients, cids, args) -> dict:
        if len(clients) == 1:
            return {cids[0]: self._call(cids[0], clients[0], "fit", args)}
        try:
            replies = type(clients[0]).fit_stacked(clients, *args)
        except Exception:  # noqa: BLE001 - run them one by one, to tell whose failure it is
            return {cid: self._call(cid, client, "fit", args) for cid, client in zip(cids, clients)}
        return {cid: ("ok", reply) for cid, reply in zip(cids, replies)}

    @staticmethod
    def _call(cid, client, method, args):
        try:  # copies, so that no client can change what the server or the others see
            return "ok", getattr(client, method)(*copy.deepcopy(args))
        except Exception as error:  # noqa: BLE001 - one client's failure is the policy's call
            return "error", f"client {cid} raised {type(error).__name__}: {error}"

    def get_states(self, cids) -> dict:
        """{cid: a copy of its state} for the clients of ``cids`` that keep one."""
        return self.federation.get_states(cids)

    def set_states(self, states: dict) -> None:
        """Give every client its state from ``states`` (the others start empty)."""
        self.federation.set_states(states)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class ProcessClients(Runner):
    """Each client in its own OS process, talking to the server over a socket.

    The server sends ``(method, *args)`` and waits at most the round's timeout, however large
    the parameters; a client that raises, exits, hangs, stalls mid-message or sends more than
    twice the request's size (plus 1 MiB) is reported by id, and a client whose process failed
    is stopped and does not come back. Each process keeps its client's ``state``.

    Parameters
    ----------
    clients : list of clients
    start_method : {"fork", "spawn", "forkserver"} or None
    """

    def __init__(self, clients, *, start_method: str | None = None):
        self.federation = as_federation(clients, type(self).__name__, on_demand=False)
        self.cids, self.clients = self.federation.cids, self.federation.clients
        self._position = {cid: position for position, cid in enumerate(self.federation.given_ids)}
        self.start_method, self._pool = start_method, None

    def __enter__(self):
        if self._pool is not None:
            raise RuntimeError("ProcessClients is already running: pass it to one Server.run at a time.")
        self._pool = ProcessPool(client_main, [(client,) for client in self.clients],
                                 start_method=self.start_method, name="client", owner="ProcessClients",
                                 labels=list(self._position))
        outcomes = self._pool.collect(range(len(self.clients)), STARTUP_TIMEOUT)
        failed = [i for i, outcome in sorted(outcomes.items()) if outcome[0] != "ok"]
        if failed:
            reason = self._pool.describe(failed[0], outcomes[failed[0]], STARTUP_TIMEOUT)
            self.__exit__()
            raise ClientFailure(f"a client process did not start: {reason}")
        return self

    def send(self, method: str, requests: dict, timeout: float) -> dict:
        """Send ``(method, *args)`` to each client of ``requests``; wait at most ``timeout`` s."""
        alive = [cid for cid in requests if self._pool.alive(self._position[cid])]
        outcomes = {cid: ("error", self._why_gone(cid)) for cid in requests if cid not in alive}
        messages = {self._position[cid]: (method, *requests[cid]) for cid in alive}
        limit = 2 * max((array_bytes(m) for m in messages.values()), default=0) + (1 << 20)
        replies = self._pool.exchange(messages, timeout, limit)
        for cid in alive:
            outcome = replies[self._position[cid]]
            if outcome[0] != "ok":
                outcome = ("error", self._pool.describe(self._position[cid], outcome, timeout))
            outcomes[cid] = outcome
        return outcomes

    def _why_gone(self, cid) -> str:
        index = self._position[cid]
        if index in self._pool.stopped:
            return f"client {cid} is no longer running (it was stopped after failing in an earlier round)"
        exitcode = self._pool.processes[index].exitcode
        return self._pool.describe(index, ("exited", exitcode), 0) + " between rounds"

    def get_states(self, cids, timeout: float = STARTUP_TIMEOUT) -> dict:
        """{cid: state} of the clients of ``cids`` that keep one, asked from their processes."""
        outcomes = self.send("get_state", {cid: () for cid in cids}, timeout)
        return {cid: reply for cid, (status, reply) in outcomes.items() if status == "ok" and reply}

    def set_states(self, states: dict, timeout: float = STARTUP_TIMEOUT) -> None:
        """Give every client process its state from ``states`` (the others start empty)."""
        outcomes = self.send("set_state", {cid: (states.get(cid, {}),) for cid in self.cids}, timeout)
        failed = sorted(cid for cid, (status, _) in outcomes.items() if status != "ok")
        if failed:
            raise ClientFailure(f"client {failed[0]} could not take its state: {outcomes[failed[0]][1]}")

    @property
    def processes(self) -> list:
        """The client processes while they run, in the order the clients were given."""
        return [] if self._pool is None else self._pool.processes

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.close()
        self._pool = None
        return False


def client_main(index, channel, client):
    """What a client process runs: answer requests with the client's results; keep its state."""
    serve(channel, lambda message: answer(client, message))


def answer(client, message):
    """The reply of ``client`` to ``[method, *args]``: a public method, or its state."""
    method, args = message[0], message[1:]
    if method == "get_state":
        return dict(getattr(client, "state", None) or {})
    if method == "set_state":
        client.state = dict(args[0])
        return None
    if not isinstance(method, str) or method.startswith("_") or not callable(getattr(client, method, None)):
        raise AttributeError(f"the client has no public method {method!r}")
    return as_wire_reply(getattr(client, method)(*args))


__all__ = ["ClientFailure", "FitRes", "InProcessClients", "ProcessClients", "can_train_together"]
