"""FedAvg behind secure aggregation (Bonawitz et al., CCS 2017): the server learns only the sum.

One round is four stages of the server loop (:meth:`RoundGrid.send` each), the protocol of
:mod:`flcourse.privacy.secagg_protocol`: advertise keys, share keys, masked input (the clients
train, clip, encode into Z_{2^32} and mask), unmask. The clients must be
:class:`~flcourse.federated.secagg_client.SecAggClient` s. A client that drops out at any stage
is recovered from the others' shares while t of them are left; below t the round aborts with
:class:`~flcourse.privacy.secagg_protocol.SecureAggregationAborted`. With ``clip_norm`` and
``noise_multiplier`` each client also adds its part of the Gaussian noise, so that the sum of
any t or more carries N(0, (z C)^2): central DP's noise, with no trusted server. With
``neighbours`` = k it runs SecAgg+ (Bell et al. 2020): each client shares with and masks with
its k neighbours on a random Harary graph only. See notebook 08.
"""
from __future__ import annotations

import math

import numpy as np

from ..._validation import Interval
from ...privacy.fixed_point import decode_sum, max_summands
from ...privacy.secagg import KEY_BYTES, NONCE_BYTES, TAG_BYTES, SecAggCryptoError, check_public_key
from ...privacy.secagg_protocol import (SHARE_BYTES, SHARE_PAIR_BYTES, check_survivors, harary_neighbourhoods,
                                        unmask_sum)
from .base import local_training_config, sample_clients
from .fedavg import FedAvg

CIPHERTEXT_BYTES = NONCE_BYTES + SHARE_PAIR_BYTES + TAG_BYTES


