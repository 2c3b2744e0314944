"""Deep leakage from gradients (DLG, iDLG): the matching objective's gradient against finite
differences, digits images recovered from the gradient of one sample and of batches of 1..8 by
an MLP at initialisation, what the bounds change, the labels, and the errors."""

import numpy as np
import pytest

from flcourse import MLP, LinearRegression, Model, SoftmaxRegression, check_gradient, load_digits
from flcourse.privacy.dlg import (gradient_matching_loss, matched_reconstruction_error, reconstruct_from_gradient,
                                  recover_labels_from_gradient)
from flcourse.privacy.leakage import batch_leakage_error, reconstruction_error

NET = MLP(n_features=64, n_hidden=32, n_classes=10)
PARAMS = NET.init_params(seed=0)
SOFTMAX = SoftmaxRegression(n_features=64, n_classes=10)
BOX = (0.0, 1.0)


@pytest.fixture(scope="module")
def digits():
    data = load_digits(seed=0)
    return data.X_train, data.y_train


class MatchingObjective(Model):
    """f(X') of :func:`gradient_matching_loss` as a Model whose params are X'.ravel(), for
    :func:`check_gradient` (its own X and y are placeholders)."""

    n_classes = None
    n_features = 1
    l2 = 0.0

    def __init__(self, model, params, grad, y):
        self.model, self.params, self.grad_star, self.y = model, params, grad, y
        self.n_params = len(y) * model.n_features

    def loss_grad(self, params, X, y, need_grad=True):
        loss, grad_X = gradient_matching_loss(self.model, self.params, self.grad_star,
                                              params.reshape(len(self.y), -1), self.y)
        return loss, grad_X.ravel() if need_grad else None


# --- the objective's gradient ---------------------------------------------------------------

@pytest.mark.parametrize("model", [NET, MLP(n_features=64, n_hidden=16, n_classes=10, l2=0.3), SOFTMAX],
                         ids=["mlp", "mlp-l2", "softmax"])
@pytest.mark.parametrize("n_samples", [1, 3])
def test_matching_gradient_agrees_with_finite_differences(digits, model, n_samples):
    X, y = digits
    rng = np.random.default_rng(n_samples)
    params = rng.normal(scale=0.5, size=model.n_params)
    grad = model.grad(params, X[:n_samples], y[:n_samples])
    X_prime, y_prime = rng.uniform(size=(n_samples, 64)), rng.integers(0, 10, n_samples)

    error = check_gradient(MatchingObjective(model, params, grad, y_prime), X_prime.ravel(), np.zeros((1, 1)), [0.0])

    assert error < 1e-7


def test_matching_loss_is_zero_at_the_true_batch_penalty_included(digits):
    X, y = digits
    model = MLP(n_features=64, n_hidden=16, n_classes=10, l2=0.3)
    params = model.init_params(seed=1)
    grad = model.grad(params, X[:3], y[:3])

    loss, grad_X = gradient_matching_loss(model, params, grad, X[:3], y[:3])

    assert loss < 1e-30 and np.abs(grad_X).max() < 1e-15  # measured: rounding of two summation orders


# --- one sample -----------------------------------------------------------------------------

def test_one_image_and_its_label_come_back_from_its_gradient(digits):
    X, y = digits
    grad = NET.grad(PARAMS, X[:1], y[:1])

    X_hat, labels, info = reconstruct_from_gradient(NET, PARAMS, grad)

    assert labels.tolist() == [y[0]]  # iDLG: the only negative output-bias entry
    assert reconstruction_error(X_hat[0], X[:1]) < 1e-14  # measured: 1.5e-16
    assert info["message"] == "matched to rounding" and info["n_iter"] < 100  # measured: 47


def test_the_reconstruction_has_the_observed_gradient_by_the_models_own_backward_pass(digits):
    X, y = digits
    grad = NET.grad(PARAMS, X[:2], y[:2])  # classes 9 and 7

    X_hat, labels, info = reconstruct_from_gradient(NET, PARAMS, grad, 2, seed=3)

    np.testing.assert_allclose(NET.grad(PARAMS, X_hat, labels), grad, rtol=0, atol=1e-14)
    assert np.sqrt(2 * info["loss"]) / np.linalg.norm(grad) == info["relative_mismatch"]


