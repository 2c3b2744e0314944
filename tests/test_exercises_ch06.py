import math

import numpy as np
import pytest
from exercise_helpers import assert_hint, raises

import flcourse as fl
from flcourse.exercises import ch06
from flcourse.federated import make_clients


# Exercise 1: FedProx's proximal step
def prox_step(w, w_t, grad, lr, mu):
    return w - lr * (grad + mu * (w - w_t))


def test_exercise_1_accepts_the_proximal_step(capsys):
    assert ch06.exercise_1(prox_step) is True
    assert capsys.readouterr().out.startswith("Correct.")


def in_place(w, w_t, grad, lr, mu):
    w_t += 0.0 * w_t + 1.0  # corrupts the server's vector
    return prox_step(w, w_t - 1.0, grad, lr, mu)


class Remembers:
    """Right on the first three calls (the random vectors), then keeps the w_t it saw last."""

    def __init__(self):
        self.calls, self.kept = 0, None

    def __call__(self, w, w_t, grad, lr, mu):
        self.calls += 1
        if self.calls <= 3:
            self.kept = w_t
            return prox_step(w, w_t, grad, lr, mu)
        return prox_step(w, np.resize(self.kept, w.shape), grad, lr, mu)


@pytest.mark.parametrize("answer, hint", [
    (lambda w, w_t, g, lr, mu: w - lr * (g - mu * (w - w_t)), "you subtracted it"),
    (lambda w, w_t, g, lr, mu: w - lr * (g + mu / 2 * (w - w_t)), "the 1/2 cancels"),
    (lambda w, w_t, g, lr, mu: w - lr * g - mu * (w - w_t), "multiply lr by the whole"),
    (lambda w, w_t, g, lr, mu: w - lr * (g + mu * w), "pulls w towards 0"),
    (lambda w, w_t, g, lr, mu: w - lr * g, "does not depend on mu"),
    (lambda w, w_t, g, lr, mu: (w - lr * (g + mu * (w - w_t)))[:-1], "return an array of shape (7,)"),
    (in_place, "changed w_t or grad in place"),
])
def test_exercise_1_names_the_mistake(answer, hint, capsys):
    assert ch06.exercise_1(answer) is False
    assert_hint(capsys, hint)


def test_exercise_1_repeats_the_step_on_a_client(capsys):
    assert ch06.exercise_1(Remembers()) is False
    assert_hint(capsys, "four steps of it on a client's data differ")


# Exercise 2: SCAFFOLD's control variate, option II
def n_steps(n, batch_size, epochs):
    return epochs * (1 if batch_size is None else math.ceil(n / batch_size))


def control_update(c_i, c, x, y, n, batch_size, epochs, lr):
    return c_i - c + (x - y) / (n_steps(n, batch_size, epochs) * lr)


def test_exercise_2_accepts_option_two(capsys):
    assert ch06.exercise_2(control_update) is True
    assert capsys.readouterr().out.startswith("Correct.")


def with_steps(steps_of):
    return lambda c_i, c, x, y, n, B, E, lr: c_i - c + (x - y) / (steps_of(n, B, E) * lr)


