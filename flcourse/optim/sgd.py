"""The training loops: minibatch iteration, stochastic and full-batch gradient descent.

Every update is params <- params - lr * grad J_batch(params), through the model's unchecked
kernel ``grad_unchecked`` once the inputs are checked. The order of minibatches comes from a
seeded generator, so two runs with the same seed take exactly the same steps. See notebook 01.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._validation import check_bool, check_rng, check_scalar
from ..models import Model, check_model
from .monitoring import check_eval_set, check_finite, record


def minibatches(n_samples: int, batch_size: int, *, n_epochs: int = 1, seed=None,
                shuffle: bool = True) -> Iterator[np.ndarray]:
    """Yield index arrays of minibatches, epoch after epoch.

    Each epoch visits every sample once, in a fresh random order when ``shuffle``; the last
    batch of an epoch is smaller when ``batch_size`` does not divide ``n_samples``. A
    ``batch_size`` larger than ``n_samples`` means full batches.

    Parameters
    ----------
    n_samples, batch_size : int, >= 1
    n_epochs : int, default=1
    seed : int, Generator or None
        Drives the order; the same seed gives the same batches.
    shuffle : bool, default=True
        False: every epoch in the order 0, 1, ..., n_samples - 1.

    Yields
    ------
    batch : ndarray of shape (batch_size,) or smaller, int64 row indices
    """
    check_scalar(n_samples, "n_samples", "minibatches", int, low=1, closed="left")
    check_scalar(batch_size, "batch_size", "minibatches", int, low=1, closed="left")
    check_scalar(n_epochs, "n_epochs", "minibatches", int, low=0, closed="left")
    check_bool(shuffle, "shuffle", "minibatches")
    rng = check_rng(seed, "minibatches")
    for _ in range(n_epochs):
        yield from epoch_batches(n_samples, batch_size, rng if shuffle else None)


def epoch_batches(n_samples: int, batch_size: int,
                  rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    """One epoch of :func:`minibatches`, unchecked: for loops that validated their inputs once.

    ``rng`` None keeps the rows in order; a Generator draws one permutation for the epoch.
    """
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

    Parameters
    ----------
    model : Model
    params : ndarray of shape (n_params,)
        Starting point; not modified.
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    lr : float
        Learning rate eta > 0.
    n_steps : int, >= 0
    eval_set : tuple (X_test, y_test), optional
    eval_every : int, default=1
        Record the history every ``eval_every`` steps (and after the last).

    Returns
    -------
    params : ndarray of shape (n_params,)
    history : dict of lists
        Like :func:`sgd`'s, keyed by ``step`` instead of ``epoch``.
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
