"""Self-checks of chapter 01: right answers pass, typical mistakes get their specific hint."""
import numpy as np
import pytest

import flcourse as fl
from flcourse.exercises import ch01


def linreg_grad(params, X, y):
    residual = X @ params[:-1] + params[-1] - y
    return np.append(X.T @ residual, residual.sum()) / len(y)


def minibatch_indices(n_samples, batch_size, n_epochs, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n_epochs):
        order = rng.permutation(n_samples)
        for start in range(0, n_samples, batch_size):
            yield order[start:start + batch_size]


def largest_monotone_lr(model, X, y, lrs, n_steps):
    def monotone(lr):
        losses = fl.gradient_descent(model, model.init_params(), X, y, lr=lr, n_steps=n_steps)[1]["train_loss"]
        return np.all(np.diff(losses) < 0)
    return max(lr for lr in lrs if monotone(lr))


def central_difference(f, x, eps):
    grad = np.empty_like(x)
    for j in range(x.size):
        step = np.zeros_like(x)
        step[j] = eps
        grad[j] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


def fails(*args):
    raise RuntimeError("boom")


@pytest.mark.parametrize("check, answer", [
    (ch01.exercise_1, linreg_grad),
    (ch01.exercise_2, minibatch_indices),
    (ch01.exercise_3, largest_monotone_lr),
    (ch01.exercise_4, central_difference),
])
def test_correct_answer_passes(check, answer, capsys):
    assert check(answer) is True
    assert capsys.readouterr().out.startswith("Correct.")


@pytest.mark.parametrize("check", [ch01.exercise_1, ch01.exercise_2, ch01.exercise_3, ch01.exercise_4])
def test_raising_function_gets_a_hint_not_a_traceback(check, capsys):
    assert check(fails) is False
    assert "raised RuntimeError: boom" in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [
    (lambda p, X, y: 2 * linreg_grad(p, X, y), "factor of 2"),
    (lambda p, X, y: -linreg_grad(p, X, y), "sign is flipped"),
    (lambda p, X, y: len(y) * linreg_grad(p, X, y), "divide by n_samples"),
    (lambda p, X, y: linreg_grad(p, X, y)[:-1], "forget the bias"),
    (lambda p, X, y: linreg_grad(np.append(p[:-1], 0.0), X, y), "leaves out the bias"),
    (lambda p, X, y: linreg_grad(p, X, y) * np.append(np.ones(X.shape[1]), 0.0), "bias entry is not"),
])
def test_exercise_1_hints(answer, hint, capsys):
    assert ch01.exercise_1(answer) is False
    assert hint in capsys.readouterr().out


def same_order_every_epoch(n_samples, batch_size, n_epochs, seed):
    for _ in range(n_epochs):
        yield from minibatch_indices(n_samples, batch_size, 1, seed)


def drop_last(n_samples, batch_size, n_epochs, seed):
    return [b for b in minibatch_indices(n_samples, batch_size, n_epochs, seed) if len(b) == batch_size]


def not_shuffled(n_samples, batch_size, n_epochs, seed):
    return [np.arange(n_samples)[s:s + batch_size] for _ in range(n_epochs)
            for s in range(0, n_samples, batch_size)]


def independent_batches(n_samples, batch_size, n_epochs, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(n_samples, size=len(b)) for b in minibatch_indices(n_samples, batch_size, n_epochs, 0)]


@pytest.mark.parametrize("answer, hint", [
    (same_order_every_epoch, "every epoch has the same order"),
    (drop_last, "Keep the last, smaller batch"),
    (not_shuffled, "not shuffled"),
    (independent_batches, "exactly once"),
    (lambda n, b, e, s: minibatch_indices(n, b, e, s + 1), "order differs"),
])
def test_exercise_2_hints(answer, hint, capsys):
    assert ch01.exercise_2(answer) is False
    assert hint in capsys.readouterr().out


def only_last_loss(model, X, y, lrs, n_steps):
    def lower(lr):
        losses = fl.gradient_descent(model, model.init_params(), X, y, lr=lr, n_steps=n_steps)[1]["train_loss"]
        return losses[-1] < losses[0]
    return max(lr for lr in lrs if lower(lr))


def non_increasing(model, X, y, lrs, n_steps):
    def monotone(lr):
        losses = fl.gradient_descent(model, model.init_params(), X, y, lr=lr, n_steps=n_steps)[1]["train_loss"]
        return np.all(np.diff(losses) <= 0)
    return max(lr for lr in lrs if monotone(lr))


@pytest.mark.parametrize("answer, hint", [
    (only_last_loss, "loss does not go down at step"),
    (non_increasing, "count a loss that stays the same as not going down"),
    (lambda model, X, y, lrs, n_steps: min(lrs), "return the largest such value"),
    (lambda model, X, y, lrs, n_steps: 0.123, "return one of the values in lrs"),
])
def test_exercise_3_hints(answer, hint, capsys):
    assert ch01.exercise_3(answer) is False
    assert hint in capsys.readouterr().out


def forward_difference(f, x, eps):
    return np.array([(f(x + eps * e) - f(x)) / eps for e in np.eye(x.size)])


def in_place(f, x, eps):
    grad = central_difference(f, x.copy(), eps)
    x += 1.0
    return grad


@pytest.mark.parametrize("answer, hint", [
    (forward_difference, "one-sided difference"),
    (lambda f, x, eps: 2 * central_difference(f, x, eps), "divides by 2 * eps"),
    (in_place, "changed x in place"),
    (lambda f, x, eps: central_difference(f, x, eps)[:2], "Expected an array of shape"),
    (lambda f, x, eps: central_difference(f, x, 1e-4), "your values are the exact gradient"),
    (lambda f, x, eps: central_difference(f, x, 0.25), "use the eps argument"),
])
def test_exercise_4_hints(answer, hint, capsys):
    assert ch01.exercise_4(answer) is False
    assert hint in capsys.readouterr().out


def test_exercise_4_rejects_an_answer_that_ignores_eps(capsys):
    # Prepare: a correct central difference that always uses its own step
    def fixed_step(f, x, eps):
        return central_difference(f, x, 1e-4)
    # Execute
    ok = ch01.exercise_4(fixed_step)
    # Assert
    assert ok is False
    assert "use the eps argument" in capsys.readouterr().out


@pytest.mark.parametrize("check", [ch01.exercise_1, ch01.exercise_2, ch01.exercise_3, ch01.exercise_4])
def test_not_a_function_gets_a_hint(check, capsys):
    assert check(None) is False
    assert "Pass a function" in capsys.readouterr().out
