"""What a gradient leaks: the input and the label of one sample, read off in closed form.

A dense layer z = x @ W + b (flcourse stores W with shape (n_features, n_units), the transpose
of the papers' z = W x + b) has, for one sample and any loss L,

    dL/dW[:, i] = x * dL/dz_i,    dL/db_i = dL/dz_i,    so    x = dL/dW[:, i] / dL/db_i

for every unit i with dL/db_i != 0 (Phong et al. 2018; Geiping et al. 2020). With softmax
cross-entropy the output bias gradient of one sample is p - onehot(y), whose only negative
entry is the label (iDLG, Zhao et al. 2020). For a batch of B samples, or a FedAvg update over
several samples, the same ratio gives an affine mix of the inputs instead:
:func:`batch_leakage_error` and :func:`update_leakage_error` measure how far it is from the
nearest true input. The optimisation attack (DLG, Zhu et al. 2019) is not here. See notebook 08.
"""
from __future__ import annotations

import numpy as np

from .._validation import as_real_array, check_finite, check_params, check_scalar, check_X
from ..federated.client import check_fit_config
from ..federated.local import local_sgd
from ..models import MLP, Model, SoftmaxRegression, check_model

__all__ = ["batch_leakage_error", "first_layer_gradient", "recover_input_from_dense_gradient", "row_norms",
           "recover_input_from_gradient", "recover_label_from_bias_gradient",
           "recover_label_from_gradient", "reconstruction_error", "update_leakage_error"]


def _finite_array(value, name: str, owner: str, ndim: int, shape_text: str) -> np.ndarray:
    """``value`` as a finite float64 array with ``ndim`` axes, else raise in the house form."""
    array = as_real_array(value, name, owner)
    if array.ndim != ndim:
        raise ValueError(f"The {name!r} parameter of {owner} must be a {ndim}-D array of shape "
                         f"{shape_text}. Got an array of shape {array.shape} instead.")
    check_finite(array, name, owner)
    return array


def recover_input_from_dense_gradient(grad_W, grad_b, *, unit: int | None = None) -> np.ndarray:
    """The input of a dense layer, from the gradient of ONE sample: x = dL/dW[:, i] / dL/db_i.

    For z = x @ W + b, dL/dW = outer(x, dL/dz) and dL/db = dL/dz, so every column i with
    dL/db_i != 0 is x scaled by dL/db_i. By default i is the unit with the largest |dL/db_i|:
    any nonzero unit gives x for one sample, but a small divisor amplifies the rounding (and, for
    a batch or an update, the cancellation) in its column. For one sample each entry of the
    column is one rounded product, so the result is within one ulp of x per pixel (and exactly x
    whenever that product is exact). For a batch the result is sum_k w_k x_k with
    w_k = dL/dz_ki / sum_j dL/dz_ji (weights summing to 1, possibly negative).

    Parameters
    ----------
    grad_W : array-like of shape (n_features, n_units)
    grad_b : array-like of shape (n_units,)
    unit : int in [0, n_units), optional
        The unit i to divide by; its grad_b entry must be nonzero.

    Returns
    -------
    x_hat : ndarray of shape (n_features,)
    """
    owner = "recover_input_from_dense_gradient"
    grad_W = _finite_array(grad_W, "grad_W", owner, 2, "(n_features, n_units)")
    grad_b = _finite_array(grad_b, "grad_b", owner, 1, f"({grad_W.shape[1]},) (n_units)")
    if grad_b.shape != (grad_W.shape[1],):
        raise ValueError(f"The 'grad_b' parameter of {owner} must have shape ({grad_W.shape[1]},), "
                         f"one entry per column of grad_W. Got an array of shape {grad_b.shape} instead.")
    if not grad_b.any():
        raise ValueError(f"The 'grad_b' parameter of {owner} must have a nonzero entry: "
                         f"x = dL/dW[:, i] / dL/db_i needs dL/db_i != 0. Got all {grad_b.size} zero instead.")
    if unit is None:
        unit = int(np.argmax(np.abs(grad_b)))
    check_scalar(unit, "unit", owner, int, low=0, high=grad_b.size, closed="left")
    if grad_b[unit] == 0:
        raise ValueError(f"The 'unit' parameter of {owner} must name a unit with dL/db_i != 0. "
                         f"Got {unit}, whose bias gradient is 0, instead.")
    return grad_W[:, unit] / grad_b[unit]


