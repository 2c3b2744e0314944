"""Secure aggregation's rounds (Bonawitz et al., CCS 2017), honest-but-curious server: a client's
side (:class:`SecAggParticipant`) and the server's last step (:func:`unmask_sum`).

One aggregation runs in four request/response stages; U1 ⊇ U2 ⊇ U3 are the clients still
answering after each, and t the threshold:

0. **Advertise keys.** Client u sends its public keys (C_u, S_u). U1: those who did.
1. **Share keys.** u draws its self-mask seed b_u, splits b_u and its mask key s_u into t-of-|U1|
   Shamir shares (share k to the k-th client of U1 in id order) and sends each client v of U1
   its pair of shares encrypted under KA(c_u, C_v). U2: those who did.
2. **Masked input.** u receives the ciphertexts sent to it and sends
   y_u = x_u + PRG(b_u) + sum_{v in U2, v > u} PRG(s_uv) - sum_{v in U2, v < u} PRG(s_uv)  (mod 2^32),
   s_uv = KA(s_u, S_v). U3: those who did.
3. **Unmask.** Given U3 and the dropped U2 \\ U3, each survivor reveals its shares of b_u for
   u in U3 and of s_u for u in U2 \\ U3, never both for one u. From any t of them the server
   rebuilds the seeds and the dropped clients' keys and computes
   sum_{u in U3} x_u = sum_{u in U3} y_u - sum_{u in U3} PRG(b_u) + (the dropped clients' pairwise masks).

Fewer than t clients at any stage abort the round with :class:`SecureAggregationAborted`: the
server then learns nothing.

SecAgg+ (Bell et al., CCS 2020) replaces the complete graph by a sparse one: client u shares its
secrets with, and masks with, only its k neighbours (:func:`harary_neighbourhoods`), so a
client's work and bytes grow with k ~ log n instead of n. The client's side is the same code,
given its neighbourhood as its roster; :func:`unmask_sum` takes the neighbourhoods. The server-side driver is
:class:`flcourse.federated.strategies.SecAggFedAvg`; see notebook 08.
"""
from __future__ import annotations

import numbers
import os

import numpy as np

from .secagg import (KEY_BYTES, MASK_LABEL, SHARE_LABEL, SecAggCryptoError, add_mask, agree, decrypt_share,
                     encrypt_share, expand_mask, generate_keypair, pairwise_sign, private_key_bytes,
                     private_key_from_bytes)
from .shamir import lagrange_at_zero, reconstruct_bytes, split_bytes

ELEMENT_BYTES = 16  # a field element of GF(2^127 - 1)
SHARE_BYTES = 3 * ELEMENT_BYTES  # a share of 32 bytes: three elements
SHARE_PAIR_BYTES = 2 * SHARE_BYTES  # the shares of (s_u, b_u) for one holder


class SecureAggregationAborted(RuntimeError):
    """Fewer clients than the threshold are left: the round stops before anything is revealed."""


def check_survivors(survivors, threshold: int, stage: str, server_round: int) -> None:
    """Raise :class:`SecureAggregationAborted` if fewer than ``threshold`` clients survive ``stage``."""
    survivors = sorted(survivors)
    if len(survivors) < threshold:
        raise SecureAggregationAborted(
            f"secure aggregation aborted in round {server_round} at the {stage} stage: {len(survivors)} "
            f"client(s) left {survivors}, fewer than the threshold t = {threshold}. No input, seed or key "
            f"was revealed.")


def pack_elements(elements) -> bytes:
    """Field elements as 16 big-endian bytes each."""
    return b"".join(int(e).to_bytes(ELEMENT_BYTES, "big") for e in elements)


def unpack_elements(data: bytes) -> tuple[int, ...]:
    """The field elements of :func:`pack_elements`."""
    return tuple(int.from_bytes(data[i:i + ELEMENT_BYTES], "big") for i in range(0, len(data), ELEMENT_BYTES))


