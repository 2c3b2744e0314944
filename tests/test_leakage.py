"""What a gradient leaks: digits images recovered from one sample's gradient of SoftmaxRegression
and of the MLP's first layer (bit for bit at zero parameters, within one ulp per pixel
elsewhere), the label of every class, the affine mix a batch gives, larger errors with larger
batches and with local steps over several samples (but not over one), and the errors."""
import numpy as np
import pytest

from flcourse import MLP, LinearRegression, SoftmaxRegression, load_digits
from flcourse.models import softmax
from flcourse.privacy.leakage import (batch_leakage_error, first_layer_gradient,
                                      recover_input_from_dense_gradient, recover_input_from_gradient,
                                      recover_label_from_bias_gradient, recover_label_from_gradient,
                                      reconstruction_error, update_leakage_error)

SOFTMAX = SoftmaxRegression(n_features=64, n_classes=10)
NET = MLP(n_features=64, n_hidden=32, n_classes=10)


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.X_train, data.y_train


def random_params(model, seed=0):
    return np.random.default_rng(seed).normal(size=model.n_params)


def recover_each(model, params, X, y):
    """One sample at a time: the recovered image of every row of X."""
    return np.stack([recover_input_from_gradient(model, model.grad(params, X[k:k + 1], y[k:k + 1]))
                     for k in range(len(y))])


# --- one sample: the input ------------------------------------------------------------------

def test_softmax_recovers_every_training_image_bit_for_bit_at_zero_params(digits):
    X, y = digits

    recovered = recover_each(SOFTMAX, SOFTMAX.init_params(), X, y)

    np.testing.assert_array_equal(recovered, X)  # measured: all 1,347 images, every pixel equal


@pytest.mark.parametrize("model, params", [(SOFTMAX, random_params(SOFTMAX)), (NET, NET.init_params(seed=0))],
                         ids=["softmax-random-params", "mlp-first-layer"])
def test_one_sample_gradient_gives_the_image_within_one_ulp_per_pixel(digits, model, params):
    X, y = digits

    recovered = recover_each(model, params, X, y)

    relative = np.linalg.norm(recovered - X, axis=1) / np.linalg.norm(X, axis=1)
    assert relative.max() <= 1e-12  # measured: 1.1e-16 (softmax), 1.0e-16 (MLP)
    assert np.all(np.abs(recovered - X) <= np.spacing(X))  # one rounded product, then one division
    assert np.array_equal(recovered[X == 0], X[X == 0])  # blank pixels: 0 * dz / dz is 0 exactly


def test_every_nonzero_unit_gives_the_image_and_the_default_divides_by_the_largest(digits):
    X, y = digits
    grad_W, grad_b = first_layer_gradient(SOFTMAX, SOFTMAX.grad(random_params(SOFTMAX), X[:1], y[:1]))
    rng = np.random.default_rng(1)
    noisy_W, noisy_b = rng.normal(size=(5, 4)), np.array([0.5, -3.0, 2.0, 0.0])

    per_unit = [recover_input_from_dense_gradient(grad_W, grad_b, unit=i) for i in range(10)]
    default = recover_input_from_dense_gradient(noisy_W, noisy_b)

    assert all(np.all(np.abs(x_hat - X[0]) <= np.spacing(X[0])) for x_hat in per_unit)
    np.testing.assert_array_equal(default, noisy_W[:, 1] / -3.0)  # |-3| is the largest


def test_penalised_model_gives_the_image_once_the_penalty_is_removed(digits):
    X, y = digits
    model = SoftmaxRegression(n_features=64, n_classes=10, l2=0.1)
    params = random_params(model)
    grad = model.grad(params, X[:1], y[:1])

    x_hat = recover_input_from_gradient(model, grad, params=params)

    assert np.linalg.norm(x_hat - X[0]) / np.linalg.norm(X[0]) <= 1e-12  # measured: 2.1e-14 (grad - l2 W cancels)
    with pytest.raises(ValueError, match=r"'params' parameter of first_layer_gradient must be given"):
        recover_input_from_gradient(model, grad)


# --- one sample: the label ------------------------------------------------------------------

@pytest.mark.parametrize("model, params", [(SOFTMAX, SOFTMAX.init_params()), (SOFTMAX, random_params(SOFTMAX)),
                                           (NET, NET.init_params(seed=0))],
                         ids=["softmax-zero", "softmax-random", "mlp"])