@pytest.mark.parametrize("answer, hint", [
    (with_steps(lambda n, B, E: E * (n // B)), "not n // B"),
    (with_steps(lambda n, B, E: E), "not epochs"),
    (with_steps(lambda n, B, E: math.ceil(n / B)), "times local_epochs"),
    (with_steps(lambda n, B, E: E * n / B), "an integer"),
    (lambda c_i, c, x, y, n, B, E, lr: c_i - c + (y - x) / (n_steps(n, B, E) * lr), "not y - x"),
    (lambda c_i, c, x, y, n, B, E, lr: c_i + (x - y) / (n_steps(n, B, E) * lr), "subtracts the server's c"),
    (lambda c_i, c, x, y, n, B, E, lr: -c + (x - y) / (n_steps(n, B, E) * lr), "start from the client's own c_i"),
    (lambda c_i, c, x, y, n, B, E, lr: -c_i - c + (x - y) / (n_steps(n, B, E) * lr), "instead of starting from it"),
    (lambda c_i, c, x, y, n, B, E, lr: c_i - c + (x - y) / n_steps(n, B, E), "divide by K lr"),
    (lambda c_i, c, x, y, n, B, E, lr: c_i, "expected c_i - c + (x - y) / (K lr) with K = 6"),
])
def test_exercise_2_names_the_mistake(answer, hint, capsys):
    assert ch06.exercise_2(answer) is False
    assert_hint(capsys, hint)


def test_exercise_2_explains_a_batch_size_of_none(capsys):
    answer = lambda c_i, c, x, y, n, B, E, lr: c_i - c + (x - y) / (E * math.ceil(n / B) * lr)  # noqa: E731
    assert ch06.exercise_2(answer) is False
    assert_hint(capsys, "batch_size None means the whole local dataset")


# Exercise 3: SCAFFOLD's server update
def scaffold_aggregate(x, c, deltas, control_deltas, n_clients, server_lr):
    return (x + server_lr * np.mean(deltas, axis=0),
            c + len(deltas) / n_clients * np.mean(control_deltas, axis=0))


def test_exercise_3_accepts_the_server_update(capsys):
    assert ch06.exercise_3(scaffold_aggregate) is True
    assert capsys.readouterr().out.startswith("Correct.")


def test_exercise_3_accepts_the_sum_over_all_clients(capsys):
    """c + sum(Δc_i) / N is the same update, written the other way."""
    def summed(x, c, deltas, control_deltas, n_clients, server_lr):
        return scaffold_aggregate(x, c, deltas, control_deltas, n_clients, server_lr)[0], \
            c + np.sum(control_deltas, axis=0) / n_clients
    assert ch06.exercise_3(summed) is True


def replace_c(c_of):
    return lambda x, c, d, dc, N, lr: (x + lr * d.mean(axis=0), c_of(c, d, dc, N, lr))


def replace_x(x_of):
    return lambda x, c, d, dc, N, lr: (x_of(x, d, dc, lr), c + len(d) / N * dc.mean(axis=0))


@pytest.mark.parametrize("answer, hint", [
    (replace_c(lambda c, d, dc, N, lr: c + dc.mean(axis=0)), "c moves by |S|/N"),
    (replace_c(lambda c, d, dc, N, lr: len(d) / N * dc.mean(axis=0)), "c is updated, not replaced"),
    (replace_c(lambda c, d, dc, N, lr: c + N / len(d) * dc.mean(axis=0)), "not N/|S|"),
    (replace_c(lambda c, d, dc, N, lr: c + lr * len(d) / N * dc.mean(axis=0)), "c is not scaled by server_lr"),
    (replace_c(lambda c, d, dc, N, lr: c), "c_new should be"),
    (replace_x(lambda x, d, dc, lr: x + d.mean(axis=0)), "scale the mean change by server_lr"),
    (replace_x(lambda x, d, dc, lr: x + lr * d.sum(axis=0)), "you added them up"),
    (replace_x(lambda x, d, dc, lr: lr * d.mean(axis=0)), "the changes are relative to x"),
    (replace_x(lambda x, d, dc, lr: x + lr * dc.mean(axis=0)), "not with the Δc_i"),
    (lambda x, c, d, dc, N, lr: x + lr * d.mean(axis=0), "Return a pair"),
])
def test_exercise_3_names_the_mistake(answer, hint, capsys):
    assert ch06.exercise_3(answer) is False
    assert_hint(capsys, hint)


# Exercise 4: the relative drift of a partition
DATA = fl.load_digits(seed=0)
MODEL = fl.SoftmaxRegression(n_features=DATA.n_features, n_classes=DATA.n_classes)


def first_updates(spec):
    clients = make_clients(MODEL, DATA.X_train, DATA.y_train, fl.make_partition(spec, DATA.y_train, 20, seed=0))
    w_0 = MODEL.init_params()
    deltas = np.array([client.fit(w_0, ch06.DRIFT_CONFIG)[0] - w_0 for client in clients])
    sizes = np.array([client.n_samples for client in clients])
    return deltas, sizes / sizes.sum()


def relative_drift(spec):
    deltas, p = first_updates(spec)
    mean = p @ deltas
    return p @ np.sum((deltas - mean) ** 2, axis=1) / (mean @ mean)


def test_exercise_4_accepts_the_relative_drift(capsys):
    assert ch06.exercise_4(relative_drift) is True
    out = capsys.readouterr().out
    assert out.startswith("Correct.") and "pathological split" in out


def unweighted(spec):
    deltas, _ = first_updates(spec)
    mean = deltas.mean(axis=0)
    return np.mean(np.sum((deltas - mean) ** 2, axis=1)) / (mean @ mean)


def absolute(spec):
    deltas, p = first_updates(spec)
    return p @ np.sum((deltas - p @ deltas) ** 2, axis=1)


def not_squared(spec):
    deltas, p = first_updates(spec)
    mean = p @ deltas
    return p @ np.linalg.norm(deltas - mean, axis=1) / (mean @ mean)


def from_zero(spec):
    deltas, p = first_updates(spec)
    mean = p @ deltas
    return p @ np.sum(deltas ** 2, axis=1) / (mean @ mean)


def by_norm(spec):
    deltas, p = first_updates(spec)
    mean = p @ deltas
    return p @ np.sum((deltas - mean) ** 2, axis=1) / np.linalg.norm(mean)


@pytest.mark.parametrize("answer, hint", [
    (absolute, "that is D itself"),
    (unweighted, "you used plain means"),
    (not_squared, "you did not square them"),
    (from_zero, "not to zero"),
    (by_norm, "not by its norm"),
    (lambda spec: 1.0, "is not the relative drift"),
    (lambda spec: np.ones(3), "is not the relative drift"),
])
def test_exercise_4_names_the_mistake(answer, hint, capsys):
    assert ch06.exercise_4(answer) is False
    assert_hint(capsys, hint)


def test_exercise_4_reference_grows_with_skew():
    """What the chapter's prose says: the pathological split drifts far more than IID."""
    assert ch06.reference_relative_drift("iid") < ch06.reference_relative_drift("dirichlet:0.5") \
        < ch06.reference_relative_drift("shards:2")


@pytest.mark.parametrize("exercise", [ch06.exercise_1, ch06.exercise_2, ch06.exercise_3, ch06.exercise_4])
def test_an_exception_in_the_answer_becomes_a_hint(exercise, capsys):
    assert exercise(raises) is False
    assert "raised ValueError: boom" in capsys.readouterr().out
