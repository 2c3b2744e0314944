"""Coordinate-wise defences: each coordinate of the aggregate from that coordinate alone.

The plain mean is here as the reference every defence is compared with (one huge update moves
it anywhere: its breakdown point is 0). See notebook 07.
"""
from __future__ import annotations

import numpy as np

from ..._validation import check_scalar
from .common import finite_rows


def mean(updates) -> np.ndarray:
    """The mean of the finite rows: (1/n') sum_i x_i.

    Not robust: a single update can move it arbitrarily far. Non-finite rows are removed first
    (see :mod:`flcourse.federated.defences.common`), so it never returns NaN.

    Parameters
    ----------
    updates : array-like of shape (n, d)

    Returns
    -------
    ndarray of shape (d,)
    """
    finite, _ = finite_rows(updates, "mean")
    return finite.mean(axis=0)


def median(updates) -> np.ndarray:
    """The coordinate-wise median (Yin et al., ICML 2018): a_j = median_i x_ij.

    With n' finite rows sorted per coordinate, x_(1)j <= ... <= x_(n')j, the median is
    x_((n'+1)/2)j for odd n' and (x_(n'/2)j + x_(n'/2+1)j) / 2 for even n'.

    Guarantee: its breakdown point is 1/2. With at most floor((n - 1) / 2) arbitrary rows, every
    coordinate of the result lies between the smallest and the largest honest value of that
    coordinate; floor((n - 1) / 2) + 1 rows can move it anywhere. Yin et al. bound its error
    for a fraction alpha < 1/2 of Byzantine clients with m samples each by
    O~(alpha / sqrt(m) + 1 / sqrt(n' m) + 1 / m). Non-finite rows are removed first.

    Parameters
    ----------
    updates : array-like of shape (n, d)

    Returns
    -------
    ndarray of shape (d,)
    """
    finite, _ = finite_rows(updates, "median")
    ordered = np.sort(finite, axis=0)
    n = len(ordered)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


def trimmed_mean(updates, beta: float) -> np.ndarray:
    """The coordinate-wise beta-trimmed mean (Yin et al., ICML 2018).

    Per coordinate, drop the k = floor(beta n') largest and the k smallest of the n' finite
    values and average the n' - 2k others:

        a_j = 1 / (n' - 2k) * sum_{r = k+1}^{n' - k} x_(r)j.

    Guarantee: with at most k arbitrary rows, every coordinate lies between the smallest and the
    largest honest value (the breakdown point is beta); beta = 0 is the mean and beta near 1/2
    the median. Yin et al. bound its error by O~(alpha / sqrt(m) + 1 / sqrt(n' m)) for a
    fraction alpha <= beta of Byzantine clients with m samples each, which is order-optimal.
    Non-finite rows are removed first; k counts the finite rows.

    Parameters
    ----------
    updates : array-like of shape (n, d)
    beta : float in [0, 0.5)
        The fraction trimmed at each end.

    Returns
    -------
    ndarray of shape (d,)
    """
    check_scalar(beta, "beta", "trimmed_mean", low=0, high=0.5, closed="left")
    finite, _ = finite_rows(updates, "trimmed_mean")
    n = len(finite)
    k = int(np.floor(beta * n))
    if k == 0:
        return finite.mean(axis=0)
    return np.sort(finite, axis=0)[k:n - k].mean(axis=0)