def test_label_recovered_for_every_class(digits, model, params):
    X, y = digits
    firsts = [int(np.flatnonzero(y == c)[0]) for c in range(10)]

    grads = [model.grad(params, X[k:k + 1], y[k:k + 1]) for k in firsts]
    labels = [recover_label_from_gradient(model, grad) for grad in grads]

    assert labels == list(range(10))
    assert all(np.count_nonzero(grad[-10:] < 0) == 1 for grad in grads)  # p - onehot(y)


def test_label_and_input_recovered_when_the_softmax_saturates(digits):
    X, y = digits
    params = SOFTMAX.init_params()
    params[640 + y[0]] = 40.0  # p_y = 1 - 9 e^-40 rounds to 1: its bias gradient is 0
    grad = SOFTMAX.grad(params, X[:1], y[:1])
    assert grad[640 + y[0]] == 0.0 and np.all(grad[640:] >= 0)

    assert recover_label_from_gradient(SOFTMAX, grad) == y[0]
    x_hat = recover_input_from_gradient(SOFTMAX, grad)  # divided by the largest p_j ~ e^-40
    assert np.all(np.abs(x_hat - X[0]) <= np.spacing(X[0]))


# --- batches and local steps ----------------------------------------------------------------

def softmax_mix_weights(params, X, y, unit):
    d_logits = softmax(X @ params[:640].reshape(64, 10) + params[640:])
    d_logits[np.arange(len(y)), y] -= 1.0
    return d_logits[:, unit] / d_logits[:, unit].sum()


def test_a_batch_gives_the_documented_affine_mix_of_its_inputs(digits):
    X, y = digits
    params, batch = random_params(SOFTMAX, 3) * 0.1, slice(0, 5)
    grad_W, grad_b = first_layer_gradient(SOFTMAX, SOFTMAX.grad(params, X[batch], y[batch]))
    unit = int(np.argmax(np.abs(grad_b)))

    x_hat = recover_input_from_dense_gradient(grad_W, grad_b)
    weights = softmax_mix_weights(params, X[batch], y[batch], unit)

    np.testing.assert_allclose(x_hat, weights @ X[batch], rtol=1e-12, atol=1e-12)
    assert abs(weights.sum() - 1.0) <= 1e-12 and np.max(weights) < 1 - 1e-3  # a true mix


def test_reconstruction_error_is_the_relative_distance_to_the_nearest_input():
    X = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 10.0]])

    error = reconstruction_error([1.0, 1.0], X)

    assert error == pytest.approx(np.sqrt(13) / 5, rel=1e-15)  # row 0; row 1 gives 1, row 2 0.906


def batch_errors(model, params, X, y, batch_size, n_trials=10):
    rng = np.random.default_rng(batch_size)
    picks = [rng.choice(len(y), batch_size, replace=False) for _ in range(n_trials)]
    return np.array([batch_leakage_error(model, params, X[idx], y[idx]) for idx in picks])


@pytest.mark.parametrize("model, params", [(SOFTMAX, SOFTMAX.init_params()), (NET, NET.init_params(seed=0))],
                         ids=["softmax", "mlp"])
def test_larger_batches_give_larger_reconstruction_errors(digits, model, params):
    X, y = digits

    errors = {B: batch_errors(model, params, X, y, B) for B in range(1, 9)}

    assert errors[1].max() <= 1e-15
    assert min(errors[B].min() for B in range(2, 9)) >= 0.01  # measured: 0.083 (softmax), 0.17 (MLP)
    assert np.median(errors[8]) > np.median(errors[2])  # measured: 0.36 > 0.10, 0.44 > 0.35


@pytest.mark.parametrize("model, params", [(SOFTMAX, SOFTMAX.init_params()), (NET, NET.init_params(seed=0))],
                         ids=["softmax", "mlp"])
def test_local_steps_on_one_sample_still_give_the_image(digits, model, params):
    X, y = digits
    config = {"local_epochs": 10, "batch_size": 1, "lr": 0.5, "seed": 0}

    error = update_leakage_error(model, params, X[:1], y[:1], config)

    assert error <= 1e-12  # measured: 8.8e-17 (softmax), 3.8e-16 (MLP): every step is outer(x, .)


