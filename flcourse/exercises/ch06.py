"""Self-checks for notebook 06, skewed data (FedProx, SCAFFOLD, client drift).

Each ``exercise_N`` takes the learner's answer, prints "Correct. ..." or "Not yet. <hint>" and
returns a bool. The references are computed with ``flcourse`` itself: a ``NumpyClient`` that
trains with the proximal term or with control variates, and the ``Scaffold`` strategy.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from ..data import load_digits, make_partition
from ..federated import NumpyClient, Scaffold, Update, make_clients
from ..models import SoftmaxRegression
from ._core import call, close, report

# Exercise 2: (n_samples, batch_size, local_epochs); K = 6, 3 and 5 local steps.
_CONTROL_CASES = ((23, 10, 2), (23, None, 3), (40, 8, 1))
# Exercise 3: (clients answering |S|, all clients N, server_lr).
_SERVER_CASES = ((3, 10, 1.0), (4, 4, 1.0), (2, 7, 0.5))
# Exercise 4: the local work of section 3, and the partitions the check measures.
DRIFT_CONFIG = {"server_round": 1, "local_epochs": 5, "batch_size": 10, "lr": 0.5, "seed": 1}
_DRIFT_SPECS = ("shards:2", "dirichlet:0.5", "iid")


@lru_cache(maxsize=1)
def _digits():
    data = load_digits(seed=0)
    return data, SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)


def _state(seed: int, d: int, n: int = 1) -> np.ndarray:
    """Reproducible test vectors of shape (n, d), squeezed to (d,) for n = 1."""
    values = np.random.default_rng(seed).normal(scale=0.5, size=(n, d))
    return values[0] if n == 1 else values


# ----------------------------------------------------------------------------- exercise 1
def exercise_1(prox_step: Callable) -> bool:
    """Check ``prox_step(w, w_t, grad, lr, mu)``.

    Parameters
    ----------
    prox_step : callable
        Called with the local parameters ``w``, the global parameters ``w_t`` the round
        started from, the gradient ``grad`` of the client's loss at ``w`` (three arrays of
        shape (d,)), and floats ``lr`` and ``mu``. Must return FedProx's local SGD step
        w - lr * (grad + mu * (w - w_t)) as a new array, leaving ``w_t`` and ``grad`` unchanged.
    """
    for k, (lr, mu) in enumerate(((0.5, 0.1), (0.05, 1.0), (0.2, 0.0))):
        w, w_t, grad = _state(10 + k, 7, 3)
        given = (w.copy(), w_t.copy(), grad.copy())
        answer, error = call(prox_step, *given, lr, mu)
        if error:
            return report(False, "", error)
        if not (np.array_equal(given[1], w_t) and np.array_equal(given[2], grad)):
            return report(False, "", "your function changed w_t or grad in place. w_t is the "
                          "server's vector, shared by every client of the round: compute a new array.")
        hint = _prox_hint(answer, w, w_t, grad, lr, mu)
        if hint:
            return report(False, "", f"With lr = {lr}, mu = {mu}: {hint}")
    hint = _prox_against_client(prox_step)
    return report(hint is None, "Your steps, repeated, give exactly what a NumpyClient "
                  "computes with config['mu']: w <- w - lr (grad + mu (w - w_t)).", hint or "")


def _prox_hint(answer, w, w_t, grad, lr, mu) -> str | None:
    expected = w - lr * (grad + mu * (w - w_t))
    if close(answer, expected, rtol=1e-10, atol=1e-12):
        return None
    wrong = {
        "the proximal term pulls w back towards w_t: add mu (w - w_t) to the gradient; you "
        "subtracted it (or wrote w_t - w).": w - lr * (grad - mu * (w - w_t)),
        "the gradient of (mu/2) ||w - w_t||^2 is mu (w - w_t): the 1/2 cancels against the "
        "square.": w - lr * (grad + mu / 2 * (w - w_t)),
        "the proximal gradient is part of the step: multiply lr by the whole of "
        "(grad + mu (w - w_t)).": w - lr * grad - mu * (w - w_t),
        "that pulls w towards 0 (an L2 penalty, weight decay); FedProx pulls it towards the "
        "global w_t.": w - lr * (grad + mu * w),
    }
    if mu:
        wrong["your step does not depend on mu: that is FedAvg's plain SGD step. Add the "
              "proximal gradient mu (w - w_t)."] = w - lr * grad
    hint = next((text for text, value in wrong.items() if close(answer, value, rtol=1e-10, atol=1e-12)), None)
    return hint or f"return an array of shape {w.shape}: w - lr * (grad + mu * (w - w_t))."


def _prox_against_client(prox_step) -> str | None:
    """Four full-batch proximal steps by the learner equal one NumpyClient.fit with "mu"."""
    data, model = _digits()
    X, y = data.X_train[:40], data.y_train[:40]
    w_t = 0.1 * _state(3, model.n_params)
    config = {"server_round": 1, "local_epochs": 4, "batch_size": None, "lr": 0.5, "mu": 0.5, "seed": 0}
    expected = NumpyClient(model, X, y, cid=0).fit(w_t, config)[0]
    w = w_t.copy()
    for _ in range(config["local_epochs"]):
        w, error = call(prox_step, w, w_t.copy(), model.grad(w, X, y), config["lr"], config["mu"])
        if error:
            return error
    if not close(w, expected, rtol=0, atol=1e-10):
        return "on random vectors your step was right, but four steps of it on a client's data " \
               "differ from NumpyClient.fit with config['mu']: does your function keep state " \
               "between calls?"
    return None


# ----------------------------------------------------------------------------- exercise 2
def _control_case(n_samples, batch_size, local_epochs):
    """A client with a control variate c_i, the server's c, and its fit from x: (x, y, c_i, c, c_i+)."""
    data, model = _digits()
    client = NumpyClient(model, data.X_train[:n_samples], data.y_train[:n_samples], cid=4)
    c_i, c = 0.01 * _state(20 + n_samples, model.n_params), 0.01 * _state(21 + local_epochs, model.n_params)
    client.state = {"control": c_i.copy()}
    x = 0.1 * _state(22, model.n_params)
    config = {"server_round": 1, "local_epochs": local_epochs, "batch_size": batch_size, "lr": 0.3,
              "seed": 5, "control": c.copy(), "update": "delta"}
    delta = client.fit(x, config)[0]
    return x, x + delta, c_i, c, client.state["control"], config["lr"]


