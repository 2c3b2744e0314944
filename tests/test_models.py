import pickle
import warnings

import numpy as np
import pytest

import flcourse as fl

N_FEATURES, N_CLASSES = 5, 3


def make_model(name, l2=0.0):
    return {
        "linear": lambda: fl.LinearRegression(n_features=N_FEATURES, l2=l2),
        "linear_no_intercept": lambda: fl.LinearRegression(n_features=N_FEATURES, fit_intercept=False, l2=l2),
        "logistic": lambda: fl.LogisticRegression(n_features=N_FEATURES, l2=l2),
        "softmax": lambda: fl.SoftmaxRegression(n_features=N_FEATURES, n_classes=N_CLASSES, l2=l2),
        "mlp": lambda: fl.MLP(n_features=N_FEATURES, n_hidden=4, n_classes=N_CLASSES, l2=l2),
    }[name]()


MODELS = ["linear", "linear_no_intercept", "logistic", "softmax", "mlp"]


def make_targets(model, rng, n):
    if model.n_classes is None:
        return rng.normal(size=n)
    return rng.integers(0, model.n_classes, n)


@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("n_samples", [1, 2, 17])
def test_gradient_matches_finite_differences(name, l2, n_samples, rng):
    model = make_model(name, l2)
    X, y = rng.normal(size=(n_samples, N_FEATURES)), make_targets(model, rng, n_samples)
    params = rng.normal(size=model.n_params)

    error = fl.check_gradient(model, params, X, y)

    assert error < 1e-6


@pytest.mark.parametrize("name", ["logistic", "softmax", "mlp"])
def test_gradient_matches_finite_differences_with_one_class_present(name, rng):
    model = make_model(name)
    X, y = rng.normal(size=(9, N_FEATURES)), np.ones(9, dtype=int)
    params = rng.normal(size=model.n_params)

    assert fl.check_gradient(model, params, X, y) < 1e-6


@pytest.mark.parametrize("name", ["logistic", "softmax", "mlp"])
def test_large_logits_give_finite_loss_and_gradient(name, rng):
    model = make_model(name)
    X, y = rng.normal(size=(6, N_FEATURES)), make_targets(model, rng, 6)
    params = 1e4 * rng.normal(size=model.n_params)

    loss, grad = model.loss_and_grad(params, X, y)

    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss > 100  # confident mistakes cost a lot, they do not overflow


@pytest.mark.parametrize("name", ["logistic", "softmax"])
def test_gradient_matches_finite_differences_at_moderately_large_logits(name, rng):
    model = make_model(name)
    X, y = rng.normal(size=(8, N_FEATURES)), make_targets(model, rng, 8)
    params = 20 * rng.normal(size=model.n_params)

    assert fl.check_gradient(model, params, X, y) < 1e-6


def test_logistic_loss_equals_softmax_loss_with_two_classes(rng):
    X, y = rng.normal(size=(10, N_FEATURES)), rng.integers(0, 2, 10)
    w = rng.normal(size=N_FEATURES + 1)
    softmax = fl.SoftmaxRegression(n_features=N_FEATURES, n_classes=2)
    W = np.stack([np.zeros(N_FEATURES), w[:-1]], axis=1).ravel()

    expected = softmax.loss(np.concatenate([W, [0.0, w[-1]]]), X, y)

    assert fl.LogisticRegression(n_features=N_FEATURES).loss(w, X, y) == pytest.approx(expected, rel=1e-12)


def test_linear_regression_gradient_is_zero_at_least_squares_solution(rng):
    X, y = rng.normal(size=(30, N_FEATURES)), rng.normal(size=30)
    solution = np.linalg.lstsq(np.c_[X, np.ones(30)], y, rcond=None)[0]

    grad = fl.LinearRegression(n_features=N_FEATURES).grad(solution, X, y)

    np.testing.assert_allclose(grad, 0, atol=1e-12)