@pytest.mark.parametrize("model, params", [(SOFTMAX, SOFTMAX.init_params()), (NET, NET.init_params(seed=0))],
                         ids=["softmax", "mlp"])
def test_local_steps_over_several_samples_break_exact_recovery(digits, model, params):
    X, y = digits
    config = {"local_epochs": 5, "batch_size": 1, "lr": 0.5, "seed": 0}
    picks = [np.random.default_rng(seed).choice(len(y), 4, replace=False) for seed in range(5)]

    errors = [update_leakage_error(model, params, X[idx], y[idx], config) for idx in picks]

    assert min(errors) >= 0.05  # measured: 1.32 (softmax), 0.28 (MLP); exact is <= 1e-12


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("grad_W, grad_b, kwargs, message", [
    (np.ones(4), np.ones(4), {}, r"'grad_W' parameter of recover_input_from_dense_gradient must be a 2-D "
                                 r"array of shape \(n_features, n_units\)\. Got an array of shape \(4,\)"),
    (np.ones((3, 4)), np.ones(3), {}, r"'grad_b' parameter .* must have shape \(4,\).*Got an array of shape \(3,\)"),
    (np.ones((3, 4)), np.zeros(4), {}, r"'grad_b' parameter .* must have a nonzero entry.*Got all 4 zero"),
    (np.ones((3, 4)), np.array([1.0, np.nan, 1, 1]), {}, r"'grad_b' .* finite numbers only\. Got 1 non-finite"),
    (np.ones((3, 4)), np.ones(4), {"unit": 4}, r"'unit' parameter .* must be an int in \[0, 4\)\. Got 4"),
    (np.ones((3, 4)), np.array([1.0, 0, 1, 1]), {"unit": 1}, r"'unit' .* dL/db_i != 0\. Got 1, whose"),
])
def test_dense_recovery_refuses_bad_inputs(grad_W, grad_b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        recover_input_from_dense_gradient(grad_W, grad_b, **kwargs)


@pytest.mark.parametrize("grad_b, message", [
    (np.zeros(10), r"'grad_b' parameter of recover_label_from_bias_gradient must have at least 2 entries, "
                   r"not all zero\. Got 10 entries, 0 nonzero"),
    (np.array([-1.0]), r"at least 2 entries.*Got 1 entries"),
    (np.ones((2, 5)), r"must be a 1-D array of shape \(n_classes,\)\. Got an array of shape \(2, 5\)"),
    (np.array([-0.4, 0.5, -0.1]), r"one smallest entry.*Got negative entries at \[0, 2\]"),
    (np.array([0.0, 0.0, 0.3]), r"one smallest entry.*the smallest at \[0, 1\]"),
])
def test_label_recovery_refuses_bad_inputs(grad_b, message):
    with pytest.raises(ValueError, match=message):
        recover_label_from_bias_gradient(grad_b)


def test_model_helpers_refuse_bad_models_gradients_and_inputs(digits):
    X, y = digits
    with pytest.raises(TypeError, match=r"'model' parameter of first_layer_gradient must be a "
                                        r"SoftmaxRegression or an MLP\. Got LinearRegression"):
        first_layer_gradient(LinearRegression(n_features=64), np.zeros(65))
    with pytest.raises(ValueError, match=r"'grad' parameter of first_layer_gradient must be a flat vector "
                                         r"of shape \(650,\)\. Got an array of shape \(640,\)"):
        recover_input_from_gradient(SOFTMAX, np.ones(640))
    with pytest.raises(ValueError, match=r"'x_hat' parameter of reconstruction_error must have shape \(64,\)"):
        reconstruction_error(np.ones(63), X[:2])
    with pytest.raises(ValueError, match=r"'X' parameter of reconstruction_error must have no all-zero row.*row 1"):
        reconstruction_error(np.ones(3), np.array([[1.0, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"'model' parameter of update_leakage_error must have l2=0"):
        update_leakage_error(SoftmaxRegression(n_features=64, n_classes=10, l2=0.1), np.zeros(650), X[:1], y[:1],
                             {"local_epochs": 1, "batch_size": 1, "lr": 0.1, "seed": 0})
    with pytest.raises(ValueError, match=r"'config' parameter of update_leakage_error must hold"):
        update_leakage_error(SOFTMAX, np.zeros(650), X[:1], y[:1], {"lr": 0.1})