def exercise_2(control_update: Callable) -> bool:
    """Check ``control_update(c_i, c, x, y, n_samples, batch_size, local_epochs, lr)``.

    Parameters
    ----------
    control_update : callable
        Called with the client's control variate ``c_i``, the server's ``c``, the global
        parameters ``x`` the round started from and the client's parameters ``y`` after its
        local work (arrays of shape (d,)); the ints ``n_samples`` and ``local_epochs``, the
        ``batch_size`` (an int, or None for the whole local dataset) and the float ``lr``.
        Must return SCAFFOLD's option-II update c_i+ = c_i - c + (x - y) / (K lr), where K is
        the number of local steps: batches per epoch times epochs.
    """
    for n, batch_size, epochs in _CONTROL_CASES:
        x, y, c_i, c, expected, lr = _control_case(n, batch_size, epochs)
        answer, error = call(control_update, c_i.copy(), c.copy(), x.copy(), y.copy(), n, batch_size, epochs, lr)
        if error:
            if batch_size is None and isinstance(error, str) and "TypeError" in error:
                error += " (batch_size None means the whole local dataset: one batch an epoch)"
            return report(False, "", error)
        if not close(answer, expected, rtol=1e-9, atol=1e-12):
            hint = _control_hint(answer, x, y, c_i, c, lr, n, batch_size, epochs)
            return report(False, "", f"For n_samples = {n}, batch_size = {batch_size}, "
                          f"local_epochs = {epochs}: {hint}")
    return report(True, "c_i+ = c_i - c + (x - y) / (K lr) with K = ceil(n / B) x E: the same "
                  "control variate the NumpyClient keeps in its state.", "")


