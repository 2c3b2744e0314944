"""The array functions under the models: sigmoid, softmax, one-hot labels and cross-entropy.

Pure functions of arrays, no model in sight. :func:`sigmoid`, :func:`softmax` and :func:`one_hot`
check their input, for readers who call them; :func:`softmax_unchecked`,
:func:`cross_entropy_and_grad` and :func:`minus_labels` do not, for the models' training steps,
which call them on every step with arrays already checked. See notebook 01.
"""
from __future__ import annotations

import numpy as np

from .._validation import as_real_array, check_scalar, check_y


def sigmoid(z) -> np.ndarray:
    """Logistic function 1 / (1 + e^-z), without overflow for large |z|; ``z`` any array-like."""
    return 0.5 * (1.0 + np.tanh(0.5 * as_real_array(z, "z", "sigmoid")))


def softmax(logits) -> np.ndarray:
    """Softmax over the last axis, e.g. of shape (n_samples, n_classes), without overflow.

    ``logits`` is any array-like of real numbers with at least one entry on its last axis;
    the result is float64.
    """
    logits = as_real_array(logits, "logits", "softmax")
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError(f"The 'logits' parameter of softmax must have at least one axis with at "
                         f"least one entry on the last. Got an array of shape {logits.shape} instead.")
    if not np.isfinite(logits).all():
        raise ValueError(f"The 'logits' parameter of softmax must hold finite numbers only. "
                         f"Got {logits[~np.isfinite(logits)][0]} instead.")
    return softmax_unchecked(logits)


def softmax_unchecked(logits: np.ndarray) -> np.ndarray:
    """:func:`softmax` unchecked, for the models' training steps (a float array in, always).

    Parameters
    ----------
    logits : ndarray of shape (..., n_classes)
        Finite floats; any leading axes (samples, and K models stacked) broadcast.

    Returns
    -------
    probs : ndarray of the same shape, each row summing to 1
    """
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def one_hot(y, n_classes: int) -> np.ndarray:
    """Return an array of shape (len(y), n_classes) with a 1 in column y[i] of row i.

    ``y`` is a 1-D array-like of integer labels in [0, n_classes); whole floats such as 2.0 count
    as integers, anything else (-1, 1.5, n_classes) is refused rather than wrapped or truncated.
    """
    check_scalar(n_classes, "n_classes", "one_hot", int, low=1, high=10**6, closed="both")
    y = np.asarray(y)
    y = check_y(y, "one_hot", len(y) if y.ndim else 0, n_classes)
    encoded = np.zeros((len(y), n_classes))
    encoded[np.arange(len(y)), y] = 1.0
    return encoded


def cross_entropy_and_grad(logits: np.ndarray, y: np.ndarray,
                           need_grad: bool = True) -> tuple[float, np.ndarray | None]:
    """Mean cross-entropy of ``logits`` against labels ``y``, and its gradient w.r.t. the logits.

    Unchecked. One exp, no overflow.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
    y : ndarray of shape (n_samples,), integer labels in [0, n_classes)
    need_grad : bool, default=True
        False: skip the gradient (None in its place).

    Returns
    -------
    loss : float
    d_logits : ndarray of shape (n_samples, n_classes) or None
        (softmax(logits) - one_hot(y)) / n_samples.
    """
    rows = np.arange(len(y))
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    norm = exp.sum(axis=1)
    loss = float(np.mean(np.log(norm) - shifted[rows, y]))
    if not need_grad:
        return loss, None
    return loss, minus_labels(exp / norm[:, None], y)


def minus_labels(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(probs - one_hot(y)) / n_samples, in place: the gradient of the mean cross-entropy
    w.r.t. the logits, given probs = softmax(logits). Unchecked.

    Parameters
    ----------
    probs : ndarray of shape (n_samples, n_classes) or (K, n_samples, n_classes)
        Overwritten with the result.
    y : ndarray of shape (n_samples,) or (K, n_samples), integer labels

    Returns
    -------
    probs : the same array
    """
    probs[(*np.indices(y.shape, sparse=True), y)] -= 1.0
    probs /= y.shape[-1]
    return probs
