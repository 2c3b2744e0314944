"""Self-checks for notebook 03, the averaged-gradient formula.

Each ``exercise_N`` takes the learner's answer, prints "Correct. ..." or "Not yet. <hint>" and
returns a bool. The references are computed with ``flcourse`` itself.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from .. import optim
from ..federated.aggregators import weighted_average
from ..data import load_digits
from ..data.partition import quantity_skew_partition
from ..models import LinearRegression, SoftmaxRegression
from ..optim import gradient_descent
from ._core import call, close, report

# Quadratic federations (a, c, p, lr, local_steps) used by exercises 2 and 3.
_UNEQUAL = ([1.0, 4.0], [2.0, -1.0], [0.6, 0.4], 0.1, 5)
_THREE = ([0.5, 2.0, 3.0], [1.0, -2.0, 4.0], [0.2, 0.5, 0.3], 0.2, 3)
_EQUAL_A = ([2.0, 2.0], [2.0, -1.0], [0.6, 0.4], 0.1, 8)
_EQUAL_C = ([1.0, 4.0], [1.5, 1.5], [0.6, 0.4], 0.1, 8)


class _FullDataGradient(RuntimeError):
    """Raised when exercise 1's answer asks for the gradient on the whole training set."""


class _ShardsOnlySoftmax(SoftmaxRegression):
    """A SoftmaxRegression whose grad / loss_and_grad / loss_grad refuse all ``n_refused`` rows."""

    n_refused = -1

    def loss_grad(self, params, X, y, need_grad=True):
        if need_grad and len(X) == self.n_refused:
            raise _FullDataGradient(
                f"You asked the model for the gradient on all N = {self.n_refused} examples. "
                "The exercise is to build it from the shards: g_k = model.grad(params, X[part], "
                "y[part]) for each part, combined with weights n_k / N.")
        return super().loss_grad(params, X, y, need_grad)


def _shard_problem():
    """Softmax regression on digits at a random point, split into 6 shards of unequal sizes."""
    data = load_digits(seed=0)
    model = SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes, l2=1e-2)
    params = 0.1 * np.random.default_rng(3).normal(size=model.n_params)
    partition = quantity_skew_partition(len(data.y_train), 6, beta=0.5, seed=3)
    return model, params, data.X_train, data.y_train, partition


@contextmanager
def _counted_gradient_descent() -> Iterator[list]:
    """Record the calls to ``flcourse.gradient_descent`` inside the block (the starting
    parameters of each); restore it afterwards."""
    package = importlib.import_module("..", __package__)
    originals = package.gradient_descent, optim.gradient_descent
    calls = []

    def counted(*args, **kwargs):
        start = kwargs.get("params", args[1] if len(args) > 1 else None)
        calls.append(np.array(start, dtype=np.float64, copy=True) if start is not None else None)
        return originals[1](*args, **kwargs)

    package.gradient_descent = optim.gradient_descent = counted
    try:
        yield calls
    finally:
        package.gradient_descent, optim.gradient_descent = originals


