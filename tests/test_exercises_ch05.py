import math

import numpy as np
import pytest
from exercise_helpers import assert_hint, raises

import flcourse as fl
from flcourse.exercises import ch05
from flcourse.federated import InvalidUpdateError, check_update


# Exercise 1: clients selected and bytes moved in one round
def selected(K, C):
    return max(1, int(round(C * K)))


def round_traffic(d, K, C):
    return selected(K, C), 2 * selected(K, C) * d * 8


def test_exercise_1_accepts_the_formula(capsys):
    assert ch05.exercise_1(round_traffic) is True
    assert capsys.readouterr().out.startswith("Correct.")


@pytest.mark.parametrize("answer, hint", [
    (lambda d, K, C: (round(C * K), round_traffic(d, K, C)[1]), "at least one client"),
    (lambda d, K, C: (max(1, int(C * K)), round_traffic(d, K, C)[1]), "truncated"),
    (lambda d, K, C: (max(1, math.ceil(C * K)), round_traffic(d, K, C)[1]), "rounded C*K up"),
    (lambda d, K, C: (K, round_traffic(d, K, C)[1]), "only a fraction C"),
    (lambda d, K, C: (selected(K, C), selected(K, C) * d * 8), "both ways"),
    (lambda d, K, C: (selected(K, C), selected(K, C) * d * 4), "8 bytes, and both directions"),
    (lambda d, K, C: (selected(K, C), 2 * selected(K, C) * d), "floats, not bytes"),
    (lambda d, K, C: (selected(K, C), 2 * K * d * 8), "not all K"),
    (lambda d, K, C: (selected(K, C), 2 * d * 8), "its own copy"),
    (lambda d, K, C: selected(K, C), "pair"),
])
def test_exercise_1_names_the_mistake(answer, hint, capsys):
    assert ch05.exercise_1(answer) is False
    assert_hint(capsys, hint)


# Exercise 2: aggregation that drops invalid updates
def valid_and_dropped(results, n_params):
    valid, dropped = {}, []
    for cid in sorted(results):
        try:
            valid[cid] = check_update(cid, results[cid], n_params)
        except InvalidUpdateError:
            dropped.append(cid)
    return valid, dropped


def aggregate(results, n_params):
    valid, dropped = valid_and_dropped(results, n_params)
    new_params = fl.weighted_average([p for p, _ in valid.values()], [n for _, n in valid.values()])
    return new_params, dropped


def test_exercise_2_accepts_validate_then_weighted_average(capsys):
    assert ch05.exercise_2(aggregate) is True
    assert capsys.readouterr().out.startswith("Correct.")


def plain_mean(results, n_params):
    valid, dropped = valid_and_dropped(results, n_params)
    return np.mean([p for p, _ in valid.values()], axis=0), dropped


def keeps_nan(results, n_params):
    kept = {cid: r for cid, r in results.items() if np.shape(r[0]) == (n_params,)}
    sizes = [n for _, n, _ in kept.values()]
    return fl.weighted_average([p for p, _, _ in kept.values()], sizes), []


def forgets_the_list(results, n_params):
    return aggregate(results, n_params)[0], []


@pytest.mark.parametrize("answer, hint", [
    (plain_mean, "plain mean"),
    (keeps_nan, "holds NaN"),
    (forgets_the_list, "your dropped list is []"),
    (lambda results, n_params: (aggregate(results, n_params)[0], [5, 2, 4]), "your dropped list is [5, 2, 4]"),
    (lambda results, n_params: aggregate(results, n_params)[0], "pair"),
    (lambda results, n_params: (np.zeros(n_params - 1), [2, 4, 5]), "shape (5,)"),
])
def test_exercise_2_names_the_mistake(answer, hint, capsys):
    assert ch05.exercise_2(answer) is False
    assert_hint(capsys, hint)


