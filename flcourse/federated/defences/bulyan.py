"""Bulyan (El Mhamdi, Guerraoui, Rouault, ICML 2018): Krum to select, a trimmed median to average.

Krum alone may pick an update that is close to the others in norm but far off in a few
coordinates. Bulyan first selects theta = n - 2f updates by Krum, one at a time (each selected
update leaves the pool), then averages, per coordinate, the beta = theta - 2f selected values
closest to their median:

    S = Krum-selected(theta),    a_j = (1/beta) sum_{i in B_j} x_ij,
    B_j: the beta rows of S whose x_ij are closest to median_{i in S} x_ij.

Guarantee: with n >= 4f + 3, Bulyan is strongly Byzantine resilient (El Mhamdi et al.): each
coordinate of the result is near the honest values' (a leeway of O(sigma / sqrt(d)) per
coordinate for honest updates of spread sigma), which Krum alone does not ensure. One distance
matrix serves every Krum step. See notebook 07.
"""
from __future__ import annotations

import numpy as np

from .common import check_n_byzantine, check_updates, finite_rows, remaining_budget
from .krum import pairwise_sq_distances, scores_from_distances

BULYAN_RULE = "n >= 4f + 3"


def bulyan_low_n(f: int) -> int:
    """The fewest updates Bulyan accepts for f Byzantine ones: 4f + 3."""
    return 4 * f + 3


def bulyan(updates, n_byzantine: int, *, return_selected: bool = False):
    """Bulyan's aggregate of ``updates``.

    Non-finite rows are removed first and use up the budget: Bulyan then runs on the n' finite
    rows with f' = max(f - k, 0), so theta = n' - 2f' and beta = theta - 2f'. Ties: Krum's as in
    :func:`repeated_krum`; among equally close runs of beta values, the one of smaller values is
    averaged. So the result does not depend on the order of the rows (barring exact double ties).

    Parameters
    ----------
    updates : array-like of shape (n, d)
    n_byzantine : int >= 0
        f, with n >= 4f + 3.
    return_selected : bool, default=False
        Also return the positions of the theta rows Krum selected, in the order selected.

    Returns
    -------
    aggregate : ndarray of shape (d,)
    selected : ndarray of shape (theta,) of int, if ``return_selected``
    """
    updates = check_updates(updates, "bulyan")
    n = len(updates)
    n_byzantine = check_n_byzantine(n_byzantine, "bulyan", n, bulyan_low_n, BULYAN_RULE)
    finite, kept = finite_rows(updates, "bulyan")
    left = remaining_budget(n_byzantine, n, len(finite), "bulyan", bulyan_low_n, BULYAN_RULE)
    chosen = repeated_krum(finite, left, len(finite) - 2 * left)
    aggregate = closest_to_median_mean(finite[chosen], len(chosen) - 2 * left)
    return (aggregate, kept[chosen]) if return_selected else aggregate


def repeated_krum(updates: np.ndarray, n_byzantine: int, n_selected: int) -> np.ndarray:
    """Positions of ``n_selected`` rows picked by Krum one at a time, each leaving the pool.

    Among r rows still in the pool, Krum scores each by its min(max(1, r - f - 2), r - 1)
    nearest others (Flower's rule, so that the last picks still compare distances). With one
    neighbour, two rows nearest to each other score the same, so ties go to the row of smaller
    sum of squared distances to the whole pool, then to the lowest position: the selection does
    not depend on the order of the rows unless they tie in both.
    """
    distances = pairwise_sq_distances(updates)
    pool, chosen = list(range(len(updates))), []
    for _ in range(n_selected):
        r = len(pool)
        among = distances[np.ix_(pool, pool)]
        scores = scores_from_distances(among, min(max(1, r - n_byzantine - 2), r - 1))
        best = np.lexsort((np.arange(r), among.sum(axis=1), scores))[0]
        chosen.append(pool.pop(int(best)))
    return np.array(chosen, dtype=np.int64)


def closest_to_median_mean(selected: np.ndarray, beta: int) -> np.ndarray:
    """Per coordinate, the mean of the ``beta`` values closest to the coordinate's median.

    The beta values closest to a point are a run of beta consecutive values in sorted order;
    the run starting at position j is at most max(m - x_(j), x_(j+beta-1) - m) from the median m,
    and the closest run is the one that minimises it (the first, of smaller values, on ties).
    """
    ordered = np.sort(selected, axis=0)
    theta = len(ordered)
    middle = (ordered[(theta - 1) // 2] + ordered[theta // 2]) / 2
    reach = np.maximum(middle - ordered[:theta - beta + 1], ordered[beta - 1:] - middle)
    start = np.argmin(reach, axis=0)
    rows = start[None, :] + np.arange(beta)[:, None]
    return np.take_along_axis(ordered, rows, axis=0).mean(axis=0)