class SecAggFedAvg(FedAvg):
    """FedAvg whose server sees only the sum of the selected clients' changes.

    The new parameters are w + server_lr * (1/|U3|) sum_{u in U3} Delta_u, the plain mean of the
    changes of the clients that sent their masked input (each change clipped to [-clip, clip]
    per coordinate and rounded to the ``bits``-bit grid; unweighted, since the server cannot
    weigh what it cannot see).

    Parameters
    ----------
    fraction_fit, local_epochs, batch_size, lr
        As for :class:`FedAvg` (a fixed-size sample: say so to an accountant).
    threshold : float in (0, 1], default=0.6
        t = max(2, ceil(threshold * m)) of the m selected clients must survive every stage.
    clip : float > 0, default=1.0
        The bound of every coordinate of a change before encoding.
    bits : int in [2, 24], default=16
        The fixed-point grid: 2^bits - 1 points on [-clip, clip].
    clip_norm : float > 0 or None, default=None
        C: each client first clips its change to this L2 norm (for DP).
    noise_multiplier : float >= 0, default=0.0
        z: each client adds N(0, (z C)^2 / t) per coordinate, so any t or more sum to at least
        (z C)^2. Needs ``clip_norm``.
    server_lr : float > 0, default=1.0
    neighbours : even int >= 2, or None, default=None
        SecAgg+'s degree k: each client's secrets are shared t-of-(k + 1) within its
        neighbourhood, t = max(2, ceil(threshold * (k + 1))). None: every client with every
        other (Bonawitz et al.).
    """

    parameter_constraints = {
        **{key: FedAvg.parameter_constraints[key] for key in ("fraction_fit", "local_epochs", "batch_size", "lr")},
        "threshold": Interval(float, 0, 1, closed="right"),
        "clip": Interval(float, 0, None),
        "bits": Interval(int, 2, 24, closed="both"),
        "clip_norm": Interval(float, 0, None, none_ok=True),
        "noise_multiplier": Interval(float, 0, None, closed="left"),
        "server_lr": Interval(float, 0, None),
        "neighbours": Interval(int, 2, None, closed="left", none_ok=True),
    }

    def __init__(self, *, fraction_fit: float = 1.0, threshold: float = 0.6, clip: float = 1.0, bits: int = 16,
                 clip_norm: float | None = None, noise_multiplier: float = 0.0, server_lr: float = 1.0,
                 neighbours: int | None = None, local_epochs: int = 1, batch_size=None, lr: float = 0.1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs, batch_size=batch_size, lr=lr)
        self.threshold, self.clip, self.bits = threshold, clip, bits
        self.clip_norm, self.noise_multiplier, self.server_lr = clip_norm, noise_multiplier, server_lr
        self.neighbours = neighbours

    def validate(self) -> None:
        super().validate()
        if self.noise_multiplier > 0 and self.clip_norm is None:
            raise ValueError(f"The 'noise_multiplier' parameter of SecAggFedAvg needs a 'clip_norm' (noise is "
                             f"scaled to it). Got noise_multiplier={self.noise_multiplier!r} and clip_norm=None.")
        if self.neighbours is not None and self.neighbours % 2:
            raise ValueError(f"The 'neighbours' parameter of SecAggFedAvg must be even (k / 2 on each side of "
                             f"a ring). Got {self.neighbours!r} instead.")

    def threshold_count(self, n_selected: int) -> int:
        """t for ``n_selected`` clients: max(2, ceil(threshold * m)), at most m (m >= 2)."""
        return min(n_selected, max(2, math.ceil(self.threshold * n_selected - 1e-9)))

    def configure_fit(self, server_round, params, cids, rng) -> dict:
        """{cid: config} of the selected clients: the local training and how to encode the change."""
        config = {**local_training_config(self, server_round, rng), "update": "delta", "secagg_clip": self.clip,
                  "secagg_bits": self.bits, "secagg_clip_norm": self.clip_norm}
        selected = [cids[k] for k in sample_clients(len(cids), self.fraction_fit, rng)]
        config["secagg_noise_std"] = (self.noise_multiplier * self.clip_norm / math.sqrt(self.threshold_count(
            len(selected))) if self.noise_multiplier > 0 and len(selected) > 1 else 0.0)
        return {cid: config for cid in selected}

    def run_round(self, server_round, params, cids, rng, grid):
        """The four stages; returns the new parameters and the clients left after each stage."""
        instructions = self.configure_fit(server_round, params.copy(), cids, rng)
        t = self.threshold_count(len(instructions))
        if len(instructions) < 2:
            check_survivors(list(instructions), 2, "selection (secure aggregation needs two clients or more)",
                            server_round)
        if len(instructions) > max_summands(self.bits):
            raise ValueError(f"The 'bits' parameter of SecAggFedAvg is too large for {len(instructions)} clients: "
                             f"their sum would wrap in Z_2^32 (at most {max_summands(self.bits)} at "
                             f"{self.bits} bits). Got bits={self.bits} instead.")
        roster = self._advertise(server_round, instructions, t, grid)
        groups, t_shares = self._graph(roster, next(iter(instructions.values()))["seed"], t)
        inboxes = self._share_keys(server_round, roster, groups, t_shares, grid)
        check_survivors(inboxes, t, "share-keys", server_round)
        d = params.size
        masked = grid.send("secagg_masked_fit", {v: (server_round, params, instructions[v], *inboxes[v])
                                                 for v in inboxes}, lambda cid, reply: _check_masked(cid, reply, d))
        check_survivors(masked, t, "masked-input", server_round)
        u3 = sorted(masked)
        asked = {v: [u for u in groups[v] if u in inboxes] for v in u3}  # v holds shares of these: its U2
        shares = grid.send("secagg_unmask", {v: (server_round, np.array([u for u in asked[v] if u in masked]),
                                                 np.array([u for u in asked[v] if u not in masked], dtype=np.int64))
                                             for v in u3},
                           lambda cid, reply: _check_shares(cid, reply, asked[cid]))
        check_survivors(shares, t, "unmask", server_round)
        total = unmask_sum({u: y for u, (y, _) in masked.items()}, roster, shares, t_shares, inboxes, groups)
        mean = decode_sum(total, len(u3), self.clip, self.bits) / len(u3)
        metrics = {"n_selected": len(instructions), "threshold": t, "share_threshold": t_shares,
                   "neighbours": max(map(len, groups.values())) - 1, "n_keys": len(roster),
                   "n_shared": len(inboxes), "n_masked": len(u3), "n_unmasked": len(shares),
                   "n_examples": int(sum(n for _, n in masked.values()))}
        return params + self.server_lr * mean, metrics

    def _graph(self, roster, round_seed: int, t: int) -> tuple[dict, int]:
        """({u: u's neighbourhood}, the shares' threshold): SecAgg+'s Harary graph with t-of-(k + 1)
        shares, or, without ``neighbours`` (or with k >= |U1| - 1), everyone with t-of-|U1|."""
        if self.neighbours is None or self.neighbours >= len(roster) - 1:
            return {u: list(roster) for u in roster}, t
        return (harary_neighbourhoods(roster, self.neighbours, [round_seed, 12]),
                self.threshold_count(self.neighbours + 1))

    @staticmethod
    def _advertise(server_round, instructions, t, grid) -> dict:
        """Stage 0: {cid: 64 bytes of public keys} of U1."""
        keys = grid.send("secagg_advertise", {cid: (server_round,) for cid in instructions}, _check_keys)
        check_survivors(keys, t, "advertise-keys", server_round)
        return dict(sorted(keys.items()))

    @staticmethod
    def _share_keys(server_round, roster, groups, t, grid) -> dict:
        """Stage 1: each client gets its neighbourhood's keys and deals its shares within it;
        {v: (sender ids, ciphertexts for v)} for v in U2, the ciphertexts routed."""
        requests = {}
        for cid in roster:
            ids = np.array(groups[cid], dtype=np.int64)
            requests[cid] = (server_round, ids, np.stack([np.frombuffer(roster[u], dtype=np.uint8) for u in ids]), t)
        sent = grid.send("secagg_share_keys", requests,
                         lambda cid, reply: _check_ciphertexts(cid, reply, len(groups[cid])))
        row = {u: {v: k for k, v in enumerate(w for w in groups[u] if w != u)} for u in sent}  # u's rows: its group
        inboxes = {}
        for v in sorted(sent):
            senders = [u for u in groups[v] if u in sent and u != v]
            blobs = [sent[u][row[u][v]] for u in senders]
            inboxes[v] = (np.array(senders, dtype=np.int64), np.stack(blobs) if blobs else
                          np.zeros((0, CIPHERTEXT_BYTES), dtype=np.uint8))
        return inboxes


