"""Shamir t-of-n secret sharing over the prime field GF(p), p = 2^127 - 1 (Shamir 1979).

To share a secret s, draw a polynomial of degree t - 1 with constant term s and the other
coefficients uniform in GF(p),

    f(z) = s + a_1 z + ... + a_{t-1} z^{t-1}  (mod p),

and give holder i the share (i, f(i)), i = 1..n. Any t shares fix f, and the secret is its value
at 0 (Lagrange interpolation):

    s = f(0) = sum_j y_j * prod_{m != j} x_m / (x_m - x_j)  (mod p).

Any t - 1 shares reveal nothing: for every candidate secret s' there is exactly one polynomial of
degree t - 1 through them and (0, s'), so each s' is equally likely. Secure aggregation
(Bonawitz et al., CCS 2017) shares each client's self-mask seed and key this way, so that the
server can recover them from any t survivors and from no fewer. See notebook 08.

Secrets are ints in [0, p) or bytes. p = 2^127 - 1 (a Mersenne prime) is larger than any
15-byte chunk with a marker byte (< 2^121), so bytes are cut into chunks of at most 15 bytes,
one field element each: a 32-byte seed or key is 3 elements, each with its own polynomial.
Secrecy does not depend on the size of p (it is information-theoretic); p only has to exceed the
secrets and the number of holders.

Randomness: the coefficients come from :func:`secrets.randbelow` by default, which is what real
use needs. A ``random.Random`` or ``numpy.random.Generator`` may be passed for reproducible
tests and demonstrations only: neither is a cryptographic source, so shares made with them can
be predicted from the generator's state.
"""
from __future__ import annotations

import numbers
import random
import secrets

import numpy as np

#: The field's prime, the Mersenne prime 2^127 - 1.
PRIME = 2**127 - 1
_CHUNK = 15  # bytes per field element: b"\x01" + 15 bytes < 2^121 < PRIME


def split_secret(secret: int, n_shares: int, threshold: int, *, rng=None) -> list[tuple[int, int]]:
    """Split ``secret`` into ``n_shares`` shares, any ``threshold`` of which reconstruct it.

    The shares are (x, f(x)) for x = 1..n of f(z) = secret + a_1 z + ... + a_{t-1} z^{t-1} mod p,
    with a_1..a_{t-1} uniform in GF(p) (Shamir 1979).

    Parameters
    ----------
    secret : int in [0, p), p = 2**127 - 1
    n_shares : int >= 1
        n, the number of holders.
    threshold : int in [1, n_shares]
        t, how many shares reconstruct the secret; t - 1 reveal nothing about it.
    rng : None, random.Random or numpy.random.Generator, default=None
        None draws from :func:`secrets.randbelow` (cryptographic; use it for anything real). The
        other two are for reproducible tests only.

    Returns
    -------
    list of n (x, y) pairs of ints
    """
    _check_field_int(secret, "secret", "split_secret", low=0)
    n_shares, threshold = _check_n_t(n_shares, threshold, "split_secret")
    coefficients = [secret] + [random_element(rng, "split_secret") for _ in range(threshold - 1)]
    return [(x, _evaluate(coefficients, x)) for x in range(1, n_shares + 1)]


def reconstruct_secret(shares, threshold: int) -> int:
    """The secret f(0) from the first ``threshold`` of ``shares``, by Lagrange interpolation.

    s = sum_j y_j * L_j with L_j = prod_{m != j} x_m / (x_m - x_j) mod p, the inverses taken
    as pow(a, -1, p). Any t shares give the same s; shares after the first t are checked (no
    duplicate x) but not used.

    Parameters
    ----------
    shares : sequence of (x, y) pairs of ints
        From :func:`split_secret`: x in [1, p) all distinct, y in [0, p).
    threshold : int >= 1
        The t the secret was split with; fewer than t shares raise ``ValueError``.

    Returns
    -------
    int in [0, p)
    """
    xs, ys = _check_shares(shares, threshold, "reconstruct_secret")
    coefficients = lagrange_at_zero(xs)
    return sum(y * c for y, c in zip(ys, coefficients)) % PRIME


