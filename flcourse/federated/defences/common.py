"""What every defence shares: the checked stack of updates, without its non-finite rows.

A defence reads a stack of n client updates, one per row, and returns one aggregate row. A row
with any non-finite value (NaN, +-inf) is taken as Byzantine: it is removed before anything is
computed, so no defence can select it or return NaN (Flower's ``aggregate_median`` and
``aggregate_krum`` return NaN or select the NaN row). For the defences given an attacker budget
f (``n_byzantine``), each removed row uses up one unit of it: with k rows removed,

    n' = n - k rows remain,    f' = max(f - k, 0) of them may still be Byzantine.

With k <= f the rules that bound f by n (Krum's 2f + 2 < n, Bulyan's n >= 4f + 3) still hold
for (n', f'); with k > f they hold for (n', 0) unless too few rows remain, which is an error.
"""
from __future__ import annotations

import numpy as np

from ..._validation import as_real_array, check_finite, check_scalar


def check_updates(updates, owner: str) -> np.ndarray:
    """Return ``updates`` as a float64 array of shape (n, d) with n >= 1, else raise."""
    updates = as_real_array(updates, "updates", owner)
    if updates.ndim != 2:
        raise ValueError(f"The 'updates' parameter of {owner} must be a 2-D array of shape "
                         f"(n_updates, n_params). Got an array of shape {updates.shape} instead.")
    if updates.shape[0] == 0:
        raise ValueError(f"The 'updates' parameter of {owner} must hold at least one update. "
                         f"Got an array of shape {updates.shape} instead.")
    return updates


def finite_rows(updates, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """The checked stack without its non-finite rows, and the positions of the rows kept.

    Parameters
    ----------
    updates : array-like of shape (n, d)
    owner : str
        The defence, named in error messages.

    Returns
    -------
    finite : ndarray of shape (n', d)
        The rows whose values are all finite, in their order (``updates`` itself when all are).
    kept : ndarray of shape (n',) of int
        Their positions in ``updates``.
    """
    updates = check_updates(updates, owner)
    good = np.isfinite(updates).all(axis=1)
    if not good.any():
        raise ValueError(f"The 'updates' parameter of {owner} must hold at least one row of finite "
                         f"numbers. Got {len(good)} rows, each with a non-finite value, instead.")
    kept = np.flatnonzero(good)
    return (updates if good.all() else updates[kept]), kept


def check_n_byzantine(n_byzantine, owner: str, n_updates: int, low_n, rule: str) -> int:
    """Return f if ``low_n(f) <= n_updates``, else raise naming ``rule`` (e.g. "2f + 2 < n")."""
    check_scalar(n_byzantine, "n_byzantine", owner, int, low=0, closed="left")
    if low_n(n_byzantine) > n_updates:
        raise ValueError(f"The 'n_byzantine' parameter of {owner} must satisfy {rule} for n = {n_updates} "
                         f"updates. Got {n_byzantine} instead.")
    return n_byzantine


def remaining_budget(n_byzantine: int, n_updates: int, n_finite: int, owner: str, low_n,
                     rule: str) -> int:
    """f' = max(f - k, 0) for k = n - n' removed rows; raise if ``rule`` fails for (n', f')."""
    left = max(n_byzantine - (n_updates - n_finite), 0)
    if low_n(left) > n_finite:
        raise ValueError(f"The 'updates' parameter of {owner} must leave enough finite rows for {rule} "
                         f"(f' = {left}). Got {n_finite} finite rows of {n_updates} instead.")
    return left


def check_center(center, owner: str, n_params: int) -> np.ndarray:
    """Return ``center`` as a finite float64 vector of length ``n_params`` (zeros if None)."""
    if center is None:
        return np.zeros(n_params)
    center = as_real_array(center, "center", owner)
    if center.shape != (n_params,):
        raise ValueError(f"The 'center' parameter of {owner} must have shape ({n_params},), one entry "
                         f"per column of updates. Got shape {center.shape} instead.")
    check_finite(center, "center", owner)
    return center
