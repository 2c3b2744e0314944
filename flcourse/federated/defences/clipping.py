"""Defences that clip: norm bounding (Sun, Kairouz, Suresh, McMahan 2019) and centered clipping
(Karimireddy, He, Jaggi, ICML 2021).

Both use the clipping map

    clip_tau(z) = z * min(1, tau / ||z||),

which leaves a short vector as it is and shortens a long one to length tau. See notebook 07.
"""
from __future__ import annotations

import numpy as np

from ..._validation import check_scalar
from .common import check_center, finite_rows


def row_norms(updates: np.ndarray) -> np.ndarray:
    """||x_i|| of each row of a finite stack; a row whose squares overflow is scaled first."""
    with np.errstate(over="ignore"):
        norms = np.sqrt(np.einsum("ij,ij->i", updates, updates))
    for i in np.flatnonzero(np.isinf(norms)):
        largest = np.abs(updates[i]).max()
        norms[i] = largest * np.linalg.norm(updates[i] / largest)
    return norms


def clip_rows(updates: np.ndarray, bound: float) -> np.ndarray:
    """Each row z of a finite stack as clip_bound(z) (unchecked: for the defences below)."""
    norms = row_norms(updates)
    long = norms > bound
    if not long.any():
        return updates
    scale = np.ones(len(updates))
    scale[long] = bound / norms[long]
    return updates * scale[:, None]


def clip_to_norm(updates, bound: float) -> np.ndarray:
    """The finite rows, each clipped to norm at most ``bound``: x_i * min(1, bound / ||x_i||).

    Parameters
    ----------
    updates : array-like of shape (n, d)
    bound : float > 0, or inf (no clipping)

    Returns
    -------
    ndarray of shape (n', d)
        The n' finite rows, in their order, clipped; non-finite rows are removed, as every
        defence removes them.
    """
    check_scalar(bound, "bound", "clip_to_norm", low=0, allow_inf=True)
    finite, _ = finite_rows(updates, "clip_to_norm")
    return clip_rows(finite, bound)


def norm_bounding(updates, bound: float) -> np.ndarray:
    """Norm bounding (Sun et al. 2019, "Can you really backdoor federated learning?").

        a = (1/n') sum_i x_i * min(1, M / ||x_i||).

    Guarantee: each update moves the aggregate by at most M / n', so a boosted (scaled) update
    can do no more than an honest one of norm M; it does not stop updates of small norm.

    Parameters
    ----------
    updates : array-like of shape (n, d)
    bound : float > 0, or inf
        M; with M = inf this is the mean.

    Returns
    -------
    ndarray of shape (d,)
    """
    check_scalar(bound, "bound", "norm_bounding", low=0, allow_inf=True)
    finite, _ = finite_rows(updates, "norm_bounding")
    return clip_rows(finite, bound).mean(axis=0)


def centered_clipping(updates, tau: float, *, center=None, n_iter: int = 1) -> np.ndarray:
    """Centered clipping (Karimireddy, He, Jaggi, "Learning from history for Byzantine robust
    optimization", ICML 2021).

    From v = center, ``n_iter`` times:

        v <- v + (1/n') sum_i clip_tau(x_i - v).

    Guarantee: each update moves v by at most tau / n' per step, however far it is; with v near
    the honest mean and tau of the order of the honest spread sigma, the error is of order
    sqrt(f / n) sigma for f Byzantine of n (Karimireddy et al.'s analysis).
    The paper clips momenta around the previous aggregate; this is the momentum-free variant:
    the strategy passes the previous round's aggregate as ``center``. tau = inf gives the mean.
    Non-finite rows are removed first.

    Parameters
    ----------
    updates : array-like of shape (n, d)
    tau : float > 0, or inf
        The clipping radius.
    center : array-like of shape (d,), optional
        The starting point v_0; zeros by default.
    n_iter : int >= 1, default=1

    Returns
    -------
    ndarray of shape (d,)
    """
    owner = "centered_clipping"
    check_scalar(tau, "tau", owner, low=0, allow_inf=True)
    check_scalar(n_iter, "n_iter", owner, int, low=1, closed="left")
    finite, _ = finite_rows(updates, owner)
    v = check_center(center, owner, finite.shape[1])
    for _ in range(n_iter):
        v = v + clip_rows(finite - v, tau).mean(axis=0)
    return v
