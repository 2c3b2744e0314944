"""Numpy models with analytic gradients over one flat float64 parameter vector.

A model holds only its hyper-parameters; the parameters live outside it, in one flat vector
``params``. Training, sharding and averaging are then plain vector arithmetic, and the
communication cost of a model is ``params.nbytes``. Every model computes the empirical risk

    J(params) = 1/n * sum_i loss(params; x_i, y_i) + l2/2 * ||weights||^2

(biases are not penalised), its gradient, and predictions. See notebook 01.
"""
from __future__ import annotations

import inspect

import numpy as np

from .._validation import (as_real_array, check_bool, check_params, check_rng, check_scalar, check_X,
                          check_y)


class Model:
    """Base class: validation at the public boundary, the maths in ``_loss_grad``.

    Subclasses set ``n_params`` and ``n_classes`` (``None`` for regression) and implement
    ``_loss_grad``, ``_predict`` and ``_weights_mask``.
    """

    n_params: int
    n_classes: int | None

    def init_params(self, seed=None) -> np.ndarray:
        """Return starting parameters, a vector of shape (n_params,): zeros for linear models."""
        check_rng(seed, f"{type(self).__name__}.init_params")
        return np.zeros(self.n_params)

    def loss(self, params, X, y) -> float:
        """Return the empirical risk J(params) on (X, y), penalty included."""
        params, X, y = self.check_inputs(params, X, y, "loss")
        return self._loss_grad(params, X, y, need_grad=False)[0]

    def grad(self, params, X, y) -> np.ndarray:
        """Return the gradient of J at ``params``, a vector of shape (n_params,)."""
        params, X, y = self.check_inputs(params, X, y, "grad")
        return self._loss_grad(params, X, y)[1]

    def loss_and_grad(self, params, X, y) -> tuple[float, np.ndarray]:
        """Return ``(loss, grad)`` in one pass over the data."""
        params, X, y = self.check_inputs(params, X, y, "loss_and_grad")
        return self._loss_grad(params, X, y)

    def predict(self, params, X) -> np.ndarray:
        """Return predictions of shape (n_samples,): class labels, or real values for regression."""
        X = check_X(X, f"{type(self).__name__}.predict", self.n_features)
        params = check_params(params, self.n_params, f"{type(self).__name__}.predict")
        return self._predict(params, X)

    def score(self, params, X, y) -> float:
        """Return accuracy for a classifier, the coefficient of determination R^2 for regression
        (nan when every target is the same, e.g. a single sample: R^2 is then undefined)."""
        params, X, y = self.check_inputs(params, X, y, "score")
        y_hat = self._predict(params, X)
        if self.n_classes is not None:
            return float(np.mean(y_hat == y))
        spread = np.sum((y - y.mean()) ** 2)
        return float(1.0 - np.sum((y - y_hat) ** 2) / spread) if spread > 0 else float("nan")

    def check_inputs(self, params, X, y, method: str):
        """Validate and convert ``(params, X, y)``; raise a clear error on bad input."""
        owner = f"{type(self).__name__}.{method}"
        X = check_X(X, owner, self.n_features)
        y = check_y(y, owner, X.shape[0], self.n_classes)
        return check_params(params, self.n_params, owner), X, y

    def _grad(self, params, X, y):
        """The gradient alone, unchecked: what training loops call on every step."""
        return self._loss_grad(params, X, y)[1]

    def _grad_stacked(self, params, X, y):
        """The gradients of K models on K datasets of equal size, unchecked: ``params`` of shape
        (K, n_params), ``X`` (K, n, d), ``y`` (K, n) -> (K, n_params). Row k is exactly
        ``_grad(params[k], X[k], y[k])``. Here a loop; models whose maths broadcast over a
        leading axis override it with one vectorised pass (the federated simulation engine)."""
        return np.stack([self._grad(p, X_k, y_k) for p, X_k, y_k in zip(params, X, y)])

    def _penalty(self, params):
        """(l2/2 * ||weights||^2, its gradient); (0.0, 0.0) when there is no penalty."""
        if not self.l2:
            return 0.0, 0.0
        weights = self._weights(params)
        return 0.5 * self.l2 * weights @ weights, self.l2 * weights

    def _penalty_grad(self, params):
        """The penalty's gradient alone, for ``params`` of shape (n_params,) or (K, n_params)."""
        return self.l2 * self._weights(params) if self.l2 else 0.0

    def _weights(self, params):
        """``params`` with the biases set to zero."""
        if getattr(self, "_mask", None) is None:
            self._mask = self._weights_mask()
        return params * self._mask

    def __repr__(self) -> str:
        names = inspect.signature(type(self).__init__).parameters
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in names if k != "self")
        return f"{type(self).__name__}({args})"


