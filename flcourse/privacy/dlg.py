"""Deep leakage from gradients: the inputs of a batch, found by matching its gradient.

The attacker knows the model, its parameters theta and a gradient g* = grad_theta L(theta; X, y)
of the mean cross-entropy over B samples. DLG (Zhu et al. 2019, "Deep Leakage from Gradients")
looks for inputs X' (B x d) whose gradient matches it,

    min_X'  f(X') = 1/2 ||g(X') - g*||^2,    g(X') = grad_theta L(theta; X', y'),

with the labels y' given, or read off the output-bias gradient first (iDLG, Zhao et al. 2020).
The gradient of f is a Hessian-vector product: with r = g(X') - g* held fixed,
grad_X' f = J^T r = grad_X' phi, where phi(X') = <g(X'), r>. For the MLP (flcourse's layout
z = x @ W + b; 1 a column of ones, Y the one-hot labels, (.) the elementwise product):

    forward    H = tanh(X W1 + 1 b1),  S = 1 - H^2,  P = softmax(H W2 + 1 b2),
               D = (P - Y) / B,  E = (D W2^T) (.) S,
    gradient   g = (X^T E,  1^T E,  H^T D,  1^T D),  split r the same way: (R1, r1, R2, r2),
    so         phi = <E, U> + <D, V>  with  U = X R1 + 1 r1,  V = H R2 + 1 r2.

Reverse mode through phi, using <(D W2^T) (.) S, U> = <D, (S (.) U) W2>:

    D_bar = (S (.) U) W2 + V                          (D enters phi through E and directly)
    Z_bar = P (.) (D_bar - rowsum(P (.) D_bar)) / B   (softmax's Jacobian, row by row)
    S_bar = (D W2^T) (.) U
    H_bar = Z_bar W2^T + D R2^T - 2 H (.) S_bar        (H enters Z, V and S = 1 - H^2)
    grad_X' f = (H_bar (.) S) W1^T + E R1^T            (X enters the hidden layer and U)

SoftmaxRegression is the output layer alone (H replaced by X, no E): D_bar = V and
grad_X' f = Z_bar W^T + D R^T. The l2 penalty does not depend on X': it is taken off g* once.
See notebook 08.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_params, check_rng, check_scalar, check_X, check_y
from ..models import MLP, SoftmaxRegression, check_model, one_hot, softmax_unchecked
from .leakage import recover_label_from_bias_gradient, row_norms

__all__ = ["gradient_matching_loss", "matched_reconstruction_error", "reconstruct_from_gradient",
           "recover_labels_from_gradient"]


def _check_model(model, owner: str):
    model = check_model(model, owner)
    if not isinstance(model, (MLP, SoftmaxRegression)):
        raise TypeError(f"The 'model' parameter of {owner} must be an MLP or a SoftmaxRegression, whose "
                        f"gradient-matching gradient is derived here. Got {model!r} instead.")
    return model


def _layers(model, params) -> list:
    """Views of the dense layers in ``params``: [W1, b1, W2, b2] (MLP) or [W, b] (softmax)."""
    widths = [model.n_features] + ([model.n_hidden] if isinstance(model, MLP) else []) + [model.n_classes]
    shapes = [shape for rows, cols in zip(widths, widths[1:]) for shape in ((rows, cols), (cols,))]
    ends = np.cumsum([np.prod(shape) for shape in shapes])[:-1]
    return [part.reshape(shape) for part, shape in zip(np.split(params, ends), shapes)]


def _output_layer(A, W, b, Y):
    """Softmax cross-entropy on logits A W + b: (P, D = (P - Y) / B)."""
    P = softmax_unchecked(A @ W + b)
    return P, (P - Y) / len(Y)


def _softmax_adjoint(P, D_bar):
    """Z_bar from D_bar for D = (softmax(Z) - Y) / B."""
    return P * (D_bar - np.sum(P * D_bar, axis=1, keepdims=True)) / len(P)


def _mlp_matching(layers, X, Y, target):
    """(f, grad_X f) for the MLP; the derivation is in the module docstring."""
    W1, b1, W2, b2 = layers
    H = np.tanh(X @ W1 + b1)
    S = 1.0 - H ** 2
    P, D = _output_layer(H, W2, b2, Y)
    D_W2 = D @ W2.T
    E = D_W2 * S
    R1, r1, R2, r2 = (X.T @ E - target[0], E.sum(0) - target[1], H.T @ D - target[2],
                      D.sum(0) - target[3])
    loss = 0.5 * sum(np.sum(r ** 2) for r in (R1, r1, R2, r2))
    U, V = X @ R1 + r1, H @ R2 + r2
    Z_bar = _softmax_adjoint(P, (S * U) @ W2 + V)
    H_bar = Z_bar @ W2.T + D @ R2.T - 2.0 * H * (D_W2 * U)
    return loss, (H_bar * S) @ W1.T + E @ R1.T


def _softmax_matching(layers, X, Y, target):
    """(f, grad_X f) for SoftmaxRegression: the MLP's output layer with X as its input."""
    W, b = layers
    P, D = _output_layer(X, W, b, Y)
    R, r = X.T @ D - target[0], D.sum(0) - target[1]
    loss = 0.5 * (np.sum(R ** 2) + np.sum(r ** 2))
    Z_bar = _softmax_adjoint(P, X @ R + r)
    return loss, Z_bar @ W.T + D @ R.T


