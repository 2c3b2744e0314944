"""Bucketing (Karimireddy, He, Jaggi, "Byzantine-robust learning on heterogeneous datasets via
bucketing", ICLR 2022).

On heterogeneous data honest updates differ, and a robust aggregator that throws away the
updates far from the others throws away honest ones too. Bucketing shuffles the n updates,
averages them in buckets of s and hands the ceil(n / s) bucket means to the aggregator:

    pi = a random permutation,    y_b = mean_{i in bucket b} x_pi(i),    a = AGG(y_1, ..., y_B).

Averaging s updates divides their spread (variance) by s, and f Byzantine updates spoil at most
f buckets, so an aggregator robust to f of n is used with f of ceil(n / s). See notebook 07.
"""
from __future__ import annotations

import numpy as np

from ..._validation import check_rng, check_scalar
from .common import finite_rows


def bucket_means(updates, bucket_size: int, rng) -> tuple[np.ndarray, list]:
    """The finite rows shuffled by ``rng`` and averaged in consecutive buckets of ``bucket_size``.

    The last bucket holds the n' mod s rows left over, when there are any (so it may be
    smaller: its mean is still one row). Non-finite rows are removed before shuffling.

    Parameters
    ----------
    updates : array-like of shape (n, d)
    bucket_size : int >= 1
        s.
    rng : int, numpy.random.Generator or None
        Draws the permutation (one ``rng.permutation(n')``).

    Returns
    -------
    means : ndarray of shape (ceil(n' / s), d)
    buckets : list of ndarray of int
        The positions in ``updates`` of the rows of each bucket.
    """
    check_scalar(bucket_size, "bucket_size", "bucketing", int, low=1, closed="left")
    rng = check_rng(rng, "bucketing", name="rng")
    finite, kept = finite_rows(updates, "bucketing")
    order = rng.permutation(len(finite))
    starts = range(0, len(finite), bucket_size)
    means = np.stack([finite[order[s:s + bucket_size]].mean(axis=0) for s in starts])
    return means, [kept[order[s:s + bucket_size]] for s in starts]


def bucketing(updates, bucket_size: int, aggregator, rng) -> np.ndarray:
    """``aggregator`` applied to the bucket means of ``updates`` (see :func:`bucket_means`).

    With s = 1 this is ``aggregator`` on the shuffled rows (the same, for a permutation-invariant
    aggregator); with s >= n' it is the mean of the finite rows.

    Parameters
    ----------
    updates : array-like of shape (n, d)
    bucket_size : int >= 1
        s.
    aggregator : callable
        Maps a stack of shape (B, d) to a row of shape (d,): ``median``, or
        ``functools.partial(krum, n_byzantine=1)``.
    rng : int, numpy.random.Generator or None

    Returns
    -------
    ndarray of shape (d,)
    """
    if not callable(aggregator):
        raise TypeError(f"The 'aggregator' parameter of bucketing must be callable. "
                        f"Got {aggregator!r} of type {type(aggregator).__name__} instead.")
    means, _ = bucket_means(updates, bucket_size, rng)
    return aggregator(means)
