"""Self-checks for notebook 05, federated learning.

Each ``exercise_N`` takes the learner's answer, prints "Correct. ..." or "Not yet. <hint>" and
returns a bool. The references are computed with ``flcourse`` itself.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from ..federated.aggregators import weighted_average
from ..data import load_digits
from ..data.partition import make_partition
from ..federated import (FedAvg, FedSGD, InvalidUpdateError, NumpyClient, check_update,
                         make_clients)
from ..models import LinearRegression, SoftmaxRegression
from ..federated.server import Server
from ._core import call, close, report

# (n_params, n_clients, fraction_fit) for exercise 1: C*K = 10, 0.4, 7.5, 13.2 and 7.
_TRAFFIC_CASES = ((650, 100, 0.1), (650, 100, 0.004), (2570, 30, 0.25), (650, 40, 0.33),
                  (90, 7, 1.0))
# Target accuracies for exercise 3; the last is out of reach of both runs.
_TARGETS = (0.85, 0.9, 0.92, 0.99)


def _reference_traffic(n_params: int, n_clients: int, fraction_fit: float) -> tuple[int, int]:
    """Run one FedSGD round with flcourse; return (clients selected, bytes sent + received)."""
    model = LinearRegression(n_features=n_params - 1)
    X, y = np.zeros((2 * n_clients, n_params - 1)), np.zeros(2 * n_clients)
    clients = make_clients(model, X, y, np.arange(2 * n_clients).reshape(n_clients, 2))
    history = Server(model, FedSGD(fraction_fit=fraction_fit), clients, seed=0).run(1).history_
    return history["n_selected"][1], history["bytes_sent"][1] + history["bytes_received"][1]


def exercise_1(round_traffic: Callable) -> bool:
    """Check ``round_traffic(n_params, n_clients, fraction_fit)``.

    Parameters
    ----------
    round_traffic : callable
        Called with ints d (float64 parameters of the model) and K (clients) and a float C in
        (0, 1]. Must return the pair ``(n_selected, total_bytes)``: how many clients a FedAvg
        server selects in one round, and the bytes that cross the network in that round (the
        parameters sent to each selected client plus those it sends back), with no client
        dropping out.
    """
    for d, K, C in _TRAFFIC_CASES:
        answer, error = call(round_traffic, d, K, C)
        if error:
            return report(False, "", error)
        pair = _numbers(answer)
        if pair.size != 2:
            return report(False, "", "Return a pair (n_selected, total_bytes) of two numbers.")
        m, total = _reference_traffic(d, K, C)
        hint = _selected_hint(pair[0], m, K, C) or _bytes_hint(pair[1], total, m, d, K)
        if hint:
            return report(False, "", f"For d={d}, K={K}, C={C}: {hint}")
    return report(True, "m = max(1, round(C*K)) clients a round, each receiving and returning "
                  "d float64s: 2*m*d*8 bytes, the same for FedSGD and FedAvg.", "")


def _selected_hint(answer, m, K, C) -> str | None:
    if close(answer, m):
        return None
    wrong = {
        "at least one client takes part in every round: max(1, ...).": round(C * K),
        "you truncated C*K; round it to the nearest integer.": int(C * K),
        "you rounded C*K up; round it to the nearest integer.": math.ceil(C * K),
        "only a fraction C of the K clients is selected.": K,
    }
    return next((text for text, value in wrong.items() if close(answer, value)),
                f"the server selects {m} clients, not {answer:g}.")


def _bytes_hint(answer, total, m, d, K) -> str | None:
    if close(answer, total):
        return None
    wrong = {
        "that is half the total: the parameters are float64 (8 bytes each) and travel both "
        "ways, out to each selected client and back.": m * d * 8,
        "a float64 is 8 bytes, and both directions count.": m * d * 4,
        "you counted floats, not bytes: a float64 is 8 bytes.": 2 * m * d,
        "only the m selected clients take part, not all K.": 2 * K * d * 8,
        "every selected client receives its own copy and sends one back.": 2 * d * 8,
    }
    return next((text for text, value in wrong.items() if close(answer, value)),
                "total_bytes should be 2 * n_selected * d * 8.")


def _numbers(answer) -> np.ndarray:
    """The answer as a flat float array, empty if it is not numbers."""
    try:
        return np.asarray(answer, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return np.array([])


def _mixed_results() -> tuple[dict, int]:
    """Fit results of 7 clients with d = 5 parameters; clients 2, 4 and 5 sent invalid ones."""
    rng, d = np.random.default_rng(5), 5
    sizes = {0: 12, 1: 3, 2: 30, 3: 40, 4: 8, 5: 0, 6: 25}
    results = {cid: (rng.normal(size=d), n, {}) for cid, n in sizes.items()}
    results[2] = (np.full(d, np.nan), 30, {})
    results[4] = (rng.normal(size=d - 1), 8, {})
    return results, d


def exercise_2(aggregate: Callable) -> bool:
    """Check ``aggregate(results, n_params)``.

    Parameters
    ----------
    aggregate : callable
        Called with a dict ``{cid: (params, n_examples, metrics)}`` of the fit results the
        selected clients returned, some of them invalid, and the int ``n_params``. Must return
        ``(new_params, dropped)``: the n_k-weighted average of the valid updates (those
        ``check_update`` accepts), and the sorted list of the cids it left out.
    """
    results, d = _mixed_results()
    copies = {cid: (p.copy(), n, dict(m)) for cid, (p, n, m) in results.items()}
    answer, error = call(aggregate, copies, d)
    if error:
        return report(False, "", error)
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return report(False, "", "Return a pair (new_params, dropped).")
    params, dropped = answer
    valid, expected_dropped = {}, []
    for cid, result in results.items():
        try:
            valid[cid] = check_update(cid, result, d)
        except InvalidUpdateError:
            expected_dropped.append(cid)
    expected = weighted_average([p for p, _ in valid.values()], [n for _, n in valid.values()])
    hint = _aggregate_hint(params, dropped, expected, expected_dropped, valid)
    return report(hint is None, "Invalid updates are left out and named; the valid ones are "
                  "averaged with weights n_k, as Server(on_invalid='drop') does.", hint or "")


def _aggregate_hint(params, dropped, expected, expected_dropped, valid) -> str | None:
    values = _numbers(params)
    if values.size == expected.size and np.isnan(values).any():
        return "your average holds NaN: an invalid update got in. Check every result with " \
               "check_update(cid, result, n_params) and leave out those it rejects."
    if not close(params, expected):
        if close(params, np.mean([p for p, _ in valid.values()], axis=0)):
            return "that is the plain mean of the valid updates; weight client k by n_k."
        return f"new_params should be a vector of shape {expected.shape}: sum_k n_k params_k / " \
               "sum_k n_k over the valid updates."
    if not isinstance(dropped, (list, tuple)) or list(dropped) != expected_dropped:
        return f"your dropped list is {dropped!r}. It should hold the cids whose result " \
               "check_update rejects (NaN, wrong shape, n_examples < 1), in increasing order."
    return None


@lru_cache(maxsize=1)
def _histories() -> tuple[dict, dict]:
    """FedSGD and FedAvg (E=5, B=10) on 100 IID digits clients, C = 0.1, 20 rounds."""
    data = load_digits(seed=0)
    model = SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)
    clients = make_clients(model, data.X_train, data.y_train,
                           make_partition("iid", data.y_train, 100, seed=0))
    strategies = (FedSGD(fraction_fit=0.1, lr=1.0),
                  FedAvg(fraction_fit=0.1, local_epochs=5, batch_size=10, lr=1.0))
    return tuple(Server(model, strategy, clients, test_set=(data.X_test, data.y_test), seed=0)
                 .run(20).history_ for strategy in strategies)


def _exact_targets(sgd: dict, avg: dict) -> tuple:
    """Targets a run reaches exactly, first at its best early round: there ">" and ">=" differ."""
    return tuple(float(max(h["test_accuracy"][1:4])) for h in (avg, sgd))


def _first_round(history: dict, target: float, strict: bool = False):
    accuracy = np.asarray(history["test_accuracy"])
    reached = np.flatnonzero(accuracy > target if strict else accuracy >= target)
    return int(history["round"][reached[0]]) if len(reached) else None


def exercise_3(speedup: Callable) -> bool:
    """Check ``speedup(fedsgd_history, fedavg_history, target)``.

    Parameters
    ----------
    speedup : callable
        Called with two round histories (``Server.history_``: dicts of lists with keys
        ``"round"`` and ``"test_accuracy"``, round 0 being before training) and a float target.
        Must return FedSGD's rounds to reach the target divided by FedAvg's, where the rounds
        to reach it are the first round whose test accuracy is >= target; None if either run
        never reaches it.
    """
    sgd, avg = _histories()
    for target in _TARGETS + _exact_targets(sgd, avg):
        copies = ({k: list(v) for k, v in sgd.items()}, {k: list(v) for k, v in avg.items()})
        answer, error = call(speedup, *copies, target)
        if error:
            return report(False, "", error)
        r_sgd, r_avg = _first_round(sgd, target), _first_round(avg, target)
        if r_sgd is None or r_avg is None:
            if answer is not None:
                return report(False, "", f"For target {target}: FedAvg reaches it in round "
                              f"{r_avg} and FedSGD in round {r_sgd} (None: never); return None.")
            continue
        if _numbers(answer).size != 1 or not close(answer, r_sgd / r_avg):
            hint = _speedup_hint(answer, sgd, avg, target)
            return report(False, "", f"For target {target}: {hint}")
    return report(True, "Speed-up = FedSGD's rounds / FedAvg's rounds to the target, round 0 "
                  "being the untrained model.", "")


def _speedup_hint(answer, sgd, avg, target) -> str:
    r_sgd, r_avg = _first_round(sgd, target), _first_round(avg, target)
    wrong = {
        "you divided FedAvg's rounds by FedSGD's; the speed-up is FedSGD's / FedAvg's.":
            r_avg / r_sgd,
        "history['round'][i] is the round number (round 0 is before training); you counted "
        "one round too many.": (r_sgd + 1) / (r_avg + 1),
    }
    strict_sgd, strict_avg = _first_round(sgd, target, True), _first_round(avg, target, True)
    if strict_sgd and strict_avg:
        wrong["reaching the target means accuracy >= target, not > target."] = \
            strict_sgd / strict_avg
    if _numbers(answer).size == 1:
        hint = next((text for text, value in wrong.items() if close(answer, value)), None)
        if hint:
            return hint
    return (f"FedSGD first reaches it in round {r_sgd} and FedAvg in round {r_avg}; "
            f"return {r_sgd}/{r_avg}.")


def _clipping_setup():
    data = load_digits(seed=0)
    model = SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)
    client = NumpyClient(model, data.X_train[:40], data.y_train[:40], cid=3)
    config = {"server_round": 1, "local_epochs": 5, "batch_size": 10, "lr": 1.0, "seed": 7}
    start = np.random.default_rng(2).normal(scale=0.1, size=model.n_params)
    return client, config, start


def exercise_4(make_clipping_client: Callable) -> bool:
    """Check ``make_clipping_client(client, max_norm)``.

    Parameters
    ----------
    make_clipping_client : callable
        A class or function called with a client and a float ``max_norm``; returns a client
        whose ``fit(params, config)`` runs the wrapped client's fit and returns
        ``(params + s * delta, n_examples, metrics)``, where delta is the wrapped client's
        new parameters minus ``params`` and s = min(1, max_norm / ||delta||); its
        ``evaluate`` is the wrapped client's. The ``params`` it is given must not change.
    """
    client, config, start = _clipping_setup()
    new, n_examples, _ = client.fit(start, config)
    norm = np.linalg.norm(new - start)
    for max_norm in (0.25 * norm, 4.0 * norm):
        wrapped, error = call(make_clipping_client, client, max_norm)
        if error is None and not (hasattr(wrapped, "fit") and hasattr(wrapped, "evaluate")):
            error = "make_clipping_client must return a client: an object with fit and evaluate."
        given = start.copy()
        result, error = (None, error) if error else call(wrapped.fit, given, config)
        hint = error or _clipping_hint(result, given, start, new, n_examples, max_norm,
                                       client.model.n_params)
        if hint:
            return report(False, "", f"With max_norm = {max_norm / norm:g} x ||delta||: {hint}")
    evaluated, error = call(wrapped.evaluate, start, {})
    if error or not isinstance(evaluated, tuple) or evaluated != client.evaluate(start, {}):
        return report(False, "", error or "evaluate should return the wrapped client's evaluate.")
    return report(True, "Updates longer than max_norm are scaled down to it, shorter ones pass "
                  "unchanged, and the result passes check_update.", "")


def _clipping_hint(result, given, start, new, n_examples, max_norm, n_params) -> str | None:
    if not np.array_equal(given, start):
        return "your fit changed the params it was given. The server passes the same vector " \
               "to every client: work on a copy (params = np.array(params))."
    try:
        params, n = check_update(0, result, n_params)
    except InvalidUpdateError as error:
        return f"check_update rejects your result: {str(error).replace('client 0', 'your client')}."
    delta = new - start
    expected = start + min(1.0, max_norm / np.linalg.norm(delta)) * delta
    if close(params, expected, rtol=0, atol=1e-10) and n == n_examples:
        return None
    wrong = {
        "clip the update delta = new - params, not the new parameters themselves.":
            new * min(1.0, max_norm / np.linalg.norm(new)),
        "an update shorter than max_norm must pass unchanged: s = min(1, max_norm / ||delta||).":
            start + max_norm / np.linalg.norm(delta) * delta,
        "return params + s * delta: you returned the clipped update alone.":
            min(1.0, max_norm / np.linalg.norm(delta)) * delta,
    }
    hint = next((text for text, value in wrong.items() if close(params, value)), None)
    if hint is None and n != n_examples:
        hint = f"pass the wrapped client's n_examples ({n_examples}) through, not {n}."
    return hint or "the clipped parameters differ from params + min(1, max_norm/||delta||) * delta."