def _problem(model, params, grad):
    """(the kernel, params' layers, g*'s layers without the l2 penalty: it does not depend on X)."""
    if model.l2:
        grad = grad - model.l2 * params * model.weights_mask()
    kernel = _mlp_matching if isinstance(model, MLP) else _softmax_matching
    return kernel, _layers(model, params), _layers(model, grad)


def gradient_matching_loss(model, params, grad, X, y) -> tuple[float, np.ndarray]:
    """DLG's objective f(X) = 1/2 ||grad_theta L(theta; X, y) - grad||^2 and its exact gradient in X.

    L is the model's empirical risk (mean cross-entropy, penalty included); the gradient is the
    analytic Hessian-vector product of the module docstring, no finite differences.

    Parameters
    ----------
    model : MLP or SoftmaxRegression
    params, grad : array-like of shape (n_params,)
        theta, and the observed gradient g* taken there.
    X, y : array-like of shapes (n_samples, n_features) and (n_samples,)
        The candidate inputs X' and their labels.

    Returns
    -------
    loss : float
    grad_X : ndarray of shape (n_samples, n_features)
    """
    owner = "gradient_matching_loss"
    model = _check_model(model, owner)
    params, X, y = model.check_inputs(params, X, y, owner)
    grad = check_params(grad, model.n_params, owner, name="grad")
    kernel, layers, target = _problem(model, params, grad)
    loss, grad_X = kernel(layers, X, one_hot(y, model.n_classes), target)
    return float(loss), grad_X


def recover_labels_from_gradient(model, grad, n_samples: int = 1) -> np.ndarray:
    """The labels of a batch from its output-bias gradient, when each sample has its own class.

    Entry c of the output bias gradient, mean_k (p_k - onehot(y_k)), is (sum_k p_kc - n_c) / B
    with n_c the count of class c: positive for a class absent from the batch, negative for one
    present while the model gives it less than n_c of probability mass over the batch (as at
    initialisation, p_kc ~ 1 / n_classes). Exactly ``n_samples`` negative entries are the labels,
    in increasing order (a batch has none); any other count (a class repeated, or favoured)
    raises a ValueError that asks for the labels. At n_samples = 1 this is iDLG's
    :func:`~flcourse.privacy.leakage.recover_label_from_bias_gradient`, which also reads p_y = 1.

    Parameters
    ----------
    model : MLP or SoftmaxRegression
    grad : array-like of shape (n_params,)
    n_samples : int, default=1

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    """
    owner = "recover_labels_from_gradient"
    model = _check_model(model, owner)
    grad = check_params(grad, model.n_params, owner, name="grad")
    check_scalar(n_samples, "n_samples", owner, int, low=1, high=model.n_classes, closed="both")
    grad_b = grad[-model.n_classes:]
    if n_samples == 1:
        return np.array([recover_label_from_bias_gradient(grad_b)], dtype=np.int64)
    negative = np.flatnonzero(grad_b < 0)
    if negative.size != n_samples:
        raise ValueError(f"The 'grad' parameter of {owner} must have one negative output-bias entry per "
                         f"sample ({n_samples}) to give the labels. Got {negative.size}, at classes "
                         f"{negative.tolist()}, instead (a class repeated, or one the model already "
                         f"favours): pass the labels.")
    return negative.astype(np.int64)