def recover_label_from_bias_gradient(grad_b) -> int:
    """The label of ONE sample, from the output bias gradient of softmax cross-entropy (iDLG).

    dL/db = p - onehot(y), with p the softmax probabilities in (0, 1]: entry y is p_y - 1 <= 0
    and every other entry is p_j >= 0. The label is the smallest entry, which is the only
    negative one (Zhao et al. 2020, "iDLG: Improved Deep Leakage from Gradients"); when p_y
    rounds to 1 it is 0 and the others are still positive. For a FedAvg update, which is
    -lr times a sum of gradients, pass -update.

    Parameters
    ----------
    grad_b : array-like of shape (n_classes,), n_classes >= 2

    Returns
    -------
    int
        The label y.
    """
    owner = "recover_label_from_bias_gradient"
    grad_b = _finite_array(grad_b, "grad_b", owner, 1, "(n_classes,)")
    if grad_b.size < 2 or not grad_b.any():
        raise ValueError(f"The 'grad_b' parameter of {owner} must have at least 2 entries, not all "
                         f"zero. Got {grad_b.size} entries, {int(np.count_nonzero(grad_b))} nonzero, instead.")
    negative = np.flatnonzero(grad_b < 0)
    smallest = np.flatnonzero(grad_b == grad_b.min())
    if negative.size > 1 or smallest.size > 1:
        raise ValueError(f"The 'grad_b' parameter of {owner} must be one sample's p - onehot(y), with "
                         f"one smallest entry, the only negative one. Got negative entries at "
                         f"{negative.tolist()} and the smallest at {smallest.tolist()} instead (a batch?).")
    return int(smallest[0])


def _check_leaky_model(model, owner: str) -> Model:
    """``model`` if it is a SoftmaxRegression or an MLP (whose first layer is dense with bias)."""
    model = check_model(model, owner)
    if not isinstance(model, (SoftmaxRegression, MLP)):
        raise TypeError(f"The 'model' parameter of {owner} must be a SoftmaxRegression or an MLP. "
                        f"Got {model!r} instead.")
    return model


def first_layer_gradient(model, grad, *, params=None) -> tuple[np.ndarray, np.ndarray]:
    """Split a flat gradient into its first dense layer's (dL/dW, dL/db), penalty removed.

    SoftmaxRegression stores W (n_features x n_classes, row-major) then b; the MLP stores W1
    (n_features x n_hidden), b1, W2, b2. With ``model.l2 > 0`` the gradient holds l2 * W too
    (biases are not penalised), and ``params`` must be given so that it can be subtracted.

    Parameters
    ----------
    model : SoftmaxRegression or MLP
    grad : array-like of shape (n_params,)
    params : array-like of shape (n_params,), optional
        Where the gradient was taken; needed only when ``model.l2 > 0``.

    Returns
    -------
    grad_W : ndarray of shape (n_features, n_units)
    grad_b : ndarray of shape (n_units,)
    """
    owner = "first_layer_gradient"
    model = _check_leaky_model(model, owner)
    grad = check_params(grad, model.n_params, owner, name="grad")
    n_units = model.n_hidden if isinstance(model, MLP) else model.n_classes
    split = model.n_features * n_units
    grad_W = grad[:split].reshape(model.n_features, n_units)
    if model.l2:
        if params is None:
            raise ValueError(f"The 'params' parameter of {owner} must be given when the model has "
                             f"l2={model.l2!r} > 0, to remove the penalty l2 * W. Got None instead.")
        params = check_params(params, model.n_params, owner)
        grad_W = grad_W - model.l2 * params[:split].reshape(grad_W.shape)
    return grad_W, grad[split:split + n_units]