class LinearRegression(Model):
    """Least squares: loss(params; x, y) = (x @ w + b - y)^2 / 2.

    Parameters
    ----------
    n_features : int
        Number of input features d.
    fit_intercept : bool, default=True
        Whether the model has a bias b (the last entry of ``params``).
    l2 : float, default=0.0
        Strength of the penalty l2/2 * ||w||^2.
    """

    n_classes = None

    def __init__(self, *, n_features: int, fit_intercept: bool = True, l2: float = 0.0):
        self.n_features = check_scalar(n_features, "n_features", "LinearRegression", int, low=1, closed="left")
        self.fit_intercept = check_bool(fit_intercept, "fit_intercept", "LinearRegression")
        self.l2 = check_scalar(l2, "l2", "LinearRegression", low=0, closed="left")
        self.n_params = n_features + int(self.fit_intercept)

    def _predict(self, params, X):
        y_hat = X @ params[:self.n_features]
        return y_hat + params[-1] if self.fit_intercept else y_hat

    def _loss_grad(self, params, X, y, need_grad=True):
        residual = self._predict(params, X) - y
        penalty, penalty_grad = self._penalty(params)
        loss = 0.5 * np.mean(residual ** 2) + penalty
        if not need_grad:
            return loss, None
        grad = X.T @ residual / X.shape[0]
        if self.fit_intercept:
            grad = np.append(grad, residual.mean())
        return loss, grad + penalty_grad

    def _weights_mask(self):
        return np.arange(self.n_params) < self.n_features


class LogisticRegression(Model):
    """Binary logistic regression, labels in {0, 1}: loss = log(1 + e^z) - y * z, z = x @ w + b.

    Parameters
    ----------
    n_features : int
        Number of input features d; ``params`` holds w (d entries) then b.
    l2 : float, default=0.0
        Strength of the penalty l2/2 * ||w||^2.
    """

    n_classes = 2

    def __init__(self, *, n_features: int, l2: float = 0.0):
        self.n_features = check_scalar(n_features, "n_features", "LogisticRegression", int, low=1, closed="left")
        self.l2 = check_scalar(l2, "l2", "LogisticRegression", low=0, closed="left")
        self.n_params = n_features + 1

    def predict_proba(self, params, X) -> np.ndarray:
        """Return P(y = 1 | x) for each row, shape (n_samples,)."""
        X = check_X(X, "LogisticRegression.predict_proba", self.n_features)
        params = check_params(params, self.n_params, "LogisticRegression.predict_proba")
        return sigmoid(X @ params[:-1] + params[-1])

    def _predict(self, params, X):
        return (X @ params[:-1] + params[-1] > 0).astype(np.int64)

    def _loss_grad(self, params, X, y, need_grad=True):
        z = X @ params[:-1] + params[-1]
        penalty, penalty_grad = self._penalty(params)
        loss = np.mean(np.logaddexp(0.0, z) - y * z) + penalty
        if not need_grad:
            return loss, None
        error = (sigmoid(z) - y) / X.shape[0]
        return loss, np.append(X.T @ error, error.sum()) + penalty_grad

    def _weights_mask(self):
        return np.arange(self.n_params) < self.n_features