# Exercise 3: speed-up read off two histories
def first_round(history, target, offset=0):
    reached = np.flatnonzero(np.asarray(history["test_accuracy"]) >= target)
    return history["round"][reached[0]] + offset if len(reached) else None


def speedup(sgd, avg, target, offset=0):
    r_sgd, r_avg = first_round(sgd, target, offset), first_round(avg, target, offset)
    return None if r_sgd is None or r_avg is None else r_sgd / r_avg


def test_exercise_3_accepts_first_crossing_ratio(capsys):
    assert ch05.exercise_3(speedup) is True
    assert capsys.readouterr().out.startswith("Correct.")


def inverted(sgd, avg, target):
    ratio = speedup(sgd, avg, target)
    return None if ratio is None else 1 / ratio


@pytest.mark.parametrize("answer, hint", [
    (inverted, "FedSGD's / FedAvg's"),
    (lambda sgd, avg, target: speedup(sgd, avg, target, offset=1), "one round too many"),
    (lambda sgd, avg, target: speedup(sgd, avg, target) or 0.0, "return None"),
    (lambda sgd, avg, target: 2.0, "FedSGD first reaches it in round"),
])
def test_exercise_3_names_the_mistake(answer, hint, capsys):
    assert ch05.exercise_3(answer) is False
    assert_hint(capsys, hint)


# Exercise 4: a client that clips its update
class ClippingClient:
    def __init__(self, client, max_norm):
        self.client, self.max_norm = client, max_norm

    def fit(self, params, config):
        new, n_examples, metrics = self.client.fit(params, config)
        delta = new - params
        return params + min(1.0, self.max_norm / np.linalg.norm(delta)) * delta, n_examples, metrics

    def evaluate(self, params, config):
        return self.client.evaluate(params, config)


def test_exercise_4_accepts_update_clipping(capsys):
    assert ch05.exercise_4(ClippingClient) is True
    assert capsys.readouterr().out.startswith("Correct.")


class ClipsParameters(ClippingClient):
    def fit(self, params, config):
        new, n_examples, metrics = self.client.fit(params, config)
        return new * min(1.0, self.max_norm / np.linalg.norm(new)), n_examples, metrics


class AlwaysRescales(ClippingClient):
    def fit(self, params, config):
        new, n_examples, metrics = self.client.fit(params, config)
        delta = new - params
        return params + self.max_norm / np.linalg.norm(delta) * delta, n_examples, metrics


class InPlace(ClippingClient):
    def fit(self, params, config):
        new, n_examples, metrics = super().fit(params, config)
        params += 0.0 * params + 1.0  # corrupts the server's vector
        return new, n_examples, metrics


class ParamsOnly(ClippingClient):
    def fit(self, params, config):
        return super().fit(params, config)[0]


class UpdateOnly(ClippingClient):
    def fit(self, params, config):
        clipped, n_examples, metrics = super().fit(params, config)
        return clipped - params, n_examples, metrics


class NoEvaluate:
    def __init__(self, client, max_norm):
        self.client = client

    def fit(self, params, config):
        return self.client.fit(params, config)


@pytest.mark.parametrize("answer, hint", [
    (ClipsParameters, "not the new parameters"),
    (AlwaysRescales, "must pass unchanged"),
    (InPlace, "changed the params it was given"),
    (ParamsOnly, "check_update rejects your result: update from your client must be a tuple"),
    (UpdateOnly, "the clipped update alone"),
    (NoEvaluate, "an object with fit and evaluate"),
])
def test_exercise_4_names_the_mistake(answer, hint, capsys):
    assert ch05.exercise_4(answer) is False
    assert_hint(capsys, hint)


@pytest.mark.parametrize("exercise", [ch05.exercise_1, ch05.exercise_2, ch05.exercise_3, ch05.exercise_4])
def test_an_exception_in_the_answer_becomes_a_hint(exercise, capsys):
    assert exercise(raises) is False
    assert "raised ValueError: boom" in capsys.readouterr().out