class SecAggParticipant:
    """Client ``cid``'s side of one secure aggregation (a fresh one every round).

    Its private keys and seed live in this object only. It reveals a share of its seed or of
    its key only in :meth:`unmask`, once, and never both for the same client.
    """

    def __init__(self, cid: int, server_round: int):
        self.cid, self.server_round = int(cid), int(server_round)
        self._c_private, c_public = generate_keypair()
        self._s_private, s_public = generate_keypair()
        self.public_keys = c_public + s_public
        self._seed = os.urandom(KEY_BYTES)
        self._roster, self._threshold, self._held, self._unmasked = None, None, {}, False

    def share_keys(self, roster: dict, threshold: int) -> dict:
        """{v: ciphertext of (share of s_u, share of b_u) for v} for every other v of ``roster``.

        ``roster`` is {cid: 64 bytes of public keys} of U1; it must hold this client's own keys.
        """
        if roster.get(self.cid) != self.public_keys or not 1 <= threshold <= len(roster):
            raise ValueError(f"client {self.cid}: the roster must hold its own public keys and at least "
                             f"t = {threshold} clients. Got {len(roster)} clients.")
        self._roster, self._threshold, holders = dict(roster), int(threshold), sorted(roster)
        key_shares = split_bytes(private_key_bytes(self._s_private), len(holders), threshold)
        seed_shares = split_bytes(self._seed, len(holders), threshold)
        out = {}
        for (_, key_share), (_, seed_share), v in zip(key_shares, seed_shares, holders):
            plaintext = pack_elements(key_share + seed_share)
            if v == self.cid:
                self._held[v] = plaintext
            else:
                key = agree(self._c_private, roster[v][:KEY_BYTES], SHARE_LABEL)
                out[v] = encrypt_share(key, plaintext, self.server_round, self.cid, v)
        return out

    def masked_input(self, encoded: np.ndarray, ciphertexts: dict) -> np.ndarray:
        """y_u: ``encoded`` (uint32) plus the self mask and the pairwise masks with U2, mod 2^32.

        ``ciphertexts`` is {u: the ciphertext u sent this client}; its senders and this client are U2.
        """
        if self._roster is None:
            raise ValueError(f"client {self.cid}: masked_input before share_keys")
        unknown = sorted(set(ciphertexts) - set(self._roster) | ({self.cid} & set(ciphertexts)))
        if unknown:
            raise ValueError(f"client {self.cid}: ciphertexts from clients {unknown}, not others of the roster")
        for u, blob in ciphertexts.items():  # decrypt now: a share that does not authenticate is refused
            key = agree(self._c_private, self._roster[u][:KEY_BYTES], SHARE_LABEL)
            self._held[u] = decrypt_share(key, blob, self.server_round, u, self.cid)
        total = np.asarray(encoded, dtype=np.uint32).copy()
        add_mask(total, expand_mask(self._seed, total.size), +1)
        for v in sorted(ciphertexts):
            seed = agree(self._s_private, self._roster[v][KEY_BYTES:], MASK_LABEL)
            add_mask(total, expand_mask(seed, total.size), pairwise_sign(self.cid, v))
        return total

    def unmask(self, survivors, dropped) -> dict:
        """{u: 48 bytes}: the share of b_u for each u of ``survivors`` (U3) and of s_u for each u of
        ``dropped`` (U2 minus U3). Refused a second time, or if the two lists overlap, or name a
        client whose shares it does not hold, or leave fewer than t survivors."""
        survivors, dropped = {int(u) for u in survivors}, {int(u) for u in dropped}
        problem = ("it has already answered" if self._unmasked else
                   "the lists overlap" if survivors & dropped else
                   "it holds no shares of some of them" if not survivors | dropped <= set(self._held) else
                   "it is not among the survivors" if self.cid not in survivors else
                   f"fewer than t = {self._threshold} survive" if len(survivors) < self._threshold else None)
        if problem is not None:
            raise ValueError(f"client {self.cid} refuses to unmask ({problem}): survivors {sorted(survivors)}, "
                             f"dropped {sorted(dropped)}")
        self._unmasked = True
        return {u: self._held[u][SHARE_BYTES:] if u in survivors else self._held[u][:SHARE_BYTES]
                for u in sorted(survivors | dropped)}