def _check_bounds(bounds, owner: str):
    """``bounds`` as (low, high) floats with low < high, or None."""
    if bounds is None:
        return None
    if isinstance(bounds, (tuple, list)) and len(bounds) == 2:
        low, high = (check_scalar(b, "bounds", owner) for b in bounds)
        if low < high:
            return float(low), float(high)
    raise ValueError(f"The 'bounds' parameter of {owner} must be None or a pair (low, high) of "
                     f"floats with low < high, e.g. (0.0, 1.0). Got {bounds!r} instead.")


def reconstruct_from_gradient(model, params, grad, n_samples: int = 1, *, labels=None,
                              bounds: tuple[float, float] | None = None, seed=0,
                              max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray, dict]:
    """DLG: the inputs whose gradient matches ``grad``, by L-BFGS-B on :func:`gradient_matching_loss`.

    The attacker knows the model, ``params`` and the batch size. Labels are given, or read off
    the output-bias gradient by :func:`recover_labels_from_gradient` (iDLG at one sample; for a
    batch, only when its classes are distinct). The search starts from inputs drawn uniformly in
    ``bounds`` ([0, 1] when None, the range of flcourse's images), stays in them if given, and
    runs until f is down to rounding (message "matched to rounding"), L-BFGS-B can decrease it
    no further, or ``max_iter``. Deterministic given ``seed``. Measured on digits with
    MLP(64, 32, 10) at init: one image back to 2e-16 relative in ~50 iterations; the first 2..8
    training images to 2e-14 with bounds (0, 1), in up to ~900 iterations, while without bounds
    a batch of 4 stalls at a local minimum 0.19 away. See notebook 08.

    Parameters
    ----------
    model : MLP or SoftmaxRegression
    params, grad : array-like of shape (n_params,)
        theta, and the observed gradient of the mean loss over ``n_samples`` samples there.
    n_samples : int, default=1
    labels : array-like of shape (n_samples,), optional
    bounds : (float, float), optional
        Box constraints on every input entry, e.g. (0.0, 1.0) for images; None: unconstrained.
    seed : int, numpy.random.Generator or None, default=0
    max_iter : int, default=1000
        L-BFGS-B iterations at most.

    Returns
    -------
    X_hat : ndarray of shape (n_samples, n_features)
    labels : ndarray of shape (n_samples,), int64
    info : dict
        "loss" (the final f), "relative_mismatch" (||g(X_hat) - grad|| / ||grad||: near 1e-16
        when the match is exact, not so at a local minimum), "n_iter", "n_evals", "message".
    """
    owner = "reconstruct_from_gradient"
    model = _check_model(model, owner)
    params = check_params(params, model.n_params, owner)
    grad = check_params(grad, model.n_params, owner, name="grad")
    check_scalar(n_samples, "n_samples", owner, int, low=1, closed="left")
    check_scalar(max_iter, "max_iter", owner, int, low=1, closed="left")
    box = _check_bounds(bounds, owner)
    if not grad.any():
        raise ValueError(f"The 'grad' parameter of {owner} must have a nonzero entry. Got all zeros instead.")
    labels = _labels(model, grad, n_samples, labels, owner)
    X0 = check_rng(seed, owner).uniform(*(box or (0.0, 1.0)), size=(n_samples, model.n_features))
    X_hat, info = _minimise(*_problem(model, params, grad), one_hot(labels, model.n_classes), X0, box,
                            max_iter, np.linalg.norm(grad))
    return X_hat, labels, info