class SoftmaxRegression(Model):
    """Multinomial logistic regression: loss = logsumexp(z) - z[y], z = x @ W + b.

    Parameters
    ----------
    n_features, n_classes : int
        Input dimension d and number of classes c; ``params`` holds W (d x c, row-major)
        then b (c entries), so ``n_params = (d + 1) * c``.
    l2 : float, default=0.0
        Strength of the penalty l2/2 * ||W||^2.
    """

    def __init__(self, *, n_features: int, n_classes: int, l2: float = 0.0):
        self.n_features = check_scalar(n_features, "n_features", "SoftmaxRegression", int, low=1, closed="left")
        self.n_classes = check_scalar(n_classes, "n_classes", "SoftmaxRegression", int, low=2, closed="left")
        self.l2 = check_scalar(l2, "l2", "SoftmaxRegression", low=0, closed="left")
        self.n_params = (n_features + 1) * n_classes

    def predict_proba(self, params, X) -> np.ndarray:
        """Return class probabilities, shape (n_samples, n_classes)."""
        X = check_X(X, "SoftmaxRegression.predict_proba", self.n_features)
        params = check_params(params, self.n_params, "SoftmaxRegression.predict_proba")
        return softmax(self._logits(params, X))

    def _logits(self, params, X):
        """X @ W + b; with a leading axis K on params and X, K models at once."""
        split = self.n_features * self.n_classes
        W = params[..., :split].reshape(params.shape[:-1] + (self.n_features, self.n_classes))
        return X @ W + params[..., None, split:]

    def _predict(self, params, X):
        return np.argmax(self._logits(params, X), axis=-1)

    def _loss_grad(self, params, X, y, need_grad=True):
        loss, d_logits = cross_entropy_and_grad(self._logits(params, X), y, need_grad)
        penalty, penalty_grad = self._penalty(params)
        if not need_grad:
            return loss + penalty, None
        return loss + penalty, self._grad_from_logits(X, d_logits, penalty_grad)

    def _grad(self, params, X, y):
        d_logits = minus_labels(_softmax(self._logits(params, X)), y)
        return self._grad_from_logits(X, d_logits, self._penalty_grad(params))

    _grad_stacked = _grad  # every step above broadcasts over a leading axis K

    def _grad_from_logits(self, X, d_logits, penalty_grad):
        grad = np.empty(d_logits.shape[:-2] + (self.n_params,))
        split = self.n_features * self.n_classes
        grad[..., :split] = (X.swapaxes(-1, -2) @ d_logits).reshape(grad.shape[:-1] + (split,))
        grad[..., split:] = d_logits.sum(axis=-2)
        grad += penalty_grad
        return grad

    def _weights_mask(self):
        return np.arange(self.n_params) < self.n_features * self.n_classes


class MLP(Model):
    """One hidden layer with tanh, softmax output: z = tanh(x @ W1 + b1) @ W2 + b2.

    Parameters
    ----------
    n_features, n_hidden, n_classes : int
        Layer widths; ``params`` holds W1 (d x h), b1 (h), W2 (h x c), b2 (c), each row-major.
    l2 : float, default=0.0
        Strength of the penalty l2/2 * (||W1||^2 + ||W2||^2).
    """

    def __init__(self, *, n_features: int, n_hidden: int, n_classes: int, l2: float = 0.0):
        self.n_features = check_scalar(n_features, "n_features", "MLP", int, low=1, closed="left")
        self.n_hidden = check_scalar(n_hidden, "n_hidden", "MLP", int, low=1, closed="left")
        self.n_classes = check_scalar(n_classes, "n_classes", "MLP", int, low=2, closed="left")
        self.l2 = check_scalar(l2, "l2", "MLP", low=0, closed="left")
        d, h, c = n_features, n_hidden, n_classes
        self._shapes = [(d, h), (h,), (h, c), (c,)]
        self.n_params = d * h + h + h * c + c

    def init_params(self, seed=None) -> np.ndarray:
        """Return Glorot-uniform weights and zero biases, drawn from ``seed``."""
        rng = check_rng(seed, "MLP.init_params")
        parts = []
        for shape in self._shapes:
            limit = np.sqrt(6.0 / sum(shape)) if len(shape) == 2 else 0.0
            parts.append(rng.uniform(-limit, limit, size=shape).ravel())
        return np.concatenate(parts)

    def _unpack(self, params):
        """W1, b1, W2, b2 as views; with a leading axis K on params, K models at once (biases
        then get a middle axis of length 1, to broadcast over the samples)."""
        parts, start, lead = [], 0, params.shape[:-1]
        for shape in self._shapes:
            size = int(np.prod(shape))
            view = shape if len(shape) == 2 else (1,) + shape
            parts.append(params[..., start:start + size].reshape(lead + view))
            start += size
        return parts

    def _forward(self, params, X):
        W1, b1, W2, b2 = self._unpack(params)
        hidden = np.tanh(X @ W1 + b1)
        return hidden, hidden @ W2 + b2

    def _predict(self, params, X):
        return np.argmax(self._forward(params, X)[1], axis=-1)

    def _loss_grad(self, params, X, y, need_grad=True):
        hidden, logits = self._forward(params, X)
        loss, d_logits = cross_entropy_and_grad(logits, y, need_grad)
        penalty, penalty_grad = self._penalty(params)
        if not need_grad:
            return loss + penalty, None
        return loss + penalty, self._backward(params, X, hidden, d_logits) + penalty_grad

    def _grad(self, params, X, y):
        hidden, logits = self._forward(params, X)
        d_logits = minus_labels(_softmax(logits), y)
        return self._backward(params, X, hidden, d_logits) + self._penalty_grad(params)

    _grad_stacked = _grad  # every step above broadcasts over a leading axis K

    def _backward(self, params, X, hidden, d_logits):
        """Back-propagate d_logits through the two layers: the gradient without the penalty."""
        W2 = self._unpack(params)[2]
        d_hidden = (d_logits @ W2.swapaxes(-1, -2)) * (1.0 - hidden ** 2)
        grads = [X.swapaxes(-1, -2) @ d_hidden, d_hidden.sum(-2), hidden.swapaxes(-1, -2) @ d_logits,
                 d_logits.sum(-2)]
        return np.concatenate([g.reshape(params.shape[:-1] + (-1,)) for g in grads], axis=-1)

    def _weights_mask(self):
        return np.concatenate([np.full(int(np.prod(s)), len(s) == 2) for s in self._shapes])