def test_softmax_regression_gives_its_image_too_even_where_the_match_is_exact(digits):
    X, y = digits
    params = np.random.default_rng(0).normal(scale=0.1, size=SOFTMAX.n_params)
    grad = SOFTMAX.grad(params, X[:1], y[:1])

    X_hat, labels, info = reconstruct_from_gradient(SOFTMAX, params, grad)

    assert labels.tolist() == [y[0]] and reconstruction_error(X_hat[0], X[:1]) < 1e-14  # measured: 9.0e-17
    assert np.isfinite(info["loss"])  # f converges superlinearly: stopped at rounding, before it underflows


# --- batches --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def batch_sweep(digits):
    """DLG with bounds (0, 1) on the first B training images, B = 1..8 (labels given: these
    batches repeat classes): {B: (errors, info, X_hat)}."""
    X, y = digits
    sweep = {}
    for n in range(1, 9):
        grad = NET.grad(PARAMS, X[:n], y[:n])
        X_hat, _, info = reconstruct_from_gradient(NET, PARAMS, grad, n, labels=y[:n], bounds=BOX)
        sweep[n] = matched_reconstruction_error(X_hat, X[:n])[0], info, X_hat
    return sweep


def test_batches_of_1_to_8_come_back_to_rounding_with_more_iterations_as_they_grow(batch_sweep):
    errors = {n: float(err.max()) for n, (err, _, _) in batch_sweep.items()}
    n_iter = {n: info["n_iter"] for n, (_, info, _) in batch_sweep.items()}
    # measured max errors: 1.9e-16 3.1e-16 4.6e-15 1.0e-14 1.4e-14 1.4e-14 1.8e-14 1.8e-14
    # iterations:          47 61 416 735 756 793 804 870

    assert errors[1] < 1e-15
    assert max(errors.values()) < 1e-12
    assert errors[8] > 10 * errors[1]  # still rounding, but the rounding of a harder problem
    assert n_iter[8] > 5 * n_iter[1]


def test_dlg_separates_the_batch_that_the_closed_form_mixes(digits, batch_sweep):
    X, y = digits

    closed_form = batch_leakage_error(NET, PARAMS, X[:8], y[:8])  # nearest input to dW[:, i] / db_i

    assert closed_form > 0.1  # measured: 0.45
    assert batch_sweep[8][0].max() < 1e-12
    np.testing.assert_allclose(NET.grad(PARAMS, batch_sweep[8][2], y[:8]), NET.grad(PARAMS, X[:8], y[:8]),
                               rtol=0, atol=1e-14)


def test_without_bounds_a_batch_of_4_stalls_at_a_local_minimum(digits, batch_sweep):
    X, y = digits
    grad = NET.grad(PARAMS, X[:4], y[:4])

    X_hat, _, info = reconstruct_from_gradient(NET, PARAMS, grad, 4, labels=y[:4])

    errors = matched_reconstruction_error(X_hat, X[:4])[0]
    assert errors.max() > 0.1 and info["relative_mismatch"] > 1e-3  # measured: 0.19, 8.8e-3
    assert batch_sweep[4][0].max() < 1e-12  # with bounds (0, 1): 1.0e-14


# --- labels ---------------------------------------------------------------------------------

def test_the_label_of_one_sample_of_every_class_is_recovered(digits):
    X, y = digits
    firsts = [int(np.flatnonzero(y == c)[0]) for c in range(10)]

    labels = [recover_labels_from_gradient(NET, NET.grad(PARAMS, X[k:k + 1], y[k:k + 1]))[0] for k in firsts]

    assert labels == list(range(10))


def test_a_batch_of_distinct_classes_gives_its_labels_and_then_its_images(digits):
    X, y = digits
    rows = [0, 1, 4]  # classes 9, 7, 6
    grad = NET.grad(PARAMS, X[rows], y[rows])

    X_hat, labels, _ = reconstruct_from_gradient(NET, PARAMS, grad, 3)

    assert labels.tolist() == [6, 7, 9]  # in increasing order: a batch has none
    errors, order = matched_reconstruction_error(X_hat, X[rows])
    assert errors.max() < 1e-14 and order.tolist() == [2, 1, 0]  # measured: 3.9e-16


