"""The averaging maths of distributed and federated learning, as pure array functions.

A server decides *what* to average; these functions only compute. See notebook 03.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .._validation import as_real_array

OWNER = "weighted_average"


def weighted_average(arrays, weights) -> np.ndarray:
    """Return sum_k w_k * a_k / sum_k w_k.

    With ``arrays`` the shard gradients g_k and ``weights`` the shard sizes n_k, this is the
    full-data gradient: sum_k (n_k / N) * g_k = grad J (notebook 03). Weights so large that
    their sum overflows are first divided by the largest, so only their ratios matter
    (``[1e308, 1e308]`` gives the plain mean); tiny (subnormal) weights need no such care.

    Parameters
    ----------
    arrays : sequence of K ndarrays of one shape, or ndarray of shape (K, ...)
    weights : sequence of K finite non-negative numbers, not all zero

    Returns
    -------
    ndarray of the arrays' shape, float64
    """
    stacked = _stack(arrays)
    weights = _check_weights(weights, stacked.shape[0])
    with np.errstate(over="ignore"):
        total = weights.sum()
    if not np.isfinite(total):  # each weight is finite, their sum overflowed
        weights = weights / weights.max()
        total = weights.sum()
    return np.tensordot(weights / total, stacked, axes=1)


def _stack(arrays) -> np.ndarray:
    """The K arrays as one float64 array of shape (K, ...)."""
    if not isinstance(arrays, np.ndarray):
        if isinstance(arrays, (str, bytes)) or not isinstance(arrays, Iterable):
            raise TypeError(f"The 'arrays' parameter of {OWNER} must be a sequence of arrays. "
                            f"Got {type(arrays).__name__} instead.")
        arrays = list(arrays)
        shapes = {np.shape(array) for array in arrays}
        if len(shapes) > 1:
            raise ValueError(f"The 'arrays' parameter of {OWNER} must hold arrays of one "
                             f"shape. Got shapes {sorted(shapes)} instead.")
    stacked = as_real_array(arrays, "arrays", OWNER)
    if stacked.ndim == 0 or stacked.shape[0] == 0:
        raise ValueError(f"The 'arrays' parameter of {OWNER} must hold at least one array. "
                         f"Got an array of shape {stacked.shape} instead.")
    return stacked


def _check_weights(weights, n_arrays: int) -> np.ndarray:
    weights = as_real_array(weights, "weights", OWNER)
    if weights.shape != (n_arrays,):
        raise ValueError(f"The 'weights' parameter of {OWNER} must have one entry per "
                         f"array ({n_arrays}). Got shape {weights.shape} instead.")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.max() <= 0:
        raise ValueError(f"The 'weights' parameter of {OWNER} must hold finite "
                         f"non-negative numbers with a positive sum. Got {weights.tolist()} instead.")
    return weights