def cross_entropy_and_grad(logits, y, need_grad=True):
    """Mean cross-entropy of ``logits`` (n_samples, n_classes) against labels ``y``, and its
    gradient w.r.t. the logits, (softmax(logits) - one_hot(y)) / n_samples; one exp, no overflow."""
    rows = np.arange(len(y))
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    norm = exp.sum(axis=1)
    loss = float(np.mean(np.log(norm) - shifted[rows, y]))
    if not need_grad:
        return loss, None
    return loss, minus_labels(exp / norm[:, None], y)


def minus_labels(probs, y):
    """(probs - one_hot(y)) / n_samples, in place: the gradient of the mean cross-entropy
    w.r.t. the logits, given probs = softmax(logits). Also for a stack of K such arrays,
    probs (K, n_samples, n_classes) and y (K, n_samples)."""
    probs[(*np.indices(y.shape, sparse=True), y)] -= 1.0
    probs /= y.shape[-1]
    return probs


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
    return _softmax(logits)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """:func:`softmax` unchecked, for the models' training steps (a float array in, always)."""
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


def check_model(model, owner: str, name: str = "model") -> Model:
    """Return ``model`` if it is a flcourse :class:`Model` instance, else raise ``TypeError``."""
    if isinstance(model, Model):
        return model
    if isinstance(model, type):
        got = f"the class {model.__name__} (instantiate it, hyper-parameters as keywords)"
    else:
        got = f"{model!r} of type {type(model).__name__}"
    raise TypeError(f"The {name!r} parameter of {owner} must be a flcourse Model instance, such as "
                    f"SoftmaxRegression(n_features=64, n_classes=10). Got {got} instead.")


def check_gradient(model: Model, params, X, y, eps: float = 1e-6) -> float:
    """Return the relative error between ``model.grad`` and central finite differences.

    The error is ||g - g_fd|| / max(||g|| + ||g_fd||, 1e-12); below 1e-6 means the analytic
    gradient is right. Costs two loss evaluations per parameter. See notebook 01.
    """
    params, X, y = check_model(model, "check_gradient").check_inputs(params, X, y, "check_gradient")
    check_scalar(eps, "eps", "check_gradient", low=0, closed="neither")
    analytic = model._loss_grad(params, X, y)[1]
    numeric = np.empty_like(params)
    for j in range(params.size):
        step = np.zeros_like(params)
        step[j] = eps
        numeric[j] = (model._loss_grad(params + step, X, y, False)[0]
                      - model._loss_grad(params - step, X, y, False)[0]) / (2 * eps)
    return float(np.linalg.norm(analytic - numeric)
                 / max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-12))
