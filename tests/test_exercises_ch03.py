import numpy as np
import pytest
from exercise_helpers import assert_hint, raises

import flcourse as fl
from flcourse.exercises import ch03


# Exercise 1: the weighted average of shard gradients
def shard_gradients(model, params, X, y, partition):
    return [model.grad(params, X[part], y[part]) for part in partition], [len(p) for p in partition]


def weighted_gradient(model, params, X, y, partition):
    grads, sizes = shard_gradients(model, params, X, y, partition)
    return fl.weighted_average(grads, sizes)


def test_exercise_1_accepts_weighted_average(capsys):
    assert ch03.exercise_1(weighted_gradient) is True
    assert capsys.readouterr().out.startswith("Correct.")


@pytest.mark.parametrize("combine, hint", [
    (lambda g, n: np.mean(g, axis=0), "plain mean"),
    (lambda g, n: np.sum(g, axis=0), "sum of the g_k"),
    (lambda g, n: np.array(n) @ np.array(g), "did not divide by N"),
    (lambda g, n: np.mean(g, axis=0)[:-1], "shape"),
])
def test_exercise_1_names_the_mistake(combine, hint, capsys):
    def answer(model, params, X, y, partition):
        return combine(*shard_gradients(model, params, X, y, partition))

    assert ch03.exercise_1(answer) is False
    assert_hint(capsys, hint)


@pytest.mark.parametrize("answer", [
    lambda model, params, X, y, partition: model.grad(params, X, y),
    lambda model, params, X, y, partition: model.loss_and_grad(params, X, y)[1],
    lambda model, params, X, y, partition: model.loss_grad(params, X, y)[1],
])
def test_exercise_1_refuses_the_full_data_gradient(answer, capsys):
    assert ch03.exercise_1(answer) is False
    out = capsys.readouterr().out
    assert out.startswith("Not yet. You asked the model for the gradient on all N = 1347")
    assert "raised" not in out


def test_exercise_1_turns_an_exception_into_a_hint(capsys):
    assert ch03.exercise_1(raises) is False
    assert "raised ValueError: boom" in capsys.readouterr().out


# Exercises 2 and 3: the two-client quadratic
def fixed_points(a, c, p, lr, local_steps):
    weight = p * (1 - (1 - lr * a) ** local_steps)
    return np.sum(p * a * c) / np.sum(p * a), np.sum(weight * c) / np.sum(weight)


def test_exercise_2_accepts_closed_form(capsys):
    assert ch03.exercise_2(fixed_points) is True
    assert capsys.readouterr().out.startswith("Correct.")


@pytest.mark.parametrize("answer, hint", [
    (lambda a, c, p, lr, E: (np.sum(p * c), fixed_points(a, c, p, lr, E)[1]), "curvature counts"),
    (lambda a, c, p, lr, E: (fixed_points(a, c, p, lr, E)[0],) * 2, "r_k = (1 - lr * a_k) ** E"),
    (lambda a, c, p, lr, E: (fixed_points(a, c, p, lr, E)[0], np.sum(p * c)), "E -> infinity"),
    (lambda a, c, p, lr, E: fixed_points(a, c, p, lr, E)[1], "pair"),
    (lambda a, c, p, lr, E: fixed_points(a, c, np.ones_like(p), lr, E), "client weights p_k"),
])
def test_exercise_2_names_the_mistake(answer, hint, capsys):
    assert ch03.exercise_2(answer) is False
    assert_hint(capsys, hint)


def test_exercise_2_turns_an_exception_into_a_hint(capsys):
    assert ch03.exercise_2(raises) is False
    assert "raised ValueError: boom" in capsys.readouterr().out


def simulate(a, c, p, lr, local_steps, n_rounds=2000):
    model = fl.LinearRegression(n_features=1, fit_intercept=False)
    theta = np.zeros(1)
    for _ in range(n_rounds):
        with np.errstate(divide="ignore", invalid="ignore"):
            local = [fl.gradient_descent(model, theta, [[np.sqrt(a_k)]], [np.sqrt(a_k) * c_k],
                                         lr=lr, n_steps=local_steps)[0] for a_k, c_k in zip(a, c)]
        theta, previous = fl.weighted_average(local, p), theta
        if abs(theta[0] - previous[0]) <= 1e-14:
            break
    return theta[0]


def test_exercise_3_accepts_a_simulation(capsys):
    assert ch03.exercise_3(simulate) is True
    assert capsys.readouterr().out.startswith("Correct.")


def test_exercise_3_wants_a_simulation_not_the_closed_form(capsys):
    assert ch03.exercise_3(lambda a, c, p, lr, E: fixed_points(a, c, p, lr, E)[1]) is False
    out = capsys.readouterr().out
    assert out.startswith("Not yet.") and "did not run FedAvg" in out
    assert fl.gradient_descent is fl.optim.gradient_descent  # restored after the check
    assert fl.gradient_descent.__module__ == "flcourse.optim.sgd"


def closed_form_with_dummy_calls(a, c, p, lr, E):
    """The closed form, dressed up with calls to gradient_descent that simulate nothing."""
    model = fl.LinearRegression(n_features=1, fit_intercept=False)
    for _ in a:
        fl.gradient_descent(model, np.zeros(1), np.ones((1, 1)), np.zeros(1), lr=lr, n_steps=E)
    return fixed_points(a, c, p, lr, E)[1]


def test_exercise_3_refuses_the_closed_form_behind_dummy_calls(capsys):
    assert ch03.exercise_3(closed_form_with_dummy_calls) is False
    assert "rather than from the limit: simulate the rounds" in capsys.readouterr().out


def test_exercise_3_restores_gradient_descent_after_an_exception():
    ch03.exercise_3(raises)
    assert fl.gradient_descent is fl.optim.gradient_descent
    assert fl.gradient_descent.__module__ == "flcourse.optim.sgd"


@pytest.mark.parametrize("answer, hint", [
    (lambda a, c, p, lr, E: simulate(a, c, p, lr, 1), "you got theta_star"),
    (lambda a, c, p, lr, E: simulate(a, c, p, lr, E, n_rounds=10), "not converged"),
    (lambda a, c, p, lr, E: [1.0, 2.0], "Return one number"),
    (lambda a, c, p, lr, E: None, "Return one number"),
])
def test_exercise_3_names_the_mistake(answer, hint, capsys):
    assert ch03.exercise_3(answer) is False
    assert_hint(capsys, hint)


def test_exercise_3_turns_an_exception_into_a_hint(capsys):
    assert ch03.exercise_3(raises) is False
    assert "raised ValueError: boom" in capsys.readouterr().out


# Exercise 4: the article's server, repaired
def test_exercise_4_accepts_weighted_average(capsys):
    assert ch03.exercise_4(lambda params, n: np.average(params, axis=0, weights=n)) is True
    assert capsys.readouterr().out.startswith("Correct.")


@pytest.mark.parametrize("answer, hint", [
    (lambda params, n: np.sum(params, axis=0), "as in the article"),
    (lambda params, n: np.mean(params, axis=0), "plain mean"),
    (lambda params, n: np.array(n) @ np.array(params), "did not divide"),
    (lambda params, n: params[0], "Return sum_k n_k"),
])
def test_exercise_4_names_the_mistake(answer, hint, capsys):
    assert ch03.exercise_4(answer) is False
    assert_hint(capsys, hint)


def test_exercise_4_turns_an_exception_into_a_hint(capsys):
    assert ch03.exercise_4(raises) is False
    assert "raised ValueError: boom" in capsys.readouterr().out
