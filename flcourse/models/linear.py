"""Linear models: least squares, binary logistic regression and softmax regression.

Each implements the kernels of :class:`~flcourse.models.Model` (``loss_grad``,
``predict_unchecked``, ``weights_mask``); softmax regression also a gradient-only path that
broadcasts over K models stacked on a leading axis. See notebook 01.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_bool, check_params, check_scalar, check_X
from .base import Model
from .functions import cross_entropy_and_grad, minus_labels, sigmoid, softmax, softmax_unchecked


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

    def predict_unchecked(self, params, X):
        y_hat = X @ params[:self.n_features]
        return y_hat + params[-1] if self.fit_intercept else y_hat

    def loss_grad(self, params, X, y, need_grad=True):
        residual = self.predict_unchecked(params, X) - y
        penalty, penalty_grad = self._penalty(params)
        loss = 0.5 * np.mean(residual ** 2) + penalty
        if not need_grad:
            return loss, None
        grad = X.T @ residual / X.shape[0]
        if self.fit_intercept:
            grad = np.append(grad, residual.mean())
        return loss, grad + penalty_grad

    def weights_mask(self):
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

    def predict_unchecked(self, params, X):
        return (X @ params[:-1] + params[-1] > 0).astype(np.int64)

    def loss_grad(self, params, X, y, need_grad=True):
        z = X @ params[:-1] + params[-1]
        penalty, penalty_grad = self._penalty(params)
        loss = np.mean(np.logaddexp(0.0, z) - y * z) + penalty
        if not need_grad:
            return loss, None
        error = (sigmoid(z) - y) / X.shape[0]
        return loss, np.append(X.T @ error, error.sum()) + penalty_grad

    def weights_mask(self):
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

    def predict_unchecked(self, params, X):
        return np.argmax(self._logits(params, X), axis=-1)

    def loss_grad(self, params, X, y, need_grad=True):
        loss, d_logits = cross_entropy_and_grad(self._logits(params, X), y, need_grad)
        penalty, penalty_grad = self._penalty(params)
        if not need_grad:
            return loss + penalty, None
        return loss + penalty, self._grad_from_logits(X, d_logits, penalty_grad)

    def grad_unchecked(self, params, X, y):
        d_logits = minus_labels(softmax_unchecked(self._logits(params, X)), y)
        return self._grad_from_logits(X, d_logits, self._penalty_grad(params))

    grad_stacked = grad_unchecked  # every step above broadcasts over a leading axis K

    def _grad_from_logits(self, X, d_logits, penalty_grad):
        grad = np.empty(d_logits.shape[:-2] + (self.n_params,))
        split = self.n_features * self.n_classes
        grad[..., :split] = (X.swapaxes(-1, -2) @ d_logits).reshape(grad.shape[:-1] + (split,))
        grad[..., split:] = d_logits.sum(axis=-2)
        grad += penalty_grad
        return grad

    def weights_mask(self):
        return np.arange(self.n_params) < self.n_features * self.n_classes
