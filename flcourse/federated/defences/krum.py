"""Krum and Multi-Krum (Blanchard, El Mhamdi, Guerraoui, Stainer, NeurIPS 2017).

Each update is scored by how close it is to its nearest neighbours,

    s_i = sum_{j in N_i} ||x_i - x_j||^2,    N_i: the n - f - 2 updates nearest x_i (j != i),

Krum returns the update of lowest score, Multi-Krum the mean of the m lowest-scored. With f of
the n updates Byzantine and 2f + 2 < n, an honest neighbourhood always outweighs a Byzantine
one, and Krum is (alpha, f)-Byzantine resilient (Blanchard et al.). Distances
come from the Gram matrix, ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b, clipped at 0. See notebook 07.
"""
from __future__ import annotations

import numpy as np

from ..._validation import check_scalar
from .common import check_n_byzantine, check_updates, finite_rows, remaining_budget

KRUM_RULE = "2f + 2 < n"


def krum_low_n(f: int) -> int:
    """The fewest updates Krum accepts for f Byzantine ones: 2f + 3."""
    return 2 * f + 3


def pairwise_sq_distances(updates: np.ndarray) -> np.ndarray:
    """The (n, n) matrix of ||x_i - x_j||^2, from one matrix product; its diagonal is 0."""
    with np.errstate(over="ignore", invalid="ignore"):  # squares beyond float64 give inf, inf - inf NaN
        sq_norms = np.einsum("ij,ij->i", updates, updates)
        distances = sq_norms[:, None] + sq_norms[None, :] - 2.0 * (updates @ updates.T)
    distances[np.isnan(distances)] = np.inf  # inf - inf, between rows whose squares overflow
    np.maximum(distances, 0.0, out=distances)
    np.fill_diagonal(distances, 0.0)
    return (distances + distances.T) / 2  # exactly symmetric


def scores_from_distances(distances: np.ndarray, n_neighbours: int) -> np.ndarray:
    """s_i = the sum of the ``n_neighbours`` smallest entries of row i of ``distances``, j != i."""
    if n_neighbours <= 0:
        return np.zeros(len(distances))
    others = distances + np.diag(np.full(len(distances), np.inf))
    return np.sort(others, axis=1)[:, :n_neighbours].sum(axis=1)


def krum_scores(updates, n_byzantine: int) -> np.ndarray:
    """Krum's score of every update; +inf for a non-finite row.

    s_i = sum of the squared distances from x_i to its n' - f' - 2 nearest finite neighbours,
    with f' = max(f - k, 0) after k non-finite rows are removed (n' - f' - 2 = n - f - 2 when
    k <= f).

    Parameters
    ----------
    updates : array-like of shape (n, d)
    n_byzantine : int >= 0
        f, with 2f + 2 < n.

    Returns
    -------
    ndarray of shape (n,)
    """
    finite, kept, left, n = _krum_inputs(updates, n_byzantine, "krum_scores")
    scores = np.full(n, np.inf)
    scores[kept] = scores_from_distances(pairwise_sq_distances(finite), len(finite) - left - 2)
    return scores


def _krum_inputs(updates, n_byzantine, owner):
    """(finite rows, their positions, f', n), checked."""
    updates = check_updates(updates, owner)
    n = len(updates)
    n_byzantine = check_n_byzantine(n_byzantine, owner, n, krum_low_n, KRUM_RULE)
    finite, kept = finite_rows(updates, owner)
    left = remaining_budget(n_byzantine, n, len(finite), owner, krum_low_n, KRUM_RULE)
    return finite, kept, left, n


def multi_krum(updates, n_byzantine: int, n_selected: int, *, return_selected: bool = False):
    """Multi-Krum: the mean of the m updates of lowest Krum score.

        a = (1/m) sum_{i in S} x_i,    S: the m lowest s_i (ties: the lowest position first).

    m = 1 is Krum; m = n with f = 0 is the mean. A non-finite row is never selected; when fewer
    than m finite rows remain, all of them are (m' = min(m, n')).

    Parameters
    ----------
    updates : array-like of shape (n, d)
    n_byzantine : int >= 0
        f, with 2f + 2 < n.
    n_selected : int in [1, n]
        m.
    return_selected : bool, default=False
        Also return the positions of the selected rows, in increasing order of score.

    Returns
    -------
    aggregate : ndarray of shape (d,)
    selected : ndarray of shape (m',) of int, if ``return_selected``
    """
    return _select_and_average(updates, n_byzantine, n_selected, return_selected, "multi_krum")


def krum(updates, n_byzantine: int, *, return_selected: bool = False):
    """Krum: the update of lowest score s_i (ties: the lowest position).

    Parameters
    ----------
    updates : array-like of shape (n, d)
    n_byzantine : int >= 0
        f, with 2f + 2 < n.
    return_selected : bool, default=False
        Also return the position of the selected row (as an array of one).

    Returns
    -------
    aggregate : ndarray of shape (d,)
        A copy of the selected row.
    selected : ndarray of shape (1,) of int, if ``return_selected``
    """
    return _select_and_average(updates, n_byzantine, 1, return_selected, "krum")


def _select_and_average(updates, n_byzantine, n_selected, return_selected, owner):
    finite, kept, left, n = _krum_inputs(updates, n_byzantine, owner)
    check_scalar(n_selected, "n_selected", owner, int, low=1, high=n, closed="both")
    scores = scores_from_distances(pairwise_sq_distances(finite), len(finite) - left - 2)
    best = np.argsort(scores, kind="stable")[:min(n_selected, len(finite))]
    aggregate = finite[best].mean(axis=0)
    return (aggregate, kept[best]) if return_selected else aggregate
