"""Where federated clients run: in this process, or each in its own OS process.

A runner holds a set of clients, each known by its id (``client.cid``, or its position in the
list for a client without one). Ids are unique and the runner lists them sorted, so a run
depends on which clients take part, never on the order they were given in. Both runners
answer ``fit(cids, params, config, timeout)`` and ``evaluate(...)`` with
{cid: ("ok", result) or ("error", message)}, and the two give the same numbers. See notebook 05.
"""
from __future__ import annotations

import hashlib
import numbers

import numpy as np

from .federated import NumpyClient, local_sgd
from .runtime import STARTUP_TIMEOUT, ProcessPool, serve


class ClientFailure(RuntimeError):
    """A client failed (raised, exited, hung or sent an invalid update) and the policy is "fail"."""


def client_ids(clients, owner: str) -> list[int]:
    """Each client's id (``cid``, else its position); raise on a bad or repeated id, or on a
    client without a ``fit`` method."""
    ids = []
    for position, client in enumerate(clients):
        if not callable(getattr(client, "fit", None)):
            raise TypeError(f"The 'clients' parameter of {owner} must hold clients with a fit method "
                            f"(NumpyClient, ...). Got {type(client).__name__} at position {position} instead.")
        cid = getattr(client, "cid", position)
        if isinstance(cid, bool) or not isinstance(cid, numbers.Integral) or cid < 0:
            raise TypeError(f"The 'clients' parameter of {owner} must hold clients whose 'cid' is a "
                            f"non-negative int. Got cid={cid!r} for the client at position {position} instead.")
        ids.append(int(cid))
    if not ids:
        raise ValueError(f"The 'clients' parameter of {owner} must hold at least one client. Got none instead.")
    repeated = sorted({cid for cid in ids if ids.count(cid) > 1}) if len(set(ids)) < len(ids) else []
    if repeated:
        raise ValueError(f"The 'clients' parameter of {owner} must hold clients with distinct ids. "
                         f"Got client id {repeated[0]} more than once instead.")
    return ids


def as_client_list(clients, owner: str) -> list:
    """``clients`` (any iterable of clients) as a list; TypeError naming it otherwise."""
    if isinstance(clients, (str, bytes, dict)) or not hasattr(clients, "__iter__"):
        raise TypeError(f"The 'clients' parameter of {owner} must be a list of clients. "
                        f"Got {type(clients).__name__} instead.")
    return list(clients)


def client_fingerprint(client) -> str | None:
    """A sha256 of a client's data (X and y), so that a checkpoint knows its clients by what
    they hold, not only by id and size; None for a client that does not show its data."""
    X, y = getattr(client, "X", None), getattr(client, "y", None)
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        return None
    digest = hashlib.sha256()
    for array in (X, y):
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def declared_size(client) -> int | None:
    """The number of samples a client says it holds (``n_samples``), or None."""
    size = getattr(client, "n_samples", None)
    return int(size) if isinstance(size, numbers.Integral) and not isinstance(size, bool) else None


class _Runner:
    """What both runners share: clients by id, sorted ids, declared sizes."""

    def __init__(self, clients):
        clients = as_client_list(clients, type(self).__name__)
        ids = client_ids(clients, type(self).__name__)
        self.clients = clients
        self._by_id = dict(zip(ids, clients))
        self._position = {cid: position for position, cid in enumerate(ids)}
        self.cids = sorted(ids)

    def __len__(self) -> int:
        return len(self.clients)

    def sizes(self) -> dict:
        """{cid: declared number of samples, or None}."""
        return {cid: declared_size(self._by_id[cid]) for cid in self.cids}

    def fingerprints(self) -> dict:
        """{cid: sha256 of the client's data, or None}."""
        return {cid: client_fingerprint(self._by_id[cid]) for cid in self.cids}


class InProcessClients(_Runner):
    """The simulation engine: every client in this process, nothing pickled (a client called
    alone gets its own copy of the parameters and config, so it cannot change the server's).

    Selected :class:`NumpyClient` s that share a model and hold equally many samples train
    together, one vectorised step for all of them (:func:`local_sgd`), with exactly the
    numbers each would compute alone; any other client is called on its own.
    """

    def fit(self, cids, params, config, timeout):
        """Run ``fit`` on the clients ``cids``; {cid: ("ok", result) or ("error", message)}."""
        outcomes, groups = {}, {}
        for cid in cids:
            client = self._by_id[cid]
            if type(client) is NumpyClient:
                groups.setdefault((id(client.model), len(client.y)), []).append(cid)
            else:
                outcomes[cid] = self._call(cid, "fit", params, config)
        for group in groups.values():
            outcomes.update(self._fit_group(group, params, config))
        return outcomes

    def _fit_group(self, cids, params, config):
        if len(cids) == 1:
            return {cids[0]: self._call(cids[0], "fit", params, config)}
        clients = [self._by_id[cid] for cid in cids]
        try:
            stacked = local_sgd(clients[0].model, params, np.stack([c.X for c in clients]),
                                np.stack([c.y for c in clients]), cids, config)
        except Exception:  # noqa: BLE001 - run them one by one, to tell whose failure it is
            return {cid: self._call(cid, "fit", params, config) for cid in cids}
        return {cid: ("ok", (new, len(client.y), {})) for cid, client, new in zip(cids, clients, stacked)}

    def evaluate(self, cids, params, config, timeout):
        """Run ``evaluate`` on the clients ``cids``; failures are reported, never raised."""
        return {cid: self._call(cid, "evaluate", params, config) for cid in cids}

    def _call(self, cid, method, params, config):
        try:  # a copy each, so that no client can change what the server or the others see
            return "ok", getattr(self._by_id[cid], method)(np.array(params, dtype=np.float64), dict(config))
        except Exception as error:  # noqa: BLE001 - one client's failure is the policy's call
            return "error", f"client {cid} raised {type(error).__name__}: {error}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class ProcessClients(_Runner):
    """Each client in its own OS process, talking to the server over a socket.

    The server sends ``("fit" | "evaluate", params, config)`` and waits at most the round's
    timeout, however large the parameters; a client that raises, exits, hangs, stalls
    mid-message or sends more than twice the parameters' size (plus 1 MiB) is reported by id,
    and a client whose process failed is stopped and does not come back.
    """

    def __init__(self, clients, *, start_method: str | None = None):
        super().__init__(clients)
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

    def fit(self, cids, params, config, timeout):
        return self._ask("fit", cids, params, config, timeout)

    def evaluate(self, cids, params, config, timeout):
        return self._ask("evaluate", cids, params, config, timeout)

    def _ask(self, method, cids, params, config, timeout):
        alive = [cid for cid in cids if self._pool.alive(self._position[cid])]
        outcomes = {cid: ("error", self._why_gone(cid)) for cid in cids if cid not in alive}
        request = (method, np.asarray(params, dtype=np.float64), config)
        limit = 2 * request[1].nbytes + (1 << 20)
        replies = self._pool.exchange({self._position[cid]: request for cid in alive}, timeout, limit)
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
    """What a client process runs: answer fit / evaluate requests with the client's results."""
    serve(channel, lambda message: getattr(client, message[0])(*message[1:]))
