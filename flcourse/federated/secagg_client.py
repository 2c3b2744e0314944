"""A client that takes part in secure aggregation: it wraps any client and answers the four
stages of :class:`~flcourse.federated.strategies.SecAggFedAvg` (see
:mod:`flcourse.privacy.secagg_protocol`). Its keys and seed live in this object, in its
process; a fresh set every round. A client built anew for every request (an
:class:`~flcourse.federated.OnDemand` federation, as Flower's ``client_fn`` builds them) finds
its round's session in this process's registry, by its id, as a device finds its keys in its
own memory; the session leaves the registry once it has unmasked, and is never part of the
client's ``state``, so no checkpoint holds a key. See notebook 08.
"""
from __future__ import annotations

import numpy as np

from ..privacy.fixed_point import clip_and_encode
from ..privacy.secagg import KEY_BYTES, as_wire_bytes, from_wire_bytes
from ..privacy.secagg_protocol import SecAggParticipant
from .federation import client_fingerprint
from .messages import reply_fields
from .strategies.dpfedavg import clip_by_norm
from .wrapper import ClientWrapper

_SESSIONS: dict = {}  # {cid: the SecAggParticipant of its current round}, in this process


class SecAggClient(ClientWrapper):
    """``client`` behind secure aggregation: it trains as ``client`` does, then sends only its
    masked, encoded change.

    Parameters
    ----------
    client : client
        Any client with ``fit`` and ``evaluate`` (a :class:`~flcourse.federated.NumpyClient`...).
    """

    def __init__(self, client):
        super().__init__(client)
        self._session = None

    def secagg_advertise(self, server_round) -> np.ndarray:
        """Stage 0: start this round's session; its two public keys (64 bytes as uint8)."""
        self._session = _SESSIONS[self.cid] = SecAggParticipant(self.cid, int(server_round))
        return as_wire_bytes(self._session.public_keys)

    def secagg_share_keys(self, server_round, ids, keys, threshold) -> np.ndarray:
        """Stage 1: the encrypted shares for every other client of the roster, in its order."""
        session = self._current(server_round)
        ids = [int(cid) for cid in np.asarray(ids).tolist()]
        keys = np.asarray(keys)
        if keys.dtype != np.uint8 or keys.shape != (len(ids), 2 * KEY_BYTES):
            raise ValueError(f"client {self.cid}: the roster's keys must be a uint8 array of shape "
                             f"({len(ids)}, {2 * KEY_BYTES}). Got {keys.dtype} {keys.shape} instead.")
        sent = session.share_keys({cid: keys[k].tobytes() for k, cid in enumerate(ids)}, int(threshold))
        return np.stack([as_wire_bytes(sent[v]) for v in ids if v != self.cid])

    def secagg_masked_fit(self, server_round, params, config, senders, ciphertexts) -> list:
        """Stage 2: train, clip, add this client's part of the noise, encode, mask: [y_u, n_examples]."""
        session = self._current(server_round)
        update, n_examples, _, _ = reply_fields(self.client.fit(params, config))
        delta = np.asarray(update, dtype=np.float64).ravel()
        if config.get("update") != "delta":
            delta = delta - np.asarray(params, dtype=np.float64)
        if config.get("secagg_clip_norm") is not None:
            delta, _ = clip_by_norm(delta, config["secagg_clip_norm"])
        if config.get("secagg_noise_std", 0.0) > 0:  # a pseudo-random draw, for reproducible lessons
            noise_rng = np.random.default_rng([int(config["seed"]), int(self.cid), 8])
            delta = delta + noise_rng.normal(0.0, config["secagg_noise_std"], size=delta.shape)
        encoded = clip_and_encode(delta, config["secagg_clip"], config["secagg_bits"])
        inbox = {int(u): from_wire_bytes(row, owner=f"client {self.cid}")
                 for u, row in zip(np.asarray(senders).tolist(), list(ciphertexts))}
        return [session.masked_input(encoded, inbox), int(n_examples)]

    def secagg_unmask(self, server_round, survivors, dropped) -> list:
        """Stage 3: [ids, shares]: the share of b_u for each survivor u and of s_u for each dropped u."""
        revealed = self._current(server_round).unmask(np.asarray(survivors).tolist(), np.asarray(dropped).tolist())
        _SESSIONS.pop(self.cid, None)
        ids = sorted(revealed)
        return [np.array(ids, dtype=np.int64), np.stack([as_wire_bytes(revealed[u]) for u in ids])]

    def _current(self, server_round) -> SecAggParticipant:
        if self._session is None or self._session.server_round != int(server_round):
            self._session = _SESSIONS.get(self.cid)
        if self._session is None or self._session.server_round != int(server_round):
            raise ValueError(f"client {self.cid}: no secure-aggregation session for round {server_round} "
                             f"(keys are advertised first, every round)")
        return self._session

    def fit(self, params, config: dict):
        """The inner client's fit (for strategies without secure aggregation)."""
        return self.client.fit(params, config)

    def fingerprint(self) -> str | None:
        """The inner client's data fingerprint: the wrapper adds no behaviour a checkpoint must match."""
        return client_fingerprint(self.client)