def _check_keys(cid, reply) -> bytes:
    """A client's advertised (C_u, S_u): 64 bytes, two valid X25519 public keys."""
    if not isinstance(reply, np.ndarray) or reply.dtype != np.uint8 or reply.shape != (2 * KEY_BYTES,):
        raise SecAggCryptoError(f"client {cid} must advertise its keys as a uint8 array of shape ({2 * KEY_BYTES},)")
    data = reply.tobytes()
    check_public_key(data[:KEY_BYTES], f"client {cid}'s keys")
    check_public_key(data[KEY_BYTES:], f"client {cid}'s keys")
    return data


def _check_ciphertexts(cid, reply, n_roster: int) -> np.ndarray:
    """A client's encrypted shares: one row of CIPHERTEXT_BYTES per other client of the roster."""
    expected = (n_roster - 1, CIPHERTEXT_BYTES)
    if not isinstance(reply, np.ndarray) or reply.dtype != np.uint8 or reply.shape != expected:
        raise SecAggCryptoError(f"client {cid} must send its encrypted shares as a uint8 array of shape {expected}")
    return reply


def _check_masked(cid, reply, d: int) -> tuple[np.ndarray, int]:
    """A client's (y_u, n_examples): a uint32 vector of the parameters' length and a count."""
    if not (isinstance(reply, (list, tuple)) and len(reply) == 2 and isinstance(reply[0], np.ndarray)
            and reply[0].dtype == np.uint32 and reply[0].shape == (d,)
            and isinstance(reply[1], (int, np.integer)) and not isinstance(reply[1], bool) and reply[1] >= 0):
        raise SecAggCryptoError(f"client {cid} must send [masked uint32 vector of shape ({d},), n_examples]")
    return reply[0], int(reply[1])


def _check_shares(cid, reply, u2: list) -> dict:
    """A survivor's revealed shares: [ids of U2, uint8 array (|U2|, SHARE_BYTES)] -> {u: bytes}."""
    if not (isinstance(reply, (list, tuple)) and len(reply) == 2 and isinstance(reply[1], np.ndarray)
            and reply[1].dtype == np.uint8 and reply[1].shape == (len(u2), SHARE_BYTES)
            and np.array_equal(np.asarray(reply[0]), np.asarray(u2))):
        raise SecAggCryptoError(f"client {cid} must reveal [the ids {u2}, a uint8 array of shape "
                                f"({len(u2)}, {SHARE_BYTES})]")
    return {u: reply[1][k].tobytes() for k, u in enumerate(u2)}
