"""FedAvg behind secure aggregation (Bonawitz et al., CCS 2017): the server learns only the sum.

One round is four stages of the server loop (:meth:`RoundGrid.send` each), the protocol of
:mod:`flcourse.privacy.secagg_protocol`: advertise keys, share keys, masked input (the clients
train, clip, encode into Z_{2^32} and mask), unmask. The clients must be
:class:`~flcourse.federated.secagg_client.SecAggClient` s. A client that drops out at any stage
is recovered from the others' shares while t of them are left; below t the round aborts with
:class:`~flcourse.privacy.secagg_protocol.SecureAggregationAborted`. With ``clip_norm`` and
``noise_multiplier`` each client also adds its part of the Gaussian noise, so that the sum of
any t or more carries N(0, (z C)^2): central DP's noise, with no trusted server. See notebook 08.
"""
from __future__ import annotations

import math

import numpy as np

from ..._validation import Interval
from ...privacy.fixed_point import decode_sum, max_summands
from ...privacy.secagg import KEY_BYTES, NONCE_BYTES, TAG_BYTES, SecAggCryptoError, check_public_key
from ...privacy.secagg_protocol import SHARE_BYTES, SHARE_PAIR_BYTES, check_survivors, unmask_sum
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
    """

    parameter_constraints = {
        **{key: FedAvg.parameter_constraints[key] for key in ("fraction_fit", "local_epochs", "batch_size", "lr")},
        "threshold": Interval(float, 0, 1, closed="right"),
        "clip": Interval(float, 0, None),
        "bits": Interval(int, 2, 24, closed="both"),
        "clip_norm": Interval(float, 0, None, none_ok=True),
        "noise_multiplier": Interval(float, 0, None, closed="left"),
        "server_lr": Interval(float, 0, None),
    }

    def __init__(self, *, fraction_fit: float = 1.0, threshold: float = 0.6, clip: float = 1.0, bits: int = 16,
                 clip_norm: float | None = None, noise_multiplier: float = 0.0, server_lr: float = 1.0,
                 local_epochs: int = 1, batch_size=None, lr: float = 0.1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs, batch_size=batch_size, lr=lr)
        self.threshold, self.clip, self.bits = threshold, clip, bits
        self.clip_norm, self.noise_multiplier, self.server_lr = clip_norm, noise_multiplier, server_lr

    def validate(self) -> None:
        super().validate()
        if self.noise_multiplier > 0 and self.clip_norm is None:
            raise ValueError(f"The 'noise_multiplier' parameter of SecAggFedAvg needs a 'clip_norm' (noise is "
                             f"scaled to it). Got noise_multiplier={self.noise_multiplier!r} and clip_norm=None.")

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
        inboxes = self._share_keys(server_round, roster, t, grid)
        d = params.size
        masked = grid.send("secagg_masked_fit", {v: (server_round, params, instructions[v], *inboxes[v])
                                                 for v in inboxes}, lambda cid, reply: _check_masked(cid, reply, d))
        check_survivors(masked, t, "masked-input", server_round)
        u3, dropped = sorted(masked), sorted(set(inboxes) - set(masked))
        request = (server_round, np.array(u3, dtype=np.int64), np.array(dropped, dtype=np.int64))
        shares = grid.send("secagg_unmask", {v: request for v in u3},
                           lambda cid, reply: _check_shares(cid, reply, sorted(inboxes)))
        check_survivors(shares, t, "unmask", server_round)
        total = unmask_sum({u: y for u, (y, _) in masked.items()}, roster, shares, t, inboxes)
        mean = decode_sum(total, len(u3), self.clip, self.bits) / len(u3)
        metrics = {"n_selected": len(instructions), "threshold": t, "n_keys": len(roster),
                   "n_shared": len(inboxes), "n_masked": len(u3), "n_unmasked": len(shares),
                   "n_examples": int(sum(n for _, n in masked.values()))}
        return params + self.server_lr * mean, metrics

    @staticmethod
    def _advertise(server_round, instructions, t, grid) -> dict:
        """Stage 0: {cid: 64 bytes of public keys} of U1."""
        keys = grid.send("secagg_advertise", {cid: (server_round,) for cid in instructions}, _check_keys)
        check_survivors(keys, t, "advertise-keys", server_round)
        return dict(sorted(keys.items()))

    @staticmethod
    def _share_keys(server_round, roster, t, grid) -> dict:
        """Stage 1: {v: (sender ids, ciphertexts for v)} for v in U2, the ciphertexts routed."""
        ids = np.array(list(roster), dtype=np.int64)
        table = np.stack([np.frombuffer(roster[cid], dtype=np.uint8) for cid in roster])
        sent = grid.send("secagg_share_keys", {cid: (server_round, ids, table, t) for cid in roster},
                         lambda cid, reply: _check_ciphertexts(cid, reply, len(roster)))
        check_survivors(sent, t, "share-keys", server_round)
        u2 = sorted(sent)
        order = {v: k for k, v in enumerate(roster)}  # u's ciphertexts follow the roster, u left out

        def row(u, v):
            return order[v] - (order[v] > order[u])

        inboxes = {}
        for v in u2:
            senders = [u for u in u2 if u != v]
            blobs = [sent[u][row(u, v)] for u in senders]
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