def lagrange_at_zero(xs) -> list[int]:
    """The Lagrange coefficients L_j = prod_{m != j} x_m / (x_m - x_j) mod p, so f(0) = sum_j y_j L_j.

    They depend on the x's only, so a server that reconstructs many secrets from the same
    holders computes them once. O(t^2) products and t modular inverses.

    Parameters
    ----------
    xs : sequence of distinct ints in [1, p)

    Returns
    -------
    list of ints in [0, p), one per x
    """
    coefficients = []
    for j, xj in enumerate(xs):
        numerator, denominator = 1, 1
        for m, xm in enumerate(xs):
            if m != j:
                numerator = numerator * xm % PRIME
                denominator = denominator * (xm - xj) % PRIME
        coefficients.append(numerator * pow(denominator, -1, PRIME) % PRIME)
    return coefficients


def split_bytes(data: bytes, n_shares: int, threshold: int, *,
                rng=None) -> list[tuple[int, tuple[int, ...]]]:
    """Split bytes (a seed, a private key) into shares (x, (y_1, ..., y_k)), one y per chunk.

    ``data`` is cut into k = ceil(len / 15) chunks; chunk c becomes the field element
    int.from_bytes(b"\\x01" + c) < 2^121 (the marker keeps leading zero bytes), and each element
    is split with its own polynomial, as in :func:`split_secret`. 32 bytes give k = 3.

    Parameters
    ----------
    data : bytes
    n_shares, threshold, rng
        As in :func:`split_secret`.

    Returns
    -------
    list of n (x, tuple of k ints) pairs
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"The 'data' parameter of split_bytes must be bytes. "
                        f"Got {data!r} of type {type(data).__name__} instead.")
    n_shares, threshold = _check_n_t(n_shares, threshold, "split_bytes")
    elements = [int.from_bytes(b"\x01" + data[i:i + _CHUNK], "big") for i in range(0, len(data), _CHUNK)]
    per_element = [split_secret(e, n_shares, threshold, rng=rng) for e in elements]
    return [(x, tuple(shares[x - 1][1] for shares in per_element)) for x in range(1, n_shares + 1)]


def reconstruct_bytes(shares, threshold: int, *, coefficients=None) -> bytes:
    """The bytes shared by :func:`split_bytes`, from the first ``threshold`` of ``shares``.

    Raises ``ValueError`` if a reconstructed element lacks its marker byte, which is what
    inconsistent shares (from different secrets, or altered) almost always give.
    ``coefficients``, the :func:`lagrange_at_zero` of the first ``threshold`` x's, may be passed
    by a caller that rebuilds many secrets from the same holders (computed here otherwise).
    """
    owner = "reconstruct_bytes"
    shares = list(shares) if not isinstance(shares, (list, tuple)) else shares
    lengths = {len(s[1]) if isinstance(s, tuple) and len(s) == 2 and isinstance(s[1], tuple) else -1
               for s in shares}
    if len(lengths) > 1 or -1 in lengths:
        raise ValueError(f"The 'shares' parameter of {owner} must hold (x, tuple of ints) pairs "
                         f"of one length, as split_bytes returns. Got tuples of lengths "
                         f"{sorted(lengths)} instead.")
    xs, _ = _check_shares([(s[0], 0) for s in shares], threshold, owner)
    if coefficients is None:
        coefficients = lagrange_at_zero(xs)
    elif len(coefficients) != threshold:
        raise ValueError(f"The 'coefficients' parameter of {owner} must hold {threshold} Lagrange coefficients, "
                         f"one per share used. Got {len(coefficients)} instead.")
    chunks = []
    for k in range(lengths.pop() if lengths else 0):
        ys = [_check_field_int(s[1][k], "shares", owner, low=0) for s in shares[:threshold]]
        element = sum(y * c for y, c in zip(ys, coefficients)) % PRIME
        chunk = element.to_bytes((element.bit_length() + 7) // 8, "big")
        if chunk[:1] != b"\x01" or len(chunk) > _CHUNK + 1:
            raise ValueError(f"The 'shares' parameter of {owner} does not reconstruct bytes: "
                             f"element {k} has no marker byte. The shares are inconsistent "
                             f"(from different secrets?).")
        chunks.append(chunk[1:])
    return b"".join(chunks)


def random_element(rng, owner: str = "random_element") -> int:
    """One element uniform in GF(p), from ``rng`` (None: :func:`secrets.randbelow`).

    From a numpy Generator, ceil(127 / 64) = 2 uint64 words are drawn, masked to 127 bits and
    rejected if the value is p (probability 2^-127), so the draw is exactly uniform.
    """
    if rng is None:
        return secrets.randbelow(PRIME)
    if isinstance(rng, random.Random):
        return rng.randrange(PRIME)
    if isinstance(rng, np.random.Generator):
        n_bits = PRIME.bit_length()
        while True:
            words = rng.integers(0, 2**64, size=-(-n_bits // 64), dtype=np.uint64)
            value = int.from_bytes(b"".join(int(w).to_bytes(8, "big") for w in words), "big")
            value &= (1 << n_bits) - 1
            if value < PRIME:
                return value
    raise TypeError(f"The 'rng' parameter of {owner} must be None (secrets.randbelow), a random.Random "
                    f"or a numpy.random.Generator. Got {rng!r} of type {type(rng).__name__} instead.")


def _evaluate(coefficients: list[int], x: int) -> int:
    """f(x) mod p by Horner's rule, coefficients from the constant term up, reduced once at the
    end (the holders' x are small, so the exact value has only t * (127 + log2 x) bits)."""
    value = 0
    for coefficient in reversed(coefficients):
        value = value * x + coefficient
    return value % PRIME


def _check_field_int(value, name: str, owner: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"The {name!r} parameter of {owner} must hold ints in [{low}, p), "
                        f"p = 2**127 - 1. Got {value!r} of type {type(value).__name__} instead.")
    if not low <= value < PRIME:
        raise ValueError(f"The {name!r} parameter of {owner} must hold ints in [{low}, p), "
                         f"p = 2**127 - 1. Got {value!r} instead.")
    return int(value)


def _check_n_t(n_shares, threshold, owner: str) -> tuple[int, int]:
    for name, value in (("n_shares", n_shares), ("threshold", threshold)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"The {name!r} parameter of {owner} must be an int. "
                            f"Got {value!r} of type {type(value).__name__} instead.")
    if not 1 <= n_shares < PRIME:
        raise ValueError(f"The 'n_shares' parameter of {owner} must be an int in [1, p), "
                         f"p = 2**127 - 1. Got {n_shares!r} instead.")
    if not 1 <= threshold <= n_shares:
        raise ValueError(f"The 'threshold' parameter of {owner} must be an int in [1, n_shares] = "
                         f"[1, {n_shares}]. Got {threshold!r} instead.")
    return int(n_shares), int(threshold)


def _check_shares(shares, threshold, owner: str) -> tuple[list[int], list[int]]:
    """The x's and y's of the first ``threshold`` shares, after checking all of them."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Integral) or threshold < 1:
        raise ValueError(f"The 'threshold' parameter of {owner} must be an int >= 1. "
                         f"Got {threshold!r} instead.")
    shares = list(shares)
    if len(shares) < threshold:
        raise ValueError(f"The 'shares' parameter of {owner} must hold at least threshold = {threshold} "
                         f"shares. Got {len(shares)} instead: fewer than t shares reveal nothing.")
    for share in shares:
        if not isinstance(share, (tuple, list)) or len(share) != 2:
            raise TypeError(f"The 'shares' parameter of {owner} must hold (x, y) pairs. "
                            f"Got {share!r} instead.")
    xs = [_check_field_int(x, "shares", owner, low=0) for x, _ in shares]
    if 0 in xs:
        raise ValueError(f"The 'shares' parameter of {owner} must not hold a share at x = 0: "
                         f"f(0) is the secret itself, and shares are at x = 1..n. "
                         f"Got x = 0 at position {xs.index(0)} instead.")
    seen = set()
    for x in xs:
        if x in seen:
            raise ValueError(f"The 'shares' parameter of {owner} must hold distinct x. "
                             f"Got x = {x} twice instead.")
        seen.add(x)
    ys = [_check_field_int(y, "shares", owner, low=0) for _, y in shares[:threshold]]
    return xs[:threshold], ys
