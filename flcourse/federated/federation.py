"""A federation: which clients exist, how to reach one by id, and what each keeps across rounds.

Two kinds:

- a list of client objects (:class:`ClientList`), each known by its ``cid`` (or position);
- :class:`OnDemand`, a function from client id to client, as Flower's ``client_fn`` is, over
  data held once. A round builds only the clients it selects, so memory is the data plus
  those clients: how a laptop simulates a federation of a million phones (notebook 06).

Either keeps each client's ``state`` (a dict of arrays) between rounds: a listed client keeps
it as its ``state`` attribute, an on-demand one in a store keyed by id that is handed to the
client when it is built. See notebooks 05 and 06.
"""
from __future__ import annotations

import copy
import hashlib
import json
import numbers
from collections.abc import Callable, Sequence

import numpy as np

from ..models import Model
from .client import NumpyClient, check_client_parts


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
    if len(set(ids)) < len(ids):
        repeated = sorted({cid for cid in ids if ids.count(cid) > 1})
        raise ValueError(f"The 'clients' parameter of {owner} must hold clients with distinct ids. "
                         f"Got client id {repeated[0]} more than once instead.")
    return ids


def declared_size(client) -> int | None:
    """The number of samples a client says it holds (``n_samples``), or None."""
    size = getattr(client, "n_samples", None)
    return int(size) if isinstance(size, numbers.Integral) and not isinstance(size, bool) else None


def data_fingerprint(*arrays) -> str:
    """A sha256 of arrays' dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def client_fingerprint(client) -> str | None:
    """A sha256 of a client's data (X and y), or None for a client that does not show it; a client
    that defines ``fingerprint()`` (an attacker wrapping an honest client) gives its own."""
    if callable(getattr(client, "fingerprint", None)):
        return str(client.fingerprint())
    X, y = getattr(client, "X", None), getattr(client, "y", None)
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        return None
    return data_fingerprint(X, y)


def summary_fingerprint(entries) -> dict:
    """{"n_clients", "fingerprint"} of (cid, size, data fingerprint) entries."""
    rows = sorted([int(cid), None if n is None else int(n), *rest] for cid, n, *rest in entries)
    return {"n_clients": len(rows), "fingerprint": hashlib.sha256(json.dumps(rows).encode()).hexdigest()}


class Federation:
    """What runners need of a federation (the contract both kinds meet)."""

    cids: Sequence[int]

    def client(self, cid: int):
        raise NotImplementedError

    def size(self, cid: int) -> int | None:
        raise NotImplementedError

    def fingerprint(self) -> dict:
        raise NotImplementedError

    def keep_states(self, clients: dict) -> None:
        """After a call: remember the states of the ``{cid: client}`` just used."""

    def get_states(self, cids) -> dict:
        raise NotImplementedError

    def set_states(self, states: dict) -> None:
        raise NotImplementedError


class ClientList(Federation):
    """Client objects, each known by its id; their states live on them (``client.state``)."""

    def __init__(self, clients: list, owner: str):
        ids = client_ids(clients, owner)
        self.clients, self.given_ids = clients, ids
        self._by_id = dict(zip(ids, clients))
        self.cids = sorted(ids)

    def client(self, cid):
        return self._by_id[cid]

    def size(self, cid):
        return declared_size(self._by_id[cid])

    def fingerprint(self) -> dict:
        return summary_fingerprint((cid, self.size(cid), client_fingerprint(self._by_id[cid]))
                                   for cid in self.cids)

    def get_states(self, cids) -> dict:
        states = {cid: getattr(self._by_id[cid], "state", None) for cid in cids}
        return {cid: copy.deepcopy(state) for cid, state in states.items() if state}

    def set_states(self, states: dict) -> None:
        for cid, client in self._by_id.items():
            if hasattr(client, "state") or cid in states:
                client.state = copy.deepcopy(states.get(cid, {}))


class OnDemand(Federation):
    """A federation built client by client, from ids 0 .. n_clients - 1 (Flower's ``client_fn``).

    Parameters
    ----------
    client_fn : callable
        ``client_fn(cid)`` returns the client with id ``cid``.
    n_clients : int >= 1
    sizes : sequence of n_clients ints, optional
        How many samples each client holds (the most its updates may claim); by default each
        built client's ``n_samples``.
    fingerprint : callable, optional
        Returns a str that identifies the federation's data in checkpoints.
    """

    def __init__(self, client_fn: Callable, n_clients: int, *, sizes=None, fingerprint=None):
        if not callable(client_fn):
            raise TypeError(f"The 'client_fn' parameter of OnDemand must be callable. "
                            f"Got {type(client_fn).__name__} instead.")
        if isinstance(n_clients, bool) or not isinstance(n_clients, numbers.Integral) or n_clients < 1:
            raise ValueError(f"The 'n_clients' parameter of OnDemand must be an int in [1, inf). "
                             f"Got {n_clients!r} instead.")
        self.client_fn, self.n_clients = client_fn, int(n_clients)
        self.sizes, self._fingerprint = sizes, fingerprint
        self.cids, self._states = range(self.n_clients), {}

    @classmethod
    def from_partition(cls, model: Model, X, y, partition, *, step=None) -> "OnDemand":
        """NumpyClients over one array, built when selected: client k holds ``X[partition[k]]``."""
        X, y, parts = check_client_parts(model, X, y, partition, "OnDemand.from_partition")

        def client_fn(cid):
            return NumpyClient(model, X[parts[cid]], y[parts[cid]], cid=cid, step=step)

        def fingerprint():
            lengths = np.array([len(part) for part in parts])
            return data_fingerprint(X, y, lengths, np.concatenate(parts))

        return cls(client_fn, len(parts), sizes=[len(part) for part in parts], fingerprint=fingerprint)

    def client(self, cid):
        client = self.client_fn(cid)
        if getattr(client, "cid", cid) != cid:
            raise ValueError(f"The 'client_fn' parameter of OnDemand must build client {cid} for id {cid}. "
                             f"Got a client with cid={client.cid!r} instead.")
        if hasattr(client, "state"):
            client.state = self._states.get(cid, {})
        return client

    def size(self, cid):
        return None if self.sizes is None else int(self.sizes[cid])

    def fingerprint(self) -> dict:
        prints = None if self._fingerprint is None else self._fingerprint()
        return {"n_clients": self.n_clients, "fingerprint": prints}

    def keep_states(self, clients: dict) -> None:
        for cid, client in clients.items():
            if getattr(client, "state", None):
                self._states[cid] = client.state

    def get_states(self, cids) -> dict:
        return {cid: copy.deepcopy(self._states[cid]) for cid in cids if self._states.get(cid)}

    def set_states(self, states: dict) -> None:
        self._states = copy.deepcopy(dict(states))

    def __len__(self) -> int:
        return self.n_clients

    def __repr__(self) -> str:
        return f"OnDemand(n_clients={self.n_clients}, client_fn={getattr(self.client_fn, '__qualname__', '?')})"


def as_federation(clients, owner: str, *, on_demand: bool = True) -> Federation:
    """``clients`` as a Federation: an OnDemand, or a list of clients."""
    if isinstance(clients, OnDemand):
        if not on_demand:
            raise TypeError(f"The 'clients' parameter of {owner} must be a list of clients "
                            f"(processes are started for each). Got an OnDemand federation instead.")
        return clients
    if isinstance(clients, (str, bytes, dict)) or not hasattr(clients, "__iter__"):
        raise TypeError(f"The 'clients' parameter of {owner} must be a list of clients or an "
                        f"OnDemand federation. Got {type(clients).__name__} instead.")
    return ClientList(list(clients), owner)
