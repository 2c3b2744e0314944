"""A multi-layer perceptron with one tanh hidden layer and a softmax output.

It implements the kernels of :class:`~flcourse.models.Model` by back-propagation, and its
gradient-only path broadcasts over K models stacked on a leading axis. See notebook 01.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_rng, check_scalar
from .base import Model
from .functions import cross_entropy_and_grad, minus_labels, softmax_unchecked


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

    def predict_unchecked(self, params, X):
        return np.argmax(self._forward(params, X)[1], axis=-1)

    def loss_grad(self, params, X, y, need_grad=True):
        hidden, logits = self._forward(params, X)
        loss, d_logits = cross_entropy_and_grad(logits, y, need_grad)
        penalty, penalty_grad = self._penalty(params)
        if not need_grad:
            return loss + penalty, None
        return loss + penalty, self._backward(params, X, hidden, d_logits) + penalty_grad

    def grad_unchecked(self, params, X, y):
        hidden, logits = self._forward(params, X)
        d_logits = minus_labels(softmax_unchecked(logits), y)
        return self._backward(params, X, hidden, d_logits) + self._penalty_grad(params)

    grad_stacked = grad_unchecked  # every step above broadcasts over a leading axis K

    def _backward(self, params, X, hidden, d_logits):
        """Back-propagate d_logits through the two layers: the gradient without the penalty."""
        W2 = self._unpack(params)[2]
        d_hidden = (d_logits @ W2.swapaxes(-1, -2)) * (1.0 - hidden ** 2)
        grads = [X.swapaxes(-1, -2) @ d_hidden, d_hidden.sum(-2), hidden.swapaxes(-1, -2) @ d_logits,
                 d_logits.sum(-2)]
        return np.concatenate([g.reshape(params.shape[:-1] + (-1,)) for g in grads], axis=-1)

    def weights_mask(self):
        return np.concatenate([np.full(int(np.prod(s)), len(s) == 2) for s in self._shapes])