def _control_hint(answer, x, y, c_i, c, lr, n, batch_size, epochs) -> str:
    per_epoch = 1 if batch_size is None else math.ceil(n / batch_size)
    steps = per_epoch * epochs

    def with_steps(k):
        return c_i - c + (x - y) / (k * lr)

    wrong = {
        "you subtracted c_i instead of starting from it: c_i+ = c_i - c + ...": -c_i - c + (x - y) / (steps * lr),
        "option II subtracts the server's c: c_i+ = c_i - c + (x - y) / (K lr).": c_i + (x - y) / (steps * lr),
        "start from the client's own c_i: c_i+ = c_i - c + (x - y) / (K lr).": -c + (x - y) / (steps * lr),
        "(x - y) / (K lr) is the average corrected gradient the client followed, so it is x - y, "
        "not y - x.": c_i - c + (y - x) / (steps * lr),
        "divide by K lr: x - y is lr times the sum of the K corrected gradients.": c_i - c + (x - y) / steps,
        "K counts local steps, batches per epoch times epochs, not epochs.": with_steps(epochs),
        "K counts the steps of all epochs: batches per epoch times local_epochs.": with_steps(per_epoch),
    }
    if batch_size is not None:
        wrong["the last, smaller batch of an epoch is a step too: an epoch has ceil(n / B) "
              "batches, not n // B."] = with_steps(max(1, n // batch_size) * epochs)
        wrong["K is a count of steps, an integer: ceil(n / B) batches per epoch, times E."] = \
            with_steps(n / batch_size * epochs)
    hint = next((text for text, value in wrong.items() if close(answer, value, rtol=1e-9, atol=1e-12)), None)
    return hint or f"expected c_i - c + (x - y) / (K lr) with K = {steps} local steps."


# ----------------------------------------------------------------------------- exercise 3
def _server_case(n_answered, n_clients, server_lr, d=6):
    x, c = _state(30 + n_answered, d), _state(31 + n_clients, d)
    deltas, control_deltas = _state(32, d, n_answered), _state(33, d, n_answered)
    strategy = Scaffold(fraction_fit=n_answered / n_clients, server_lr=server_lr)
    strategy.initialize(x)
    strategy.set_state({"control": c})
    strategy.configure_fit(1, x, list(range(n_clients)), np.random.default_rng(0))
    results = [Update(k, deltas[k], 10, {}, {"control_delta": control_deltas[k]}) for k in range(n_answered)]
    x_new, _ = strategy.aggregate_fit(1, x, results, [])
    return x, c, deltas, control_deltas, x_new, strategy.get_state()["control"]


def exercise_3(scaffold_aggregate: Callable) -> bool:
    """Check ``scaffold_aggregate(x, c, deltas, control_deltas, n_clients, server_lr)``.

    Parameters
    ----------
    scaffold_aggregate : callable
        Called with the global parameters ``x`` and control variate ``c`` (shape (d,)), the
        changes y_i - x and Δc_i of the |S| clients that answered (arrays of shape (|S|, d)),
        the number N of all clients and the float ``server_lr``. Must return the pair
        ``(x_new, c_new)``: x + server_lr * mean_i (y_i - x) and c + (|S| / N) * mean_i Δc_i,
        as ``Scaffold.aggregate_fit`` computes them.
    """
    for n_answered, n_clients, server_lr in _SERVER_CASES:
        x, c, deltas, control_deltas, x_new, c_new = _server_case(n_answered, n_clients, server_lr)
        answer, error = call(scaffold_aggregate, x.copy(), c.copy(), deltas.copy(), control_deltas.copy(),
                             n_clients, server_lr)
        if error:
            return report(False, "", error)
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            return report(False, "", "Return a pair (x_new, c_new).")
        hint = _server_hint(*answer, x, c, deltas, control_deltas, n_clients, server_lr, x_new, c_new)
        if hint:
            return report(False, "", f"With |S| = {n_answered} of N = {n_clients} clients, "
                          f"server_lr = {server_lr}: {hint}")
    return report(True, "x moves by server_lr times the mean change, and c by |S|/N times the "
                  "mean Δc_i, so c stays the average of all N clients' c_i.", "")


def _server_hint(x_answer, c_answer, x, c, deltas, control_deltas, n_clients, server_lr,
                 x_new, c_new) -> str | None:
    share = len(deltas) / n_clients
    if not close(x_answer, x_new, rtol=1e-10, atol=1e-12):
        wrong = {
            "scale the mean change by server_lr (the global step size eta_g).": x + deltas.mean(axis=0),
            "average the clients' changes; you added them up.": x + server_lr * deltas.sum(axis=0),
            "the changes are relative to x: x_new = x + server_lr * mean(deltas).": server_lr * deltas.mean(axis=0),
            "the parameters move with the clients' changes, deltas, not with the Δc_i.":
                x + server_lr * control_deltas.mean(axis=0),
        }
        hint = next((t for t, v in wrong.items() if close(x_answer, v, rtol=1e-10, atol=1e-12)), None)
        return hint or "x_new should be x + server_lr * deltas.mean(axis=0)."
    if not close(c_answer, c_new, rtol=1e-10, atol=1e-12):
        wrong = {
            "only |S| of the N clients updated their c_i, so c moves by |S|/N times the mean Δc_i "
            "(then c stays the average of all N c_i).": c + control_deltas.mean(axis=0),
            "c is updated, not replaced: c_new = c + (|S|/N) * mean Δc_i.": share * control_deltas.mean(axis=0),
            "the weight is |S|/N, not N/|S|.": c + control_deltas.mean(axis=0) / share,
            "c is not scaled by server_lr: c_new = c + (|S|/N) * mean Δc_i.":
                c + server_lr * share * control_deltas.mean(axis=0),
        }
        hint = next((t for t, v in wrong.items() if close(c_answer, v, rtol=1e-10, atol=1e-12)), None)
        return hint or "c_new should be c + len(deltas) / n_clients * control_deltas.mean(axis=0)."
    return None


# ----------------------------------------------------------------------------- exercise 4
@lru_cache(maxsize=8)
def _drift_updates(spec: str, n_clients: int = 20, seed: int = 0):
    """(Δ_k of every client, p_k = n_k / n) for section 3's first round on digits."""
    data, model = _digits()
    clients = make_clients(model, data.X_train, data.y_train,
                           make_partition(spec, data.y_train, n_clients, seed=seed))
    w_0 = model.init_params()
    deltas = np.array([client.fit(w_0, DRIFT_CONFIG)[0] - w_0 for client in clients])
    sizes = np.array([client.n_samples for client in clients], dtype=np.float64)
    return deltas, sizes / sizes.sum()


def reference_relative_drift(spec: str, n_clients: int = 20, seed: int = 0) -> float:
    """The relative drift D / ||mean update||^2 of section 3 for one partition of digits.

    Every client of ``make_partition(spec, y_train, n_clients, seed=seed)`` trains from
    w_0 = 0 with :data:`DRIFT_CONFIG`; Δ_k = w_k - w_0, p_k = n_k / n, the mean update is
    Σ p_k Δ_k and D = Σ p_k ||Δ_k - mean||^2.
    """
    deltas, p = _drift_updates(spec, n_clients, seed)
    mean = p @ deltas
    return float(p @ np.sum((deltas - mean) ** 2, axis=1) / (mean @ mean))


def _drift_variants(spec: str) -> dict:
    """What common mistakes compute instead of the relative drift, for the hints."""
    deltas, p = _drift_updates(spec)
    mean, plain = p @ deltas, deltas.mean(axis=0)
    spread = p @ np.sum((deltas - mean) ** 2, axis=1)
    return {
        "that is D itself; divide it by ||mean update||^2 to compare partitions.": spread,
        "weight the clients by p_k = n_k / n, in the mean update and in D; you used plain means.":
            np.mean(np.sum((deltas - plain) ** 2, axis=1)) / (plain @ plain),
        "D is the weighted mean of squared distances ||Δ_k - mean||^2; you did not square them.":
            (p @ np.linalg.norm(deltas - mean, axis=1)) / (mean @ mean),
        "measure each client's distance to the mean update, not to zero.":
            (p @ np.sum(deltas ** 2, axis=1)) / (mean @ mean),
        "divide by the squared norm of the mean update, ||mean||^2, not by its norm.":
            spread / np.linalg.norm(mean),
    }


def exercise_4(relative_drift: Callable) -> bool:
    """Check ``relative_drift(spec)``.

    Parameters
    ----------
    relative_drift : callable
        Called with a partition spec for ``make_partition`` (``"shards:2"``, ...). Must deal
        digits' training set to 20 clients with ``make_partition(spec, y_train, 20, seed=0)``,
        let every client train from w_0 = 0 with section 3's settings (``DRIFT_CONFIG``: E = 5,
        B = 10, lr = 0.5, seed 1), and return D / ||mean update||^2, where Δ_k = w_k - w_0,
        p_k = n_k / n, mean update = Σ p_k Δ_k and D = Σ p_k ||Δ_k - mean update||^2.
    """
    for spec in _DRIFT_SPECS:
        answer, error = call(relative_drift, spec)
        if error:
            return report(False, "", error)
        expected = reference_relative_drift(spec)
        if _scalar(answer) is None or not close(answer, expected, rtol=1e-6, atol=0):
            hint = next((text for text, value in _drift_variants(spec).items()
                         if _scalar(answer) is not None and close(answer, value, rtol=1e-6, atol=0)), None)
            return report(False, "", f"For {spec!r}: " + (hint or f"your {answer!r} is not the "
                          "relative drift. Check the settings: 20 clients, seed=0, DRIFT_CONFIG, "
                          "w_0 = model.init_params(), and p_k = n_k / n."))
    return report(True, f"Relative drift of the pathological split: {reference_relative_drift('shards:2'):.2f} "
                  f"(Dirichlet(0.5): {reference_relative_drift('dirichlet:0.5'):.2f}, IID: "
                  f"{reference_relative_drift('iid'):.2f}).", "")


def _scalar(answer) -> float | None:
    try:
        value = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(value) if value.shape == () and np.isfinite(value) else None
