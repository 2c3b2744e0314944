"""What a training loop watches and writes down: its history, divergence, a checked test set.

Shared by every loop that trains one parameter vector (:func:`~flcourse.optim.sgd`,
:func:`~flcourse.optim.gradient_descent`, data-parallel SGD, the federated server), so that
their histories have the same keys and their errors the same words. See notebook 01.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_X, check_y
from ..models import Model


def record(history: dict, model: Model, params: np.ndarray, X: np.ndarray, y: np.ndarray,
           eval_set: tuple[np.ndarray, np.ndarray] | None = None, **counters) -> None:
    """Append counters, training loss and score (and test ones with ``eval_set``) to ``history``.

    Unchecked: the loss comes from the model's kernel ``loss_grad``.

    Parameters
    ----------
    history : dict of lists
        Grows by one entry per key: each counter (``epoch=3``, ``step=10``), then
        ``train_loss``, ``train_<score>`` and, with ``eval_set``, ``test_loss``,
        ``test_<score>``, where <score> is ``accuracy`` or ``r2``.
    model : Model
    params : ndarray of shape (n_params,)
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    eval_set : pair (X_test, y_test), already checked (see :func:`check_eval_set`), or None
    """
    for name, value in counters.items():
        history.setdefault(name, []).append(value)
    sets = [("train", X, y)] + ([("test", *eval_set)] if eval_set is not None else [])
    score_name = "r2" if model.n_classes is None else "accuracy"
    for prefix, X_set, y_set in sets:
        history.setdefault(f"{prefix}_loss", []).append(float(model.loss_grad(params, X_set, y_set, False)[0]))
        history.setdefault(f"{prefix}_{score_name}", []).append(model.score(params, X_set, y_set))


def check_finite(params: np.ndarray, lr: float, owner: str, where: str) -> None:
    """Raise ``FloatingPointError`` once training has diverged to inf or nan.

    The message names ``owner`` (say "sgd"), ``where`` it happened ("epoch 3") and suggests a
    learning rate smaller than ``lr``.
    """
    if not np.all(np.isfinite(params)):
        raise FloatingPointError(f"{owner} diverged: the parameters are no longer finite after "
                                 f"{where}. Try a smaller learning rate than lr={lr}.")


def check_eval_set(model: Model, eval_set, owner: str,
                   name: str = "eval_set") -> tuple[np.ndarray, np.ndarray] | None:
    """Return ``eval_set`` as a checked pair (X_test, y_test) for ``model``, or None.

    X_test must be finite with ``model.n_features`` columns and y_test hold one valid target per
    row; errors name ``eval_set[0]`` or ``eval_set[1]`` (``name`` for another parameter's name).
    """
    if eval_set is None:
        return None
    if not isinstance(eval_set, (tuple, list)) or len(eval_set) != 2:
        got = type(eval_set).__name__
        if isinstance(eval_set, (tuple, list)):
            got = f"a {got} of length {len(eval_set)}"
        raise TypeError(f"The {name!r} parameter of {owner} must be a pair (X_test, y_test). "
                        f"Got {got} instead.")
    X_test = check_X(eval_set[0], owner, model.n_features, name=f"{name}[0]")
    y_test = check_y(eval_set[1], owner, X_test.shape[0], model.n_classes, name=f"{name}[1]")
    return X_test, y_test
