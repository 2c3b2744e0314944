"""Fixed-point encoding of clipped vectors into Z_M, M = 2^32, so that sums survive masking.

Secure aggregation (Bonawitz et al., CCS 2017) adds vectors and masks in a ring Z_M, where a
uniform mask hides its vector exactly. Floats are first clipped and rounded to a grid:

    clip each coordinate to [-c, c],  K = 2^(bits - 1) - 1,  step  Delta = c / K,
    encode(x) = round(clip(x) / Delta) + K  in {0, ..., 2K}  (2K = 2^bits - 2).

The grid is symmetric: 0 and +-c are exact and encode(-x) = 2K - encode(x). The sum Q of n
encoded vectors is at most n * 2K, so it never wraps mod M as long as

    n * (2^bits - 2) <= M - 1,   i.e.  n <= max_summands(bits, M)  (65538 for bits=16, M=2^32),

and then decode_sum gives (Q - n K) * Delta. With rounding to nearest each coordinate is off by
at most Delta / 2, so the decoded sum differs from the sum of the clipped inputs by at most

    n * Delta / 2  per coordinate  (up to float64 rounding: a relative 2^-52 of n c).

Stochastic rounding (round up with probability equal to the fraction) is unbiased instead, and
off by less than n * Delta. After clipping to L2 norm C every coordinate lies in [-C, C], so
c = C loses nothing. See notebook 08.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_real_array, check_choice, check_rng, check_scalar


def quantisation_step(clip: float, bits: int = 16) -> float:
    """Delta = c / (2^(bits - 1) - 1), the grid's step."""
    check_scalar(clip, "clip", "quantisation_step", low=0)
    check_scalar(bits, "bits", "quantisation_step", int, low=2, high=52, closed="both")
    return clip / (2 ** (bits - 1) - 1)


def max_summands(bits: int = 16, modulus: int = 2**32) -> int:
    """The largest n with n * (2^bits - 2) <= modulus - 1: n encoded vectors sum without wrapping."""
    check_scalar(bits, "bits", "max_summands", int, low=2, high=52, closed="both")
    _check_modulus(modulus, bits, "max_summands")
    return (modulus - 1) // (2**bits - 2)


def clip_and_encode(x, clip: float, bits: int = 16, modulus: int = 2**32, *,
                    rounding: str = "nearest", seed=None) -> np.ndarray:
    """Clip each coordinate to [-clip, clip] and encode it as round(x / Delta) + K in {0..2K}.

    Parameters
    ----------
    x : array-like of any shape, 0-d included
        Finite real numbers.
    clip : float > 0
        c, the clipping bound per coordinate.
    bits : int in [2, 52], default=16
        The grid has 2^bits - 1 points, K = 2^(bits - 1) - 1 on each side of 0.
    modulus : int, a power of two in [2^bits, 2^64], default=2**32
        M, the ring the encoded vectors are summed (and masked) in.
    rounding : {"nearest", "stochastic"}, default="nearest"
        Nearest is off by at most Delta / 2; stochastic is unbiased and off by less than Delta.
    seed : int, numpy.random.Generator or None
        For stochastic rounding only.

    Returns
    -------
    ndarray of the shape of x, dtype uint32 if modulus <= 2^32 else uint64
        The encoded values, in [0, 2^bits - 2]; uint32 arithmetic wraps mod 2^32 by itself.
    """
    owner = "clip_and_encode"
    step = quantisation_step(clip, bits)
    _check_modulus(modulus, bits, owner)
    check_choice(rounding, "rounding", owner, {"nearest", "stochastic"})
    x = as_real_array(x, "x", owner)
    if not np.isfinite(x).all():
        raise ValueError(f"The 'x' parameter of {owner} must hold finite numbers only. "
                         f"Got {int((~np.isfinite(x)).sum())} non-finite entries instead.")
    half = 2 ** (bits - 1) - 1
    scaled = np.clip(x, -clip, clip) / step  # in [-K, K]
    if rounding == "nearest":
        levels = np.rint(scaled)
    else:
        low = np.floor(scaled)
        levels = low + (check_rng(seed, owner).random(scaled.shape) < scaled - low)
    codes = levels + half  # |levels| <= K: rint and floor of a value in [-K, K] stay there
    return np.asarray(codes).astype(np.uint32 if modulus <= 2**32 else np.uint64)