def _minimise(kernel, layers, target, Y, X0, box, max_iter: int, grad_norm: float):
    """L-BFGS-B from X0 on the matching loss: (X_hat, info)."""
    from scipy.optimize import minimize  # scipy.optimize takes 0.5-1 s to import: only on use
    exact = 0.5 * (np.finfo(float).eps * grad_norm) ** 2

    def objective(flat):
        loss, grad_X = kernel(layers, flat.reshape(X0.shape), Y, target)
        return loss, grad_X.ravel()

    def stop_at_rounding(intermediate_result):  # else f may underflow to 0 and L-BFGS-B divide 0 by 0
        if intermediate_result.fun <= exact:
            raise StopIteration

    result = minimize(objective, X0.ravel(), jac=True, method="L-BFGS-B", bounds=[box] * X0.size if box else None,
                      callback=stop_at_rounding, options={"maxiter": max_iter, "ftol": 0.0, "gtol": 0.0})
    info = {"loss": float(result.fun), "relative_mismatch": float(np.sqrt(2 * result.fun) / grad_norm),
            "n_iter": int(result.nit), "n_evals": int(result.nfev),
            "message": "matched to rounding" if result.fun <= exact else str(result.message)}
    return result.x.reshape(X0.shape), info


def _labels(model, grad, n_samples: int, labels, owner: str) -> np.ndarray:
    """``labels`` checked, or recovered from ``grad`` when None."""
    if labels is None:
        return recover_labels_from_gradient(model, grad, n_samples)
    size = np.shape(labels)[0] if np.ndim(labels) == 1 else None
    if size is not None and size != n_samples:
        raise ValueError(f"The 'labels' parameter of {owner} must have one entry per sample "
                         f"(n_samples={n_samples}). Got {size} entries instead.")
    return check_y(labels, owner, n_samples, model.n_classes, name="labels")


def matched_reconstruction_error(X_hat, X) -> tuple[np.ndarray, np.ndarray]:
    """Relative errors of a batch's reconstructions, each matched to its own true input.

    A batch has no order, so reconstruction ``order[k]`` is paired with true input k by the
    assignment that minimises the sum of the errors ||x_hat - x_k||_2 / ||x_k||_2 (the error of
    :func:`~flcourse.privacy.leakage.reconstruction_error`, with a one-to-one pairing in place of
    the nearest input; Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``).

    Parameters
    ----------
    X_hat : array-like of shape (n_samples, n_features)
    X : array-like of shape (n_samples, n_features)
        The true inputs, none of them all zero.

    Returns
    -------
    errors : ndarray of shape (n_samples,)
        errors[k] = ||X_hat[order[k]] - X[k]|| / ||X[k]||.
    order : ndarray of shape (n_samples,), int64
    """
    from scipy.optimize import linear_sum_assignment
    owner = "matched_reconstruction_error"
    X = check_X(X, owner)
    X_hat = check_X(X_hat, owner, X.shape[1], name="X_hat")
    if X_hat.shape != X.shape:
        raise ValueError(f"The 'X_hat' parameter of {owner} must have the shape of X, {X.shape}: one "
                         f"reconstruction per input. Got an array of shape {X_hat.shape} instead.")
    norms = row_norms(X, owner)
    cost = np.linalg.norm(X_hat[:, None, :] - X[None, :, :], axis=2) / norms  # cost[i, k]: X_hat[i] vs X[k]
    rows, cols = linear_sum_assignment(cost)
    order = rows[np.argsort(cols)].astype(np.int64)
    return cost[order, np.arange(len(X))], order