def recover_input_from_gradient(model, grad, *, params=None, unit: int | None = None) -> np.ndarray:
    """The input of ONE sample from a flcourse model's flat gradient (its first dense layer).

    :func:`first_layer_gradient` then :func:`recover_input_from_dense_gradient`; the arguments
    are theirs. Returns an ndarray of shape (n_features,).
    """
    grad_W, grad_b = first_layer_gradient(model, grad, params=params)
    return recover_input_from_dense_gradient(grad_W, grad_b, unit=unit)


def recover_label_from_gradient(model, grad) -> int:
    """The label of ONE sample from a flcourse model's flat gradient: its output bias (iDLG).

    Both SoftmaxRegression and the MLP store the output bias last, n_classes entries; see
    :func:`recover_label_from_bias_gradient`.
    """
    model = _check_leaky_model(model, "recover_label_from_gradient")
    grad = check_params(grad, model.n_params, "recover_label_from_gradient", name="grad")
    return recover_label_from_bias_gradient(grad[-model.n_classes:])


def reconstruction_error(x_hat, X) -> float:
    """The relative distance from a reconstruction to the nearest true input:
    min_k ||x_hat - x_k||_2 / ||x_k||_2.

    Parameters
    ----------
    x_hat : array-like of shape (n_features,)
    X : array-like of shape (n_samples, n_features)
        The true inputs, none of them all zero.

    Returns
    -------
    float
    """
    owner = "reconstruction_error"
    X = check_X(X, owner)
    x_hat = _finite_array(x_hat, "x_hat", owner, 1, f"({X.shape[1]},) (n_features)")
    if x_hat.shape != (X.shape[1],):
        raise ValueError(f"The 'x_hat' parameter of {owner} must have shape ({X.shape[1]},), one "
                         f"entry per column of X. Got an array of shape {x_hat.shape} instead.")
    norms = row_norms(X, owner)
    return float(np.min(np.linalg.norm(X - x_hat, axis=1) / norms))


def row_norms(X, owner: str) -> np.ndarray:
    """The L2 norm of each row of ``X``, which must have no all-zero row (errors are relative to them)."""
    norms = np.linalg.norm(X, axis=1)
    if not norms.all():
        raise ValueError(f"The 'X' parameter of {owner} must have no all-zero row (the error is "
                         f"relative). Got row {int(np.argmin(norms))} all zero instead.")
    return norms


def batch_leakage_error(model, params, X, y) -> float:
    """The attack on the gradient of a batch: reconstruction error against the nearest input.

    The server sees grad = (1/B) sum_k grad_k; the ratio of :func:`recover_input_from_gradient`
    then mixes the B inputs. 0 (to rounding) at B = 1. Returns a float.
    """
    model = _check_leaky_model(model, "batch_leakage_error")
    params, X, y = model.check_inputs(params, X, y, "batch_leakage_error")
    grad = model.loss_grad(params, X, y)[1]
    return reconstruction_error(recover_input_from_gradient(model, grad, params=params), X)


def update_leakage_error(model, params, X, y, config: dict) -> float:
    """The attack on a FedAvg update: reconstruction error against the nearest input.

    One client trains on (X, y) from ``params`` with local SGD (``config`` as a client's:
    "local_epochs", "batch_size", "lr", "seed") and sends update = w_K - w_0 =
    -lr * sum_t grad_t. The attacker divides its first-layer columns as for one gradient. On
    ONE sample every step's first-layer gradient is outer(x, .), so the update still gives x,
    to the rounding of w_K - w_0 (measured: 1.5e-13 relative from N(0, 1) parameters): local
    steps protect nothing there. Over several samples the steps mix them, with weights that
    change from step to step. The model must have l2 = 0 (the penalty of the intermediate
    steps is unknown).
    """
    owner = "update_leakage_error"
    model = _check_leaky_model(model, owner)
    if model.l2:
        raise ValueError(f"The 'model' parameter of {owner} must have l2=0: the penalty of the "
                         f"intermediate steps cannot be removed from an update. Got {model!r} instead.")
    params, X, y = model.check_inputs(params, X, y, owner)
    config = check_fit_config(config, owner, model.n_params)
    update = local_sgd(model, params, X[None], y[None], [0], config)[0] - params
    return reconstruction_error(recover_input_from_gradient(model, update), X)