def harary_neighbourhoods(cids, k: int, seed) -> dict:
    """SecAgg+'s communication graph: the clients in a random order on a ring, each joined to the
    k / 2 before it and the k / 2 after it (the Harary graph H_{k,n}, relabelled at random).

    Parameters
    ----------
    cids : iterable of int
    k : int, even, >= 2
        The degree; k >= n - 1 gives the complete graph (plain SecAgg).
    seed : int, sequence of ints or Generator
        The relabelling (public: the server draws it and sends each client its neighbours).

    Returns
    -------
    dict of int to list of int
        {u: u and its neighbours, in id order}.
    """
    cids = sorted(int(u) for u in cids)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2 or k % 2:
        raise ValueError(f"The 'k' parameter of harary_neighbourhoods must be an even int >= 2. Got {k!r} instead.")
    if k >= len(cids) - 1:
        return {u: cids for u in cids}
    order = [cids[i] for i in np.random.default_rng(seed).permutation(len(cids))]
    return {u: sorted({order[(i + j) % len(order)] for j in range(-(k // 2), k // 2 + 1)})
            for i, u in enumerate(order)}


def unmask_sum(masked: dict, roster: dict, shares: dict, threshold: int, ciphertext_senders,
               neighbourhoods: dict | None = None) -> np.ndarray:
    """sum_{u in U3} x_u mod 2^32 from the masked inputs and, for each client, t holders' shares.

    Parameters
    ----------
    masked : dict of int to ndarray of uint32
        {u: y_u} for u in U3.
    roster : dict of int to bytes
        {cid: 64 bytes of public keys} of U1.
    shares : dict of int to dict of int to bytes
        {v: {u: 48 bytes}}: what each survivor v revealed in the unmask stage.
    threshold : int
        t; for each client the first t of its holders who answered (by id) are used.
    ciphertext_senders : iterable of int
        U2, the clients who shared their keys (so whose pairwise masks are in the y's).
    neighbourhoods : dict of int to list of int, optional
        SecAgg+ (Bell et al. 2020): {u: u's neighbours and u, in id order}, the holders of u's
        shares (the k-th of them holds x = k + 1) and the clients u masked with. Default: every
        client of ``roster`` for everyone (Bonawitz et al.'s complete graph).

    Returns
    -------
    ndarray of uint32
    """
    survivors, u2 = sorted(masked), set(ciphertext_senders)
    everyone = sorted(roster)
    neighbourhoods = neighbourhoods or {u: everyone for u in everyone}
    lagrange = {}

    def rebuild(u):
        group = neighbourhoods[u]
        holders = [v for v in group if u in shares.get(v, {})][:threshold]
        if len(holders) < threshold:
            raise SecureAggregationAborted(f"the secret of client {u} has {len(holders)} share(s) revealed, "
                                           f"fewer than the threshold t = {threshold}: the sum cannot be unmasked")
        xs = tuple(group.index(v) + 1 for v in holders)
        if xs not in lagrange:  # once per set of holders
            lagrange[xs] = lagrange_at_zero(xs)
        coefficients = lagrange[xs]
        try:
            return reconstruct_bytes([(x, unpack_elements(shares[v][u])) for x, v in zip(xs, holders)], threshold,
                                     coefficients=coefficients)
        except ValueError as error:
            raise SecAggCryptoError(f"the shares of client {u} do not reconstruct its secret: {error}") from None

    total = np.zeros(next(iter(masked.values())).size, dtype=np.uint32)
    for u in survivors:
        add_mask(total, masked[u], +1)
        add_mask(total, expand_mask(rebuild(u), total.size), -1)
    for u in sorted(u2 - set(survivors)):
        private = private_key_from_bytes(rebuild(u))
        for v in (v for v in neighbourhoods[u] if v in masked and v != u):  # v's y holds sign(v, u) PRG(s_vu)
            seed = agree(private, roster[v][KEY_BYTES:], MASK_LABEL)
            add_mask(total, expand_mask(seed, total.size), -pairwise_sign(v, u))
    return total
