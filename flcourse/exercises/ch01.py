"""Self-checks for chapter 01, "Background: learning as optimisation".

Each ``exercise_N(answer)`` prints ``Correct. ...`` or ``Not yet. <hint>`` and returns a bool.
The references are computed with flcourse on problems generated here, so an answer that only
works on the notebook's own data does not pass. See notebook 01.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data import load_digits
from ..models import LinearRegression, Model, SoftmaxRegression
from ..optim import gradient_descent, minibatches
from ._core import call, close, report


def _regression_problem(seed: int = 1):
    """A small least-squares problem with features on different scales."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(100, 4)) * np.array([1.0, 2.0, 0.5, 3.0]) + 1.0
    y = X @ rng.normal(size=4) + 0.5 * rng.normal(size=100)
    return X, y


def _as_array(value):
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def exercise_1(answer: Callable) -> bool:
    """Check a gradient of J(w, b) = 1/(2n) * sum_i (x_i @ w + b - y_i)^2.

    Parameters
    ----------
    answer : callable
        ``answer(params, X, y)`` with ``params`` of shape (n_features + 1,) holding w then b,
        ``X`` of shape (n_samples, n_features) and ``y`` of shape (n_samples,); it returns the
        gradient of J at ``params``, an array of shape (n_features + 1,).
    """
    X, y = _regression_problem()
    params = np.random.default_rng(2).normal(size=X.shape[1] + 1)
    model = LinearRegression(n_features=X.shape[1])
    result, error = call(answer, params.copy(), X, y)
    if error:
        return report(False, "", error)
    got, expected = _as_array(result), model.grad(params, X, y)
    if got is None or got.shape != expected.shape:
        shape = "nothing numeric" if got is None else f"shape {got.shape}"
        forgot_bias = got is not None and got.shape == (X.shape[1],)
        extra = " Did you forget the bias entry?" if forgot_bias else ""
        return report(False, "", f"Expected shape {expected.shape} (n_features + 1), got {shape}.{extra}")
    no_bias = model.grad(np.append(params[:-1], 0.0), X, y)
    return report(close(got, expected), "Your gradient equals fl.LinearRegression().grad.",
                  _linreg_hint(got, expected, no_bias, len(y)))


def _linreg_hint(got, expected, no_bias, n_samples) -> str:
    hints = [(2 * expected, "A factor of 2 too large: the 1/2 in J cancels the 2 from the square."),
             (-expected, "The sign is flipped: the residual is y_hat - y, not y - y_hat."),
             (n_samples * expected, "n_samples times too large: J is a mean, so divide by n_samples."),
             (no_bias, "Your prediction leaves out the bias: y_hat = X @ w + b.")]
    for wrong, hint in hints:
        if close(got, wrong):
            return hint
    if close(got[:-1], expected[:-1]):
        return "The weights are right, the bias entry is not: it is the mean residual."
    if close(got[-1], expected[-1]):
        return "The bias entry is right, the weights are not: X.T @ residual / n_samples."
    return "Your gradient differs from fl.LinearRegression().grad; compare them entry by entry."


def _batches(answer, *args):
    result, error = call(answer, *args)
    if error:
        return None, error
    try:
        return [np.asarray(batch) for batch in result], None
    except Exception as error:  # a learner's bug becomes a hint, not a traceback
        return None, f"Iterating over your result raised {type(error).__name__}: {error}"