def decode_sum(total, n: int, clip: float, bits: int = 16, modulus: int = 2**32) -> np.ndarray:
    """The float sum of n clipped vectors from the sum of their encodings: (Q - n K) * Delta.

    Parameters
    ----------
    total : array-like of ints, any shape
        Q, the sum of n outputs of :func:`clip_and_encode` (masks included and cancelled), in any
        unsigned or signed integer dtype or as Python ints; it is reduced mod ``modulus`` first.
    n : int in [1, max_summands(bits, modulus)]
        How many vectors were summed.
    clip, bits, modulus
        As given to :func:`clip_and_encode`.

    Returns
    -------
    ndarray of float64, the shape of total
        Within n * Delta / 2 of the sum of the clipped inputs (nearest rounding).

    Raises
    ------
    ValueError
        If n is too large for bits and modulus (the sum could wrap), or if a coordinate of the
        reduced total exceeds n * 2K, which no sum of n encodings can: it wrapped, or n is wrong.
    """
    owner = "decode_sum"
    step = quantisation_step(clip, bits)
    limit = max_summands(bits, modulus)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= limit:
        raise ValueError(f"The 'n' parameter of {owner} must be an int in [1, {limit}]: the sum of n "
                         f"encodings, up to n * (2^{bits} - 2), must stay below the modulus {modulus}. "
                         f"Got {n!r} instead. Use fewer bits or a larger modulus.")
    reduced = _reduce(total, modulus, owner)
    half = 2 ** (bits - 1) - 1
    if reduced.size and reduced.max() > n * 2 * half:
        position = np.unravel_index(int(np.argmax(reduced)), reduced.shape)
        where = tuple(int(i) for i in position)
        raise ValueError(f"The 'total' parameter of {owner} holds {int(reduced.max())} at position "
                         f"{where}, above n * (2^{bits} - 2) = {n * 2 * half}: the sum wrapped, "
                         f"holds more than n = {n} vectors, or was not reduced correctly.")
    offset = np.uint64(n * half)
    above = reduced >= offset
    # |Q - n K| without wrapping, exact as a float64 below 2^53:
    magnitude = (np.maximum(reduced, offset) - np.minimum(reduced, offset)).astype(np.float64)
    return np.where(above, magnitude, -magnitude) * step


def _reduce(total, modulus: int, owner: str) -> np.ndarray:
    """``total`` mod ``modulus`` as uint64 (modulus divides 2^64: reducing mod 2^64 first is exact)."""
    array = np.asarray(total)
    if array.dtype == object:
        try:
            return np.array([int(v) % modulus for v in array.flat], dtype=np.uint64).reshape(array.shape)
        except (TypeError, ValueError):
            pass
    elif np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.uint64)  # a C cast: a negative int wraps to itself mod 2^64
        return array if modulus == 2**64 else array % np.uint64(modulus)
    raise TypeError(f"The 'total' parameter of {owner} must be an array of integers. "
                    f"Got {type(total).__name__} of dtype {array.dtype} instead.")


def _check_modulus(modulus, bits: int, owner: str) -> None:
    k = modulus.bit_length() - 1 if isinstance(modulus, numbers.Integral) and modulus > 0 else -1
    if isinstance(modulus, bool) or k < 0 or modulus != 2**k or not bits <= k <= 64:
        raise ValueError(f"The 'modulus' parameter of {owner} must be a power of two in "
                         f"[2^bits, 2^64] = [2^{bits}, 2^64]. Got {modulus!r} instead.")
