"""The model contract: a checked public API over four unchecked kernels, one flat parameter vector.

A model holds only its hyper-parameters; the parameters live outside it, in one flat float64
vector ``params``. Training, sharding and averaging are then plain vector arithmetic, and the
communication cost of a model is ``params.nbytes``. Every model computes the empirical risk

    J(params) = 1/n * sum_i loss(params; x_i, y_i) + l2/2 * ||weights||^2

(biases are not penalised), its gradient, and predictions. This module owns :class:`Model`,
which checks inputs at the public boundary and leaves the maths to kernels a subclass
implements, and :func:`check_model`. See notebook 01.
"""
from __future__ import annotations

import inspect

import numpy as np

from .._validation import check_params, check_rng, check_X, check_y


class Model:
    """Base class: validation at the public boundary, the maths in unchecked kernels.

    The public methods (:meth:`loss`, :meth:`grad`, :meth:`loss_and_grad`, :meth:`predict`,
    :meth:`score`) check their inputs, then call the kernels. The kernels are the extension
    point: a subclass implements them, a wrapper overrides them, and training loops call them
    directly on arrays they checked once.

    ======================================  ==================================================
    kernel                                  what it computes
    ======================================  ==================================================
    ``loss_grad(params, X, y, need_grad)``  (J, gradient of J or None): a subclass implements it
    ``predict_unchecked(params, X)``        predictions: a subclass implements it
    ``weights_mask()``                      which entries of ``params`` the penalty applies to:
                                            a subclass implements it
    ``grad_unchecked(params, X, y)``        the gradient alone; default ``loss_grad(...)[1]``
    ``grad_stacked(params, X, y)``          K gradients at once; default a loop over
                                            ``grad_unchecked``
    ======================================  ==================================================

    Subclasses also set ``n_params``, ``n_features``, ``l2`` and ``n_classes`` (``None`` for
    regression).
    """

    n_params: int
    n_classes: int | None

    def init_params(self, seed=None) -> np.ndarray:
        """Return starting parameters, a vector of shape (n_params,): zeros for linear models."""
        check_rng(seed, f"{type(self).__name__}.init_params")
        return np.zeros(self.n_params)

    def loss(self, params, X, y) -> float:
        """Return the empirical risk J(params) on (X, y), penalty included."""
        params, X, y = self.check_inputs(params, X, y, f"{type(self).__name__}.loss")
        return self.loss_grad(params, X, y, need_grad=False)[0]

    def grad(self, params, X, y) -> np.ndarray:
        """Return the gradient of J at ``params``, a vector of shape (n_params,)."""
        params, X, y = self.check_inputs(params, X, y, f"{type(self).__name__}.grad")
        return self.loss_grad(params, X, y)[1]

    def loss_and_grad(self, params, X, y) -> tuple[float, np.ndarray]:
        """Return ``(loss, grad)`` in one pass over the data."""
        params, X, y = self.check_inputs(params, X, y, f"{type(self).__name__}.loss_and_grad")
        return self.loss_grad(params, X, y)

    def predict(self, params, X) -> np.ndarray:
        """Return predictions of shape (n_samples,): class labels, or real values for regression."""
        X = check_X(X, f"{type(self).__name__}.predict", self.n_features)
        params = check_params(params, self.n_params, f"{type(self).__name__}.predict")
        return self.predict_unchecked(params, X)

    def score(self, params, X, y) -> float:
        """Return accuracy for a classifier, the coefficient of determination R^2 for regression
        (nan when every target is the same, e.g. a single sample: R^2 is then undefined)."""
        params, X, y = self.check_inputs(params, X, y, f"{type(self).__name__}.score")
        y_hat = self.predict_unchecked(params, X)
        if self.n_classes is not None:
            return float(np.mean(y_hat == y))
        spread = np.sum((y - y.mean()) ** 2)
        return float(1.0 - np.sum((y - y_hat) ** 2) / spread) if spread > 0 else float("nan")

    def check_inputs(self, params, X, y, owner: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validate and convert ``(params, X, y)``; raise a clear error on bad input.

        ``owner`` is what the caller called, named in the error: "sgd", "NumpyClient",
        "SoftmaxRegression.loss" (the model's own methods name themselves so).
        """
        X = check_X(X, owner, self.n_features)
        y = check_y(y, owner, X.shape[0], self.n_classes)
        return check_params(params, self.n_params, owner), X, y

    def loss_grad(self, params: np.ndarray, X: np.ndarray, y: np.ndarray,
                  need_grad: bool = True) -> tuple[float, np.ndarray | None]:
        """Kernel: the empirical risk J and its gradient, unchecked.

        The extension point every subclass implements; :meth:`loss`, :meth:`grad` and
        :meth:`loss_and_grad` call it after checking their inputs.

        Parameters
        ----------
        params : ndarray of shape (n_params,), float64
        X : ndarray of shape (n_samples, n_features), float64
        y : ndarray of shape (n_samples,)
            Integer labels for a classifier, floats for regression.
        need_grad : bool, default=True
            False: compute the loss alone (the gradient is then None).

        Returns
        -------
        loss : float
        grad : ndarray of shape (n_params,) or None
        """
        raise NotImplementedError(f"{type(self).__name__} must implement the kernel "
                                  f"loss_grad(params, X, y, need_grad=True)")

    def predict_unchecked(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Kernel: predictions, unchecked; the extension point behind :meth:`predict`.

        Parameters
        ----------
        params : ndarray of shape (n_params,), float64
        X : ndarray of shape (n_samples, n_features), float64

        Returns
        -------
        y_hat : ndarray of shape (n_samples,)
            Class labels (int64) for a classifier, real values for regression.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement the kernel "
                                  f"predict_unchecked(params, X)")

    def weights_mask(self) -> np.ndarray:
        """Kernel: which entries of ``params`` are weights (penalised) rather than biases.

        The extension point a subclass implements; called once, the result kept.

        Returns
        -------
        mask : ndarray of shape (n_params,), bool
        """
        raise NotImplementedError(f"{type(self).__name__} must implement the kernel weights_mask()")

    def grad_unchecked(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Kernel: the gradient alone, unchecked: what training loops call on every step.

        Here ``loss_grad(params, X, y)[1]``; a subclass overrides it to skip the loss, a wrapper
        to intervene in every step. Same shapes as :meth:`loss_grad`; returns an ndarray of
        shape (n_params,).
        """
        return self.loss_grad(params, X, y)[1]

    def grad_stacked(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Kernel: the gradients of K models on K datasets of equal size, unchecked.

        Row k is exactly ``grad_unchecked(params[k], X[k], y[k])``, bit for bit. Here a loop;
        models whose maths broadcast over a leading axis override it with one vectorised pass
        (the federated simulation engine calls it).

        Parameters
        ----------
        params : ndarray of shape (K, n_params)
        X : ndarray of shape (K, n_samples, n_features)
        y : ndarray of shape (K, n_samples)

        Returns
        -------
        grads : ndarray of shape (K, n_params)
        """
        return np.stack([self.grad_unchecked(p, X_k, y_k) for p, X_k, y_k in zip(params, X, y)])

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
            self._mask = self.weights_mask()
        return params * self._mask

    def __repr__(self) -> str:
        names = inspect.signature(type(self).__init__).parameters
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in names if k != "self")
        return f"{type(self).__name__}({args})"


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