def test_a_batch_that_repeats_a_class_asks_for_its_labels(digits):
    X, y = digits
    grad = NET.grad(PARAMS, X[:3], y[:3])  # classes 9, 7, 9

    with pytest.raises(ValueError, match=r"one negative output-bias entry per sample \(3\).*Got 2, at "
                                         r"classes \[7, 9\].*pass the labels"):
        reconstruct_from_gradient(NET, PARAMS, grad, 3)


# --- matching -------------------------------------------------------------------------------

def test_matching_pairs_one_to_one_where_the_nearest_reconstruction_would_repeat():
    X = np.array([[1.0, 0.05], [0.9, 0.0]])
    X_hat = np.array([[1.0, 0.0], [0.0, 1.0]])  # X_hat[0] is the nearest to both inputs

    errors, order = matched_reconstruction_error(X_hat, X)

    assert order.tolist() == [1, 0]  # errors summing to 1.49, against 1.54 paired in place
    np.testing.assert_allclose(errors, [reconstruction_error(X_hat[1], X[:1]), reconstruction_error(X_hat[0], X[1:])])


def test_matching_undoes_a_permutation(digits):
    X = digits[0][:6]
    perm = np.array([3, 0, 5, 1, 4, 2])

    errors, order = matched_reconstruction_error(X[perm], X)

    assert order.tolist() == np.argsort(perm).tolist() and errors.tolist() == [0.0] * 6


# --- errors ---------------------------------------------------------------------------------

def test_bad_arguments_are_named_with_what_was_expected(digits):
    X, y = digits
    grad = NET.grad(PARAMS, X[:1], y[:1])
    cases = [
        (ValueError, r"'grad' parameter of reconstruct_from_gradient must be a flat vector of shape \(2410,\). "
                     r"Got an array of shape \(2409,\)", dict(grad=grad[:-1])),
        (ValueError, r"'grad' parameter of reconstruct_from_gradient must hold finite numbers only. Got 1 non-",
         dict(grad=np.where(np.arange(grad.size) == 7, np.nan, grad))),
        (ValueError, r"'grad' parameter of reconstruct_from_gradient must have a nonzero entry. Got all zeros",
         dict(grad=np.zeros_like(grad), labels=[0])),
        (ValueError, r"'n_samples' parameter of reconstruct_from_gradient must be an int in \[1, inf\). Got 0",
         dict(n_samples=0)),
        (ValueError, r"'labels' parameter of reconstruct_from_gradient must have one entry per sample "
                     r"\(n_samples=1\). Got 2", dict(labels=[1, 2])),
        (ValueError, r"'labels' parameter of reconstruct_from_gradient must hold labels in \[0, 9\]",
         dict(labels=[10])),
        (ValueError, r"'bounds' parameter of reconstruct_from_gradient must be None or a pair \(low, high\)",
         dict(bounds=(1.0, 0.0))),
        (ValueError, r"'max_iter' parameter of reconstruct_from_gradient must be an int in \[1, inf\)",
         dict(max_iter=0)),
    ]
    for error, message, change in cases:
        kwargs = dict(model=NET, params=PARAMS, grad=grad) | change
        with pytest.raises(error, match=message):
            reconstruct_from_gradient(**kwargs)


@pytest.mark.parametrize("model, message", [
    (LinearRegression(n_features=64), r"'model' parameter of reconstruct_from_gradient must be an MLP or a "
                                      r"SoftmaxRegression.*Got LinearRegression\(n_features=64"),
    ("mlp", r"'model' parameter of reconstruct_from_gradient must be a flcourse Model instance.*Got 'mlp'"),
])
def test_other_models_are_refused_by_type(model, message):
    with pytest.raises(TypeError, match=message):
        reconstruct_from_gradient(model, np.zeros(65), np.zeros(65))


def test_matched_error_refuses_mismatched_shapes_and_blank_inputs():
    with pytest.raises(ValueError, match=r"'X_hat' parameter of matched_reconstruction_error must have the "
                                         r"shape of X, \(2, 3\).*Got an array of shape \(1, 3\)"):
        matched_reconstruction_error(np.ones((1, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"'X' parameter of matched_reconstruction_error must have no "
                                         r"all-zero row.*Got row 1"):
        matched_reconstruction_error(np.ones((2, 3)), np.array([[1.0, 0, 0], [0, 0, 0]]))