def test_l2_penalty_skips_biases(rng):
    model = fl.SoftmaxRegression(n_features=2, n_classes=3, l2=1.0)
    params = np.r_[np.zeros(6), 1.0, 2.0, 3.0]
    X, y = rng.normal(size=(4, 2)), np.array([0, 1, 2, 0])

    unpenalised = fl.SoftmaxRegression(n_features=2, n_classes=3).loss(params, X, y)

    assert model.loss(params, X, y) == pytest.approx(unpenalised, rel=1e-15)


def test_mlp_init_params_is_seeded_and_glorot_scaled():
    model = fl.MLP(n_features=64, n_hidden=32, n_classes=10)

    first, again, other = model.init_params(0), model.init_params(0), model.init_params(1)

    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    W1 = first[:64 * 32]
    assert np.abs(W1).max() <= np.sqrt(6 / (64 + 32)) and np.abs(W1).max() > 0.9 * np.sqrt(6 / (64 + 32))


def test_softmax_regression_on_digits_matches_scikit_learn(digits):
    from sklearn.linear_model import LogisticRegression

    model = fl.SoftmaxRegression(n_features=64, n_classes=10)
    params, _ = fl.sgd(model, model.init_params(), digits.X_train, digits.y_train,
                       lr=0.5, batch_size=64, n_epochs=50, seed=0)
    ours = model.score(params, digits.X_test, digits.y_test)
    reference = LogisticRegression(max_iter=2000).fit(digits.X_train, digits.y_train)

    assert ours >= 0.95
    assert abs(ours - reference.score(digits.X_test, digits.y_test)) <= 0.02


def test_predict_proba_rows_sum_to_one(rng):
    model = make_model("softmax")
    proba = model.predict_proba(rng.normal(size=model.n_params), rng.normal(size=(4, N_FEATURES)))

    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_repr_names_the_hyper_parameters():
    assert repr(make_model("mlp")) == "MLP(n_features=5, n_hidden=4, n_classes=3, l2=0.0)"


def test_score_is_r2_for_regression(rng):
    X = rng.normal(size=(20, N_FEATURES))
    params = rng.normal(size=N_FEATURES + 1)
    model = fl.LinearRegression(n_features=N_FEATURES)

    assert model.score(params, X, model.predict(params, X)) == 1.0


# Bad input: the message names the argument, the value and what was expected.

@pytest.mark.parametrize("name", MODELS)
def test_wrong_parameter_vector_length_is_rejected(name, rng):
    model = make_model(name)
    X, y = rng.normal(size=(3, N_FEATURES)), make_targets(model, rng, 3)

    with pytest.raises(ValueError, match=rf"'params' parameter of .*\.grad must be a flat vector "
                                         rf"of shape \({model.n_params},\)\. Got an array of shape "
                                         rf"\({model.n_params + 1},\)"):
        model.grad(np.zeros(model.n_params + 1), X, y)


def test_nan_in_X_is_rejected_with_its_position(rng):
    model = make_model("softmax")
    X = rng.normal(size=(3, N_FEATURES))
    X[1, 2] = np.nan

    with pytest.raises(ValueError, match=r"'X' parameter of SoftmaxRegression.loss must hold finite "
                                         r"numbers only. Got nan at row 1, column 2"):
        model.loss(np.zeros(model.n_params), X, [0, 1, 2])


def test_X_y_length_mismatch_is_rejected(rng):
    model = make_model("logistic")

    with pytest.raises(ValueError, match=r"'y' parameter of LogisticRegression.grad must have one "
                                         r"entry per row of X \(4\). Got 3 entries"):
        model.grad(np.zeros(model.n_params), rng.normal(size=(4, N_FEATURES)), [0, 1, 0])


@pytest.mark.parametrize("labels, bad", [([0, 1, 3], "3"), ([0, -1, 2], "-1")])
def test_labels_outside_range_are_rejected(labels, bad, rng):
    model = make_model("softmax")

    with pytest.raises(ValueError, match=rf"labels in \[0, 2\] \(n_classes=3\). Got label {bad}"):
        model.loss(np.zeros(model.n_params), rng.normal(size=(3, N_FEATURES)), labels)