def _minibatch_hint(got, expected, n_samples, batch_size, n_epochs) -> str | None:
    case = f"For n_samples={n_samples}, batch_size={batch_size}, n_epochs={n_epochs}"
    if len(got) != len(expected):
        dropped = len(got) == n_epochs * (n_samples // batch_size)
        return (f"{case} you gave {len(got)} batches, expected {len(expected)}."
                + (" Keep the last, smaller batch of each epoch." if dropped else ""))
    if any(a.shape != b.shape for a, b in zip(got, expected)):
        return f"{case} the batch sizes are {[len(b) for b in got]}, expected {[len(b) for b in expected]}."
    per_epoch = len(expected) // n_epochs
    epochs = [np.concatenate(got[e * per_epoch:(e + 1) * per_epoch]) for e in range(n_epochs)]
    if any(not np.array_equal(np.sort(order), np.arange(n_samples)) for order in epochs):
        return f"{case} an epoch does not visit every sample exactly once: cut one permutation into slices."
    if all(np.array_equal(order, np.arange(n_samples)) for order in epochs):
        return f"{case} the samples are not shuffled: draw order = rng.permutation(n_samples) each epoch."
    if n_epochs > 1 and all(np.array_equal(order, epochs[0]) for order in epochs):
        return (f"{case} every epoch has the same order: create the generator once, before the "
                "epoch loop, and draw a new permutation from it each epoch.")
    if any(not np.array_equal(a, b) for a, b in zip(got, expected)):
        return (f"{case} the order differs from fl.minibatches: use rng = np.random.default_rng(seed) "
                "and one rng.permutation(n_samples) per epoch, with no other random draws.")
    return None


def exercise_2(answer: Callable) -> bool:
    """Check a minibatch index generator against ``fl.minibatches``.

    Parameters
    ----------
    answer : callable
        ``answer(n_samples, batch_size, n_epochs, seed)`` returns (or yields) index arrays, the
        same batches in the same order as ``fl.minibatches(n_samples, batch_size,
        n_epochs=n_epochs, seed=seed)``.
    """
    for n_samples, batch_size, n_epochs, seed in [(10, 3, 2, 0), (12, 4, 3, 1), (5, 8, 1, 2)]:
        got, error = _batches(answer, n_samples, batch_size, n_epochs, seed)
        if error:
            return report(False, "", error)
        expected = list(minibatches(n_samples, batch_size, n_epochs=n_epochs, seed=seed))
        hint = _minibatch_hint(got, expected, n_samples, batch_size, n_epochs)
        if hint:
            return report(False, "", hint)
    return report(True, "Your batches are exactly fl.minibatches' batches.", "")


def _first_increase(model: Model, X, y, lr: float, n_steps: int):
    """Return the first step at which gradient descent's loss does not go down, or None."""
    losses = gradient_descent(model, model.init_params(), X, y, lr=lr, n_steps=n_steps)[1]["train_loss"]
    up = np.flatnonzero(np.diff(losses) >= 0)
    return int(up[0]) + 1 if up.size else None


def _ex3_problems():
    X, y = _regression_problem()
    digits = load_digits(seed=0)
    # J(w) = (w - 1)^2 / 2 from w = 0: lr = 1 lands on the minimum and then stays (the loss
    # stops going down), lr = 2 jumps to w = 2 and back at the same loss: "goes down at every
    # step" must be strict, and 1.5 is the answer.
    flat = (LinearRegression(n_features=1, fit_intercept=False), np.ones((1, 1)), np.ones(1),
            [0.5, 1.0, 1.5, 2.0, 2.5], 10)
    return [(LinearRegression(n_features=4), X, y, [0.05, 0.1, 0.15, 0.2, 0.25, 0.3], 30),
            (SoftmaxRegression(n_features=64, n_classes=10), digits.X_train[:300],
             digits.y_train[:300], [0.5, 1.0, 2.0, 3.0, 4.0, 6.0], 50), flat]


def exercise_3(answer: Callable) -> bool:
    """Check a search for the largest learning rate at which gradient descent stays monotone.

    Parameters
    ----------
    answer : callable
        ``answer(model, X, y, lrs, n_steps)`` runs ``n_steps`` of full-batch gradient descent
        from ``model.init_params()`` for each learning rate in ``lrs`` and returns the largest
        one whose training loss goes down at every step (a float from ``lrs``).
    """
    for model, X, y, lrs, n_steps in _ex3_problems():
        result, error = call(answer, model, X, y, list(lrs), n_steps)
        if error:
            return report(False, "", error)
        case = f"On {type(model).__name__} with lrs={lrs}, n_steps={n_steps}"
        if not isinstance(result, (int, float, np.number)) or float(result) not in lrs:
            return report(False, "", f"{case} you returned {result!r}; return one of the values in lrs.")
        increases = {lr: _first_increase(model, X, y, lr, n_steps) for lr in lrs}
        best = max(lr for lr in lrs if increases[lr] is None)
        if increases[float(result)] is not None:
            return report(False, "", f"{case}: with lr={float(result):g} the loss does not go down at "
                          f"step {increases[float(result)]}. Check every step, not only the last loss, "
                          "and count a loss that stays the same as not going down.")
        if float(result) < best:
            return report(False, "", f"{case}: lr={best} also lowers the loss at every step; "
                          "return the largest such value.")
    return report(True, "Your search finds the largest monotone learning rate on all three problems.", "")


def _ex4_function(x):
    return np.sum(np.sin(x)) + x[0] * x[1] ** 2 + np.exp(0.5 * x[2])


def _ex4_gradient(x):
    grad = np.cos(x)
    grad[:3] += [x[1] ** 2, 2 * x[0] * x[1], 0.5 * np.exp(0.5 * x[2])]
    return grad


def _central_difference(f, x, eps):
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


def _forward_difference(f, x, eps):
    return np.array([(f(x + eps * e) - f(x)) / eps for e in np.eye(x.size)])


def exercise_4(answer: Callable) -> bool:
    """Check a central finite-difference gradient.

    The check calls ``answer`` with a large ``eps`` (0.25), at which the central difference is
    visibly not the exact gradient, and with a small one (1e-5).

    Parameters
    ----------
    answer : callable
        ``answer(f, x, eps)`` returns the array of shape ``x.shape`` whose entry j is
        ``(f(x + eps * e_j) - f(x - eps * e_j)) / (2 * eps)``, without modifying ``x``.
    """
    x = np.array([0.3, -1.2, 0.8, 2.0, -0.5])
    for eps in (0.25, 1e-5):
        x_given = x.copy()
        result, error = call(answer, _ex4_function, x_given, eps)
        if error:
            return report(False, "", error)
        got = _as_array(result)
        if got is None or got.shape != x.shape:
            return report(False, "", f"Expected an array of shape {x.shape}, got "
                          f"{'nothing numeric' if got is None else got.shape}.")
        if not np.array_equal(x_given, x):
            return report(False, "", "Your function changed x in place; perturb a copy of x instead.")
        if not close(got, _central_difference(_ex4_function, x, eps), rtol=1e-7, atol=1e-9):
            return report(False, "", _ex4_hint(got, x, eps))
    off = np.abs(_central_difference(_ex4_function, x, 0.25) - _ex4_gradient(x)).max()
    return report(True, "Your central differences match the reference at eps = 0.25, where they are "
                  f"off the exact gradient by up to {off:.3f} (an O(eps^2) error), and at eps = 1e-5, "
                  "where they are within 1e-9 of it.", "")


def _ex4_hint(got, x, eps) -> str:
    expected = _central_difference(_ex4_function, x, eps)
    if close(got, 2 * expected, rtol=1e-4, atol=1e-6):
        return "A factor of 2 too large: a central difference divides by 2 * eps."
    if close(got, _forward_difference(_ex4_function, x, eps), rtol=1e-7, atol=1e-9):
        return (f"With eps = {eps:g} you computed a one-sided difference (f(x + eps e_j) - f(x)) / eps, "
                "whose error is O(eps). Use (f(x + eps e_j) - f(x - eps e_j)) / (2 eps), whose "
                "error is O(eps^2).")
    if close(got, _ex4_gradient(x), rtol=0, atol=1e-4):
        return (f"With eps = {eps:g} your values are the exact gradient, but the central difference "
                "with this eps is not exact (its error is O(eps^2)): use the eps argument instead "
                "of a step size of your own.")
    return (f"With eps = {eps:g} your values differ from the central difference: perturb one "
            "coordinate at a time by exactly eps, and use the eps argument.")
