import numpy as np
import pytest
from exercise_helpers import assert_hint, raises

import flcourse as fl
from flcourse.exercises import ch04


# Exercise 1: bytes per step, parameter server and ring
def traffic(n_params, n_workers):
    return n_workers * n_params * 8, 2 * (n_workers - 1) / n_workers * n_params * 8


def test_exercise_1_accepts_the_formulas(capsys):
    assert ch04.exercise_1(traffic) is True
    assert capsys.readouterr().out.startswith("Correct.")


@pytest.mark.parametrize("answer, hint", [
    (lambda d, K: (K * d, traffic(d, K)[1]), "not bytes"),
    (lambda d, K: (8 * d, traffic(d, K)[1]), "each of the K workers"),
    (lambda d, K: (16 * K * d, traffic(d, K)[1]), "not what it receives"),
    (lambda d, K: (traffic(d, K)[0], 2 * (K - 1) * d * 8), "one chunk of d/K floats"),
    (lambda d, K: (traffic(d, K)[0], (K - 1) / K * d * 8), "reduce-scatter half"),
    (lambda d, K: (traffic(d, K)[0], 2 * (K - 1) / K * d), "not bytes"),
    (lambda d, K: traffic(d, K)[0], "pair"),
])
def test_exercise_1_names_the_mistake(answer, hint, capsys):
    assert ch04.exercise_1(answer) is False
    assert_hint(capsys, hint)


# Exercise 2: the server step, weighted by batch share
def server_step(params, replies, lr):
    sizes = [m for m, _ in replies]
    return params - lr * fl.weighted_average([g for _, g in replies], sizes)


def test_exercise_2_accepts_weighting_by_batch_share(capsys):
    assert ch04.exercise_2(server_step) is True
    assert capsys.readouterr().out.startswith("Correct.")


def _mean_grad(replies):
    return np.mean([g for _, g in replies], axis=0)


def _weighted_grad(replies):
    return fl.weighted_average([g for _, g in replies], [m for m, _ in replies])


@pytest.mark.parametrize("answer, hint", [
    (lambda p, r, lr: p - lr * _mean_grad(r), "plain mean"),
    (lambda p, r, lr: p - lr * np.sum([g for _, g in r], axis=0), "article's sum"),
    (lambda p, r, lr: p - lr * sum(m * g for m, g in r), "did not divide"),
    (lambda p, r, lr: _weighted_grad(r), "averaged gradient"),
    (lambda p, r, lr: p + lr * _weighted_grad(r), "uphill"),
    (lambda p, r, lr: p - _weighted_grad(r), "learning rate"),
    (lambda p, r, lr: p[:-1], "shape"),
])
def test_exercise_2_names_the_mistake(answer, hint, capsys):
    assert ch04.exercise_2(answer) is False
    assert_hint(capsys, hint)


# Exercise 3: Amdahl's law from a measured compute fraction
def amdahl_speedup(compute_seconds, wall_seconds, n_workers):
    p = compute_seconds / wall_seconds
    return 1 / ((1 - p) + p / n_workers)


def test_exercise_3_accepts_amdahl(capsys):
    assert ch04.exercise_3(amdahl_speedup) is True
    assert capsys.readouterr().out.startswith("Correct.")


@pytest.mark.parametrize("answer, hint", [
    (lambda c, w, K: K, "ideal speed-up"),
    (lambda c, w, K: (1 - c / w) + c / w * K, "Gustafson"),
    (lambda c, w, K: 1 / ((1 - c / w) + c / w * K), "not p * K"),
    (lambda c, w, K: (1 - c / w) + c / w / K, "reciprocal"),
    (lambda c, w, K: 1 / (c / w + (1 - c / w) / K), "serial fraction"),
    (lambda c, w, K: None, "should be"),
])
def test_exercise_3_names_the_mistake(answer, hint, capsys):
    assert ch04.exercise_3(answer) is False
    assert_hint(capsys, hint)


# Exercise 4: one step of reduce-scatter
def reduce_scatter_step(buffers, step, *, add=True, direction=1, sign=-1):
    K = len(buffers)
    chunks = np.array_split(np.arange(buffers.shape[1]), K)
    result = buffers.copy()
    for k in range(K):
        chunk = chunks[(k + sign * step) % K]
        target = (k + direction) % K
        result[target, chunk] = (result[target, chunk] if add else 0) + buffers[k, chunk]
    return result


def test_exercise_4_accepts_one_step(capsys):
    assert ch04.exercise_4(reduce_scatter_step) is True
    assert capsys.readouterr().out.startswith("Correct.")


def test_exercise_4_accepts_an_in_place_update(capsys):
    def in_place(buffers, step):
        K = len(buffers)
        chunks = np.array_split(np.arange(buffers.shape[1]), K)
        for k in range(K):  # safe: in one step every peer sends a different chunk
            buffers[(k + 1) % K, chunks[(k - step) % K]] += buffers[k, chunks[(k - step) % K]]
        return buffers

    assert ch04.exercise_4(in_place) is True
    assert capsys.readouterr().out.startswith("Correct.")


@pytest.mark.parametrize("answer, hint", [
    (lambda b, s: reduce_scatter_step(b, s, add=False), "overwriting"),
    (lambda b, s: reduce_scatter_step(b, s, direction=-1), "right neighbour"),
    (lambda b, s: reduce_scatter_step(b, s, sign=1), "not (k + step)"),
    (lambda b, s: b, "nothing changed"),
    (lambda b, s: b[:, :-1], "shape"),
])
def test_exercise_4_names_the_mistake(answer, hint, capsys):
    assert ch04.exercise_4(answer) is False
    assert_hint(capsys, hint)


# Exercise 5: which defect does each symptom reveal?
RIGHT = {"A": 1, "B": 7, "C": 6, "D": 4, "E": 2}


def test_exercise_5_accepts_the_right_numbers(capsys):
    assert ch04.exercise_5(dict(RIGHT)) is True
    assert capsys.readouterr().out.startswith("Correct.")


def test_exercise_5_accepts_numbers_as_strings(capsys):
    assert ch04.exercise_5({key: str(value) for key, value in RIGHT.items()}) is True


@pytest.mark.parametrize("answer, hint", [
    ({**RIGHT, "A": 2}, "A is not defect 2"),
    ({**RIGHT, "B": 1}, "freshly started child"),
    ({**RIGHT, "C": None}, "Fill in a number"),
    ({**RIGHT, "D": "four"}, "give the defect's number"),
    (None, "Fill in a number"),
])
def test_exercise_5_names_the_mistake(answer, hint, capsys):
    assert ch04.exercise_5(answer) is False
    assert_hint(capsys, hint)


@pytest.mark.parametrize("exercise", [ch04.exercise_1, ch04.exercise_2, ch04.exercise_3, ch04.exercise_4])
def test_an_exception_in_the_answer_becomes_a_hint(exercise, capsys):
    assert exercise(raises) is False
    assert "raised ValueError: boom" in capsys.readouterr().out