def test_fractional_labels_are_rejected(rng):
    model = make_model("logistic")

    with pytest.raises(ValueError, match="must hold integer class labels"):
        model.loss(np.zeros(model.n_params), rng.normal(size=(2, N_FEATURES)), [0.5, 1.0])


def test_wrong_number_of_features_is_rejected(rng):
    with pytest.raises(ValueError, match=r"must have 5 columns \(n_features\). Got an array of shape \(2, 4\)"):
        make_model("linear").predict(np.zeros(6), rng.normal(size=(2, 4)))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n_features": 0, "n_classes": 3}, ValueError, r"'n_features' parameter of SoftmaxRegression must be an int in \[1, inf\). Got 0"),
    ({"n_features": 2.5, "n_classes": 3}, TypeError, r"'n_features' .* must be an int .* Got 2.5 of type float"),
    ({"n_features": 2, "n_classes": 1}, ValueError, r"'n_classes' .* must be an int in \[2, inf\). Got 1"),
    ({"n_features": 2, "n_classes": 3, "l2": -0.1}, ValueError, r"'l2' .* must be a float in \[0, inf\). Got -0.1"),
])
def test_bad_hyper_parameters_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        fl.SoftmaxRegression(**kwargs)


def test_hyper_parameters_must_be_keywords():
    with pytest.raises(TypeError):
        fl.SoftmaxRegression(64, 10)


def test_r2_is_nan_without_warning_when_targets_do_not_vary(rng):
    model = fl.LinearRegression(n_features=N_FEATURES)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score = model.score(np.zeros(N_FEATURES + 1), rng.normal(size=(1, N_FEATURES)), [3.0])

    assert np.isnan(score)


@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("name", MODELS)
def test_gradient_only_path_equals_loss_and_gradient(name, l2, rng):
    model = make_model(name, l2)
    X, y = rng.normal(size=(7, N_FEATURES)), make_targets(model, rng, 7)
    params = rng.normal(size=model.n_params)

    np.testing.assert_allclose(model.grad_unchecked(params, X, y), model.grad(params, X, y), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("n_models, n_samples", [(1, 1), (1, 7), (4, 1), (4, 7)])
def test_stacked_gradient_row_k_is_bit_for_bit_the_gradient_of_model_k(name, l2, n_models, n_samples, rng):
    model = make_model(name, l2)
    X = rng.normal(size=(n_models, n_samples, N_FEATURES))
    y = np.stack([make_targets(model, rng, n_samples) for _ in range(n_models)])
    params = rng.normal(size=(n_models, model.n_params))

    stacked = model.grad_stacked(params, X, y)

    assert stacked.shape == (n_models, model.n_params)
    for k in range(n_models):
        assert np.array_equal(stacked[k], model.grad_unchecked(params[k], X[k], y[k]))


def test_a_model_without_its_kernels_names_the_one_it_lacks():
    class Bare(fl.Model):
        n_features, n_params, n_classes, l2 = 2, 3, None, 0.0

    with pytest.raises(NotImplementedError, match=r"Bare must implement the kernel loss_grad"):
        Bare().loss(np.zeros(3), np.ones((1, 2)), np.ones(1))
    with pytest.raises(NotImplementedError, match=r"Bare must implement the kernel predict_unchecked"):
        Bare().predict(np.zeros(3), np.ones((1, 2)))


@pytest.mark.parametrize("name", MODELS)
def test_model_classes_go_by_their_public_path_in_pickles(name):
    model = make_model(name)

    blob = pickle.dumps(model)

    assert type(model).__module__ == "flcourse.models"
    assert b"flcourse.models" in blob and b"flcourse.models." not in blob
    assert repr(pickle.loads(blob)) == repr(model)
