"""The geometric median by the smoothed Weiszfeld algorithm, as in RFA (Pillutla, Kakade,
Harchaoui, IEEE Trans. Signal Processing 2022).

The geometric median minimises the sum of distances (not of squared distances, the mean's):

    z* = argmin_z F(z),    F(z) = sum_i w_i ||z - x_i||.

Weiszfeld's iteration is a reweighted mean, each point weighted by the inverse of its distance,
with the distance floored at nu so that no weight is infinite (the smoothing):

    z <- sum_i b_i x_i / sum_i b_i,    b_i = w_i / max(nu, ||z - x_i||).

Guarantee: its breakdown point is 1/2: fewer than half of the total weight, however far away,
moves z* by a bounded amount. See notebook 07.
"""
from __future__ import annotations

import numpy as np

from ..._validation import as_real_array, check_scalar
from .common import finite_rows
from .coordinate import median


def geometric_median(updates, *, weights=None, smoothing: float = 1e-6, max_iter: int = 100,
                     tol: float = 1e-10, return_n_iter: bool = False):
    """The smoothed Weiszfeld approximation of the (weighted) geometric median of the rows.

    Starts from the weighted mean and stops after ``max_iter`` steps or once a step changes the
    objective by at most ``tol`` times its value, |F(z_prev) - F(z)| <= tol F(z) (RFA's rule).
    Each z is a convex combination z = sum_i g_i x_i of the rows, so the distances come from one
    Gram matrix of the rows and a step costs O(n^2), not O(n d). The rows are centred on their
    coordinate-wise median first: with far updates present, centring on the mean would leave the
    honest rows long vectors, and ||a||^2 + ||b||^2 - 2 a.b would lose the digits of their distances.
    Non-finite rows (and their weights) are removed first.

    Parameters
    ----------
    updates : array-like of shape (n, d)
    weights : array-like of shape (n,) of finite numbers >= 0, optional
        w_i; equal weights by default. Those of the finite rows must not all be zero.
    smoothing : float > 0, default=1e-6
        nu, the floor of the distances.
    max_iter : int >= 1, default=100
    tol : float >= 0, default=1e-10
    return_n_iter : bool, default=False
        Also return the number of Weiszfeld steps taken.

    Returns
    -------
    median : ndarray of shape (d,)
    n_iter : int, if ``return_n_iter``
    """
    owner = "geometric_median"
    check_scalar(smoothing, "smoothing", owner, low=0)
    check_scalar(max_iter, "max_iter", owner, int, low=1, closed="left")
    check_scalar(tol, "tol", owner, low=0, closed="left")
    finite, kept = finite_rows(updates, owner)
    alpha = _check_weights(weights, len(updates), kept)
    with np.errstate(over="ignore", invalid="ignore"):
        centred = finite - median(finite)  # inside the honest rows: their distances keep their digits
        gram = centred @ centred.T
    if not np.isfinite(gram).all():
        raise ValueError(f"The 'updates' parameter of {owner} must hold rows whose squared distances "
                         f"fit in a float64 (values below about 1e150). Got values up to "
                         f"{np.abs(finite).max():g} instead.")
    coefficients, n_iter = weiszfeld(gram, alpha, smoothing, max_iter, tol)
    result = coefficients @ finite
    return (result, n_iter) if return_n_iter else result


def weiszfeld(gram: np.ndarray, alpha: np.ndarray, smoothing: float, max_iter: int, tol: float):
    """Smoothed Weiszfeld in the coefficients g of z = sum_i g_i x_i; returns (g, steps).

    ||z - x_i||^2 = g' G g - 2 (G g)_i + G_ii for the Gram matrix G of the rows.
    """
    coefficients = alpha
    distances = _distances(gram, coefficients)
    objective = alpha @ distances
    for n_iter in range(1, max_iter + 1):
        b = alpha / np.maximum(smoothing, distances)
        coefficients = b / b.sum()
        distances = _distances(gram, coefficients)
        previous, objective = objective, alpha @ distances
        if abs(previous - objective) <= tol * objective:
            break
    return coefficients, n_iter


def _distances(gram: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    projected = gram @ coefficients
    squared = coefficients @ projected - 2 * projected + np.diag(gram)
    return np.sqrt(np.maximum(squared, 0.0))


def _check_weights(weights, n_updates: int, kept: np.ndarray) -> np.ndarray:
    """The weights of the finite rows, normalised to sum to 1."""
    if weights is None:
        return np.full(len(kept), 1.0 / len(kept))
    weights = as_real_array(weights, "weights", "geometric_median")
    if weights.shape != (n_updates,):
        raise ValueError(f"The 'weights' parameter of geometric_median must have one entry per update "
                         f"({n_updates}). Got shape {weights.shape} instead.")
    if not np.isfinite(weights).all() or (weights < 0).any() or weights[kept].sum() <= 0:
        raise ValueError(f"The 'weights' parameter of geometric_median must hold finite numbers >= 0, "
                         f"not all zero on the finite rows. Got {weights.tolist()} instead.")
    weights = weights[kept] / weights[kept].max()  # only the ratios matter; no overflowing sum
    return weights / weights.sum()
