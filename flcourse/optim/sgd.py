"""Minibatch iteration, stochastic gradient descent and full-batch gradient descent.

Every update is params <- params - lr * grad J_batch(params). The order of minibatches comes
from a seeded generator, so two runs with the same seed take exactly the same steps.
See notebook 01.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._validation import check_bool, check_rng, check_scalar, check_X, check_y
from ..models import Model, check_model


def minibatches(n_samples: int, batch_size: int, *, n_epochs: int = 1, seed=None,
                shuffle: bool = True) -> Iterator[np.ndarray]:
    """Yield index arrays of minibatches, epoch after epoch.

    Each epoch visits every sample once, in a fresh random order when ``shuffle``; the last
    batch of an epoch is smaller when ``batch_size`` does not divide ``n_samples``. A
    ``batch_size`` larger than ``n_samples`` means full batches.
    """
    check_scalar(n_samples, "n_samples", "minibatches", int, low=1, closed="left")
    check_scalar(batch_size, "batch_size", "minibatches", int, low=1, closed="left")
    check_scalar(n_epochs, "n_epochs", "minibatches", int, low=0, closed="left")
    check_bool(shuffle, "shuffle", "minibatches")
    rng = check_rng(seed, "minibatches")
    for _ in range(n_epochs):
        yield from epoch_batches(n_samples, batch_size, rng if shuffle else None)


def epoch_batches(n_samples: int, batch_size: int, rng: np.random.Generator | None):
    """One epoch of :func:`minibatches`, unchecked: for loops that validated their inputs once."""
    order = rng.permutation(n_samples) if rng is not None else np.arange(n_samples)
    for start in range(0, n_samples, batch_size):
        yield order[start:start + batch_size]


def sgd(model: Model, params, X, y, *, lr: float, batch_size: int, n_epochs: int = 1,
        seed=None, eval_set=None) -> tuple[np.ndarray, dict]:
    """Train with minibatch SGD; return the final parameters and a per-epoch history.

    Parameters
    ----------
    model : Model
    params : ndarray of shape (n_params,)
        Starting point; not modified.
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    lr : float
        Learning rate eta > 0.
    batch_size, n_epochs : int
    seed : int, Generator or None
        Drives the order of the minibatches.
    eval_set : tuple (X_test, y_test), optional
        Also record the test loss and score after each epoch.

    Returns
    -------
    params : ndarray of shape (n_params,)
    history : dict of lists
        ``epoch``, ``train_loss``, ``train_<score>`` and, with ``eval_set``, ``test_loss``,
        ``test_<score>``, where <score> is ``accuracy`` or ``r2``; entry 0 is before training.
    """
    params, X, y = check_model(model, "sgd").check_inputs(params, X, y, "sgd")
    check_scalar(lr, "lr", "sgd", low=0)
    check_scalar(batch_size, "batch_size", "sgd", int, low=1, closed="left")
    eval_set = check_eval_set(model, eval_set, "sgd")
    rng = check_rng(seed, "sgd")
    history = {}
    record(history, model, params, X, y, eval_set, epoch=0)
    for epoch in range(1, check_scalar(n_epochs, "n_epochs", "sgd", int, low=0, closed="left") + 1):
        for batch in epoch_batches(len(y), batch_size, rng):
            params = params - lr * model.grad_unchecked(params, X[batch], y[batch])
        check_finite(params, lr, "sgd", f"epoch {epoch}")
        record(history, model, params, X, y, eval_set, epoch=epoch)
    return params, history


def gradient_descent(model: Model, params, X, y, *, lr: float, n_steps: int,
                     eval_set=None, eval_every: int = 1) -> tuple[np.ndarray, dict]:
    """Train with full-batch gradient descent for ``n_steps`` steps.

    Returns the final parameters and a history like :func:`sgd`'s, keyed by ``step`` and
    recorded every ``eval_every`` steps (and after the last).
    """
    params, X, y = check_model(model, "gradient_descent").check_inputs(params, X, y, "gradient_descent")
    check_scalar(lr, "lr", "gradient_descent", low=0)
    check_scalar(n_steps, "n_steps", "gradient_descent", int, low=0, closed="left")
    check_scalar(eval_every, "eval_every", "gradient_descent", int, low=1, closed="left")
    eval_set = check_eval_set(model, eval_set, "gradient_descent")
    history = {}
    record(history, model, params, X, y, eval_set, step=0)
    for step in range(1, n_steps + 1):
        params = params - lr * model.grad_unchecked(params, X, y)
        check_finite(params, lr, "gradient_descent", f"step {step}")
        if step % eval_every == 0 or step == n_steps:
            record(history, model, params, X, y, eval_set, step=step)
    return params, history


def record(history: dict, model: Model, params, X, y, eval_set=None, **counters) -> None:
    """Append counters, training loss and score (and test ones with ``eval_set``) to ``history``."""
    for name, value in counters.items():
        history.setdefault(name, []).append(value)
    sets = [("train", X, y)] + ([("test", *eval_set)] if eval_set is not None else [])
    score_name = "r2" if model.n_classes is None else "accuracy"
    for prefix, X_set, y_set in sets:
        history.setdefault(f"{prefix}_loss", []).append(float(model.loss_grad(params, X_set, y_set, False)[0]))
        history.setdefault(f"{prefix}_{score_name}", []).append(model.score(params, X_set, y_set))


def check_finite(params, lr, owner, where) -> None:
    """Raise ``FloatingPointError`` once training has diverged to inf or nan."""
    if not np.all(np.isfinite(params)):
        raise FloatingPointError(f"{owner} diverged: the parameters are no longer finite after "
                                 f"{where}. Try a smaller learning rate than lr={lr}.")


def check_eval_set(model: Model, eval_set, owner: str, name: str = "eval_set") -> tuple[np.ndarray, np.ndarray] | None:
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