def _numbers(answer) -> np.ndarray:
    """The answer as a flat float array, empty if it is not numbers."""
    if answer is None:
        return np.array([])
    try:
        return np.asarray(answer, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return np.array([])


def _theta_star(a, c, p) -> float:
    """Minimiser of F = sum_k p_k * a_k / 2 * (theta - c_k)^2."""
    a, c, p = (np.asarray(v, dtype=np.float64) for v in (a, c, p))
    return float(np.sum(p * a * c) / np.sum(p * a))


def _fedavg_limit(a, c, p, lr, local_steps, tol=1e-13, max_rounds=5000) -> float:
    """Run FedAvg on the quadratic clients with flcourse until a round moves theta by <= tol."""
    model = LinearRegression(n_features=1, fit_intercept=False)
    clients = [(np.array([[np.sqrt(a_k)]]), np.array([np.sqrt(a_k) * c_k])) for a_k, c_k in zip(a, c)]
    theta = np.zeros(1)
    for _ in range(max_rounds):
        with np.errstate(divide="ignore", invalid="ignore"):  # R^2 of one sample is 0/0
            local = [gradient_descent(model, theta, X_k, y_k, lr=lr, n_steps=local_steps)[0]
                     for X_k, y_k in clients]
        theta, previous = weighted_average(local, p), theta
        if abs(theta[0] - previous[0]) <= tol:
            break
    return float(theta[0])


def exercise_1(average_gradient: Callable) -> bool:
    """Check ``average_gradient(model, params, X, y, partition)``.

    Parameters
    ----------
    average_gradient : callable
        Called with a ``SoftmaxRegression``, ``params`` of shape (n_params,), the digits
        training set ``X, y`` and a list of index arrays ``partition`` (shards of unequal
        sizes). Must return an ndarray of shape (n_params,): sum_k (n_k / N) * g_k with
        g_k = ``model.grad(params, X[part_k], y[part_k])``, which equals the full-data gradient.
        The model it gets refuses to compute a gradient on all N examples.
    """
    model, params, X, y, partition = _shard_problem()
    shards_only = _ShardsOnlySoftmax(n_features=model.n_features, n_classes=model.n_classes,
                                     l2=model.l2)
    shards_only.n_refused = len(y)
    answer, error = call(average_gradient, shards_only, params, X, y, partition)
    if error:
        prefix = f"Your function raised {_FullDataGradient.__name__}: "
        return report(False, "", error.removeprefix(prefix))
    expected = model.grad(params, X, y)
    local = np.array([model.grad(params, X[part], y[part]) for part in partition])
    sizes = np.array([len(part) for part in partition])
    wrong = {
        "That is the plain mean of the g_k: a shard of 3 examples counts as much as one of 700. "
        "Weight shard k by n_k / N.": local.mean(axis=0),
        "That is the sum of the g_k; weight each by n_k / N instead.": local.sum(axis=0),
        "You weighted by n_k but did not divide by N = sum_k n_k.": sizes @ local,
    }
    hint = next((text for text, value in wrong.items() if close(answer, value)), None)
    if hint is None and np.shape(answer) != expected.shape:
        hint = f"Return a vector of shape {expected.shape}, got shape {np.shape(answer)}."
    if hint is None:
        hint = ("Your vector differs from model.grad(params, X, y). Compute g_k on each shard "
                "and return sum_k (n_k / N) * g_k.")
    return report(close(answer, expected, rtol=0, atol=1e-10),
                  "sum_k (n_k/N) g_k is the full-data gradient, penalty included.", hint)


def exercise_2(quadratic_fixed_points: Callable) -> bool:
    """Check ``quadratic_fixed_points(a, c, p, lr, local_steps)``.

    Parameters
    ----------
    quadratic_fixed_points : callable
        Called with 1-D arrays ``a`` (curvatures a_k > 0), ``c`` (client optima c_k), ``p``
        (weights p_k, summing to 1), a float ``lr`` and an int ``local_steps`` E. Must return
        the pair ``(theta_star, theta_bar)``: the minimiser of sum_k p_k a_k / 2 (theta - c_k)^2
        and the fixed point of FedAvg with E local gradient steps of size ``lr``.
    """
    for a, c, p, lr, steps in (_UNEQUAL, _THREE):
        args = [np.array(a), np.array(c), np.array(p), lr, steps]
        answer, error = call(quadratic_fixed_points, *args)
        if error:
            return report(False, "", error)
        pair = _numbers(answer)
        if pair.size != 2:
            return report(False, "", "Return a pair (theta_star, theta_bar) of two numbers.")
        hint = _fixed_point_hint(pair, *args)
        if hint:
            return report(False, "", f"For a={a}, c={c}, p={p}, lr={lr}, E={steps}: {hint}")
    return report(True, "theta_star and theta_bar_E match FedAvg run with flcourse.", "")


def _fixed_point_hint(answer, a, c, p, lr, steps):
    star, bar = float(answer[0]), float(answer[1])
    expected_star, expected_bar = _theta_star(a, c, p), _fedavg_limit(a, c, p, lr, steps)
    weight = 1.0 - (1.0 - lr * a) ** steps
    if not close(star, expected_star):
        if close(star, np.sum(p * c)):
            return "theta_star weights c_k by p_k * a_k, not by p_k alone: curvature counts."
        if close(star, np.sum(a * c) / np.sum(a)):
            return "theta_star forgot the client weights p_k."
        return f"theta_star should be {expected_star:.4f}, got {star:.4f}."
    if close(bar, expected_bar):
        return None
    if close(bar, expected_star):
        return "your theta_bar equals theta_star; with E > 1 use r_k = (1 - lr * a_k) ** E."
    if close(bar, np.sum(p * c)):
        return "that is the E -> infinity limit sum_k p_k c_k (r_k -> 0); keep r_k = (1 - lr * a_k) ** E."
    if close(bar, np.sum(weight * c) / np.sum(weight)):
        return "theta_bar forgot the client weights p_k."
    return f"theta_bar should be {expected_bar:.4f}, got {bar:.4f}."


def exercise_3(fedavg_limit: Callable) -> bool:
    """Check ``fedavg_limit(a, c, p, lr, local_steps)``.

    Parameters
    ----------
    fedavg_limit : callable
        Same arguments as in exercise 2. Must *run* FedAvg on the clients
        f_k(theta) = a_k / 2 (theta - c_k)^2 (``LinearRegression`` on one sample each, E steps
        of ``gradient_descent`` per client, ``weighted_average`` with weights p_k) from
        theta = 0 until it stops moving, and return the limit as a float. The check counts the
        calls to ``flcourse.gradient_descent``.
    """
    for a, c, p, lr, steps in (_UNEQUAL, _THREE, _EQUAL_A, _EQUAL_C):
        args = [np.array(a), np.array(c), np.array(p), lr, steps]
        with _counted_gradient_descent() as calls:
            answer, error = call(fedavg_limit, *args)
        if error:
            return report(False, "", error)
        number = _numbers(answer)
        if number.size != 1:
            return report(False, "", f"Return one number, got {answer!r:.60}.")
        if len(calls) < len(a):
            return report(False, "", f"Your function called fl.gradient_descent {len(calls)} "
                          f"times for {len(a)} clients, so it did not run FedAvg. Simulate the "
                          "rounds (E steps of fl.gradient_descent per client, then "
                          "fl.weighted_average) rather than evaluating the closed form.")
        answer, expected = float(number[0]), _fedavg_limit(*args)
        last_start = calls[-1]
        if close(answer, expected, rtol=0, atol=1e-8) and last_start is not None \
                and close(last_start, np.full(np.shape(last_start), expected), rtol=0, atol=1e-6):
            continue
        if close(answer, expected, rtol=0, atol=1e-8):
            return report(False, "", f"Your last call to fl.gradient_descent started from "
                          f"{_numbers(last_start)[:1]} rather than from the limit: simulate the rounds, "
                          "each client's E local steps starting from the averaged theta of the round before.")
        where = f"For a={a}, c={c}, p={p}, lr={lr}, E={steps}: "
        if close(answer, _theta_star(a, c, p)):
            hint = "you got theta_star, which FedAvg with E > 1 does not reach. Average the " \
                   "parameters after E local steps, not the gradients."
        elif close(answer, expected, rtol=0, atol=1e-3):
            hint = "close, but not converged: run rounds until one moves theta by less than 1e-13."
        else:
            hint = f"the limit should be {expected:.4f}, got {answer:.4f}."
        return report(False, "", where + hint)
    return report(True, "Your FedAvg drifts when the a_k differ, and lands on theta_star when "
                  "all a_k are equal or all c_k are equal.", "")


def exercise_4(aggregate: Callable) -> bool:
    """Check ``aggregate(client_params, n_examples)``, the repaired article server.

    Parameters
    ----------
    aggregate : callable
        Called with a list of K parameter vectors of one shape and a list of K example
        counts n_k. Must return the average of the vectors weighted by n_k / sum_j n_j.
    """
    rng = np.random.default_rng(4)
    n_examples = [10, 200, 35, 5]
    same = [np.linspace(-1.0, 1.0, 6)] * 4
    different = [rng.normal(size=6) for _ in n_examples]
    for client_params in (same, different):
        answer, error = call(aggregate, [v.copy() for v in client_params], list(n_examples))
        if error:
            return report(False, "", error)
        stacked = np.array(client_params)
        wrong = {
            "That is the sum of the updates, as in the article: four clients sending the same "
            "parameters get four times them back. Divide by the weights' total.": stacked.sum(0),
            "That is the plain mean: a client with 5 examples counts as much as one with 200. "
            "Weight client k by n_k.": stacked.mean(0),
            "You weighted by n_k but did not divide by sum_k n_k.": np.array(n_examples) @ stacked,
        }
        if not close(answer, weighted_average(client_params, n_examples)):
            hint = next((text for text, value in wrong.items() if close(answer, value)),
                        "Return sum_k n_k * params_k / sum_k n_k, a vector of the clients' shape.")
            return report(False, "", hint)
    return report(True, "Averaging is weighted by n_k and leaves identical models unchanged.", "")
