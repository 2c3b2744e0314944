"""Argument checks at the public boundary: each case below once passed silently, or failed
with a raw numpy or Python error that did not name the argument.

Every error names the argument and the bad value, in one shape:
``The 'lr' parameter of sgd must be a float in (0, inf). Got -1 instead.``
"""
import re
from fractions import Fraction
from itertools import islice

import numpy as np
import pytest

import flcourse as fl
from flcourse import _validation
from flcourse.data import partition as partition_module
from flcourse.distributed import InProcessBackend
from flcourse.distributed import DataParallelSGD
from flcourse.federated import NumpyClient, make_clients

INF, NAN = float("inf"), float("nan")
RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 3))
Y = np.arange(20) % 2
SOFTMAX = fl.SoftmaxRegression(n_features=3, n_classes=2)
ZEROS = np.zeros(SOFTMAX.n_params)

MODELS = {
    "LinearRegression": lambda **kw: fl.LinearRegression(n_features=3, **kw),
    "LogisticRegression": lambda **kw: fl.LogisticRegression(n_features=3, **kw),
    "SoftmaxRegression": lambda **kw: fl.SoftmaxRegression(n_features=3, n_classes=2, **kw),
    "MLP": lambda **kw: fl.MLP(n_features=3, n_hidden=4, n_classes=2, **kw),
}


def check_index_partition(*args, **kwargs):
    return partition_module.check_index_partition(*args, **kwargs)


def derived_rng(*args, **kwargs):
    return _validation.derived_rng(*args, **kwargs)


# 1. Non-finite numbers are refused unless a parameter opts in


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("l2", [INF, NAN])
def test_every_model_refuses_a_non_finite_l2(name, l2):
    with pytest.raises(ValueError, match=rf"The 'l2' parameter of {name} must be a float in \[0, inf\). Got {l2}"):
        MODELS[name](l2=l2)


@pytest.mark.parametrize("call, message", [
    (lambda: fl.sgd(SOFTMAX, ZEROS, X, Y, lr=INF, batch_size=4),
     r"'lr' parameter of sgd must be a float in \(0, inf\). Got inf"),
    (lambda: fl.gradient_descent(SOFTMAX, ZEROS, X, Y, lr=INF, n_steps=1),
     r"'lr' parameter of gradient_descent must be a float in \(0, inf\). Got inf"),
    (lambda: fl.check_gradient(SOFTMAX, ZEROS, X, Y, eps=INF), r"'eps' parameter of check_gradient .* Got inf"),
    (lambda: fl.quantity_skew_partition(10, 2, beta=INF), r"'beta' parameter of quantity_skew_partition .* Got inf"),
    (lambda: fl.dirichlet_partition(Y, 2, alpha=INF), r"'alpha' parameter of dirichlet_partition .* Got inf"),
    (lambda: DataParallelSGD(SOFTMAX, batch_size=4, lr=INF).fit(X, Y, n_steps=1),
     r"'lr' parameter of DataParallelSGD must be a float in \(0, inf\). Got inf"),
])
def test_infinity_is_refused_where_it_used_to_pass(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("timeout", [INF, 86_400.5, 1e10])
@pytest.mark.parametrize("backend", ["in-process", "processes"])
def test_timeout_beyond_a_day_is_refused_before_any_worker_starts(timeout, backend):
    trainer = DataParallelSGD(SOFTMAX, batch_size=4, backend=backend, timeout=timeout)

    with pytest.raises(ValueError, match=rf"'timeout' parameter of DataParallelSGD must be a float in \(0, 86400\]. Got {timeout!r}"):
        trainer.fit(X, Y, n_steps=1)

    assert not hasattr(trainer, "backend_")


def test_a_timeout_of_exactly_a_day_is_accepted():
    trainer = DataParallelSGD(SOFTMAX, batch_size=4, timeout=86_400).fit(X, Y, n_steps=2)

    assert trainer.history_["step"][-1] == 2


def test_allow_inf_opts_in_to_infinity_on_the_unbounded_side_only():
    check_scalar = _validation.check_scalar

    assert check_scalar(INF, "max_rounds", "f", low=0, allow_inf=True) == INF
    with pytest.raises(ValueError, match=r"'max_rounds' parameter of f must be a float in \(0, inf\]. Got nan"):
        check_scalar(NAN, "max_rounds", "f", low=0, allow_inf=True)
    with pytest.raises(ValueError, match=r"must be a float in \(0, inf\]. Got -inf"):
        check_scalar(-INF, "max_rounds", "f", low=0, allow_inf=True)
    with pytest.raises(ValueError, match=r"must be a float in \(0, 10\). Got inf"):
        check_scalar(INF, "max_rounds", "f", low=0, high=10, allow_inf=True)


@pytest.mark.parametrize("value, kind", [(10**400, int), (Fraction(1, 3), float), (Fraction(10**400), float)])
def test_exact_numbers_too_large_for_a_float_are_still_finite(value, kind):
    assert _validation.check_scalar(value, "x", "f", kind, low=0) == value


# 2. Booleans must be booleans


@pytest.mark.parametrize("value", ["no", "False", None, 0, 1, 1.0, [True]])
def test_fit_intercept_must_be_a_bool(value):
    with pytest.raises(TypeError, match=rf"'fit_intercept' parameter of LinearRegression must be a bool \(True or False\). Got {re.escape(repr(value))}"):
        fl.LinearRegression(n_features=3, fit_intercept=value)


@pytest.mark.parametrize("value, n_params", [(np.False_, 3), (np.True_, 4), (False, 3), (True, 4)])
def test_fit_intercept_accepts_python_and_numpy_bools(value, n_params):
    model = fl.LinearRegression(n_features=3, fit_intercept=value)

    assert model.n_params == n_params and model.fit_intercept is bool(value)


@pytest.mark.parametrize("call, name, owner", [
    (lambda: list(fl.minibatches(5, 2, shuffle="no")), "shuffle", "minibatches"),
    (lambda: fl.make_fedprox_synthetic(0, 0, iid="yes", n_clients=2), "iid", "make_fedprox_synthetic"),
    (lambda: fl.make_fedprox_synthetic(0, 0, iid=None, n_clients=2), "iid", "make_fedprox_synthetic"),
])
def test_other_bool_flags_refuse_truthy_values(call, name, owner):
    with pytest.raises(TypeError, match=rf"'{name}' parameter of {owner} must be a bool"):
        call()


# 3. one_hot validates its labels


@pytest.mark.parametrize("y, error, message", [
    ([0, -1], ValueError, r"'y' parameter of one_hot must hold labels in \[0, 2\] \(n_classes=3\). Got label -1"),
    ([0, 3], ValueError, r"'y' parameter of one_hot must hold labels in \[0, 2\] \(n_classes=3\). Got label 3"),
    ([0, 1.5], ValueError, r"'y' parameter of one_hot must hold integer class labels. Got 1.5 at position 1"),
    ([[0, 1]], ValueError, r"'y' parameter of one_hot must be a 1-D array. Got an array of shape \(1, 2\)"),
    (["a"], ValueError, r"'y' parameter of one_hot must hold integer class labels. Got values of dtype <U1"),
])
def test_one_hot_refuses_labels_outside_the_classes(y, error, message):
    with pytest.raises(error, match=message):
        fl.one_hot(y, 3)


@pytest.mark.parametrize("n_classes, error", [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError)])
def test_one_hot_needs_an_int_number_of_classes(n_classes, error):
    with pytest.raises(error, match=rf"'n_classes' parameter of one_hot must be an int in \[1, 1e\+06\]. Got {n_classes!r}"):
        fl.one_hot([0], n_classes)


@pytest.mark.parametrize("y, expected", [
    ([2, 0], [[0, 0, 1], [1, 0, 0]]),
    ((1,), [[0, 1, 0]]),
    (np.array([1.0, 0.0]), [[0, 1, 0], [1, 0, 0]]),
    (np.array([2], dtype=np.uint8), [[0, 0, 1]]),
])
def test_one_hot_accepts_array_likes_of_integer_labels(y, expected):
    np.testing.assert_array_equal(fl.one_hot(y, 3), expected)


def test_one_hot_of_no_labels_is_an_empty_matrix():
    assert fl.one_hot([], 3).shape == (0, 3)


# 4. softmax and sigmoid accept array-likes


@pytest.mark.parametrize("logits", [[1, 2], [[1.0, 2.0], [3.0, -1.0]], (0.5,), np.array([1, 2], dtype=np.int8)])
def test_softmax_accepts_array_likes(logits):
    plain = np.exp(np.asarray(logits, dtype=float))
    expected = plain / plain.sum(axis=-1, keepdims=True)

    result = fl.softmax(logits)

    assert result.dtype == np.float64
    np.testing.assert_allclose(result, expected, rtol=1e-15)


@pytest.mark.parametrize("z", [[0, 1000, -1000], (2,), [[1, -1]]])
def test_sigmoid_accepts_array_likes(z):
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-np.asarray(z, dtype=float)))

    np.testing.assert_allclose(fl.sigmoid(z), expected, rtol=1e-15)


@pytest.mark.parametrize("call, error, message", [
    (lambda: fl.softmax(["a"]), TypeError, r"'logits' parameter of softmax must be an array of real numbers"),
    (lambda: fl.softmax(None), TypeError, r"'logits' parameter of softmax must be an array of real numbers. Got NoneType"),
    (lambda: fl.softmax([1j]), TypeError, r"'logits' parameter of softmax .*complex numbers are not real"),
    (lambda: fl.softmax(3.0), ValueError, r"'logits' parameter of softmax must have at least one axis .* Got an array of shape \(\)"),
    (lambda: fl.softmax(np.zeros((2, 0))), ValueError, r"'logits' parameter of softmax .* shape \(2, 0\)"),
    (lambda: fl.sigmoid(["a"]), TypeError, r"'z' parameter of sigmoid must be an array of real numbers"),
    (lambda: fl.sigmoid(None), TypeError, r"'z' parameter of sigmoid must be an array of real numbers. Got NoneType"),
])
def test_softmax_and_sigmoid_name_a_bad_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


# 5. weighted_average: only the ratios of the weights matter


def plain_weighted_average(arrays, weights):
    """sum_k w_k a_k / sum_k w_k in exact rational arithmetic, rounded once at the end."""
    total = sum(Fraction(w) for w in weights)
    return np.array([float(sum(Fraction(w) * Fraction(a[j]) for w, a in zip(weights, arrays)) / total)
                     for j in range(len(arrays[0]))])


@pytest.mark.parametrize("weights", [
    [1e308, 1e308],
    [1e308, 1.7e308, 5e307],
    [1e308, 1.0, 1e-300],
    [5e-324, 5e-324],
    [1e-320, 3e-320, 0.0],
    [2.5e-310, 1e-300, 7e-305],
    [1.0, 2.0, 3.0],
])
def test_weighted_average_with_huge_or_tiny_weights_equals_an_exact_loop(weights, rng):
    arrays = rng.normal(size=(len(weights), 6))

    result = fl.weighted_average(arrays, weights)

    np.testing.assert_allclose(result, plain_weighted_average(arrays, weights), rtol=1e-13, atol=0)


def test_weighted_average_of_equal_huge_weights_is_the_plain_mean(rng):
    arrays = rng.normal(size=(4, 5))

    np.testing.assert_allclose(fl.weighted_average(arrays, [1e308] * 4), arrays.mean(axis=0), rtol=1e-14)


def test_weighted_average_of_ordinary_weights_is_unchanged_bit_for_bit(rng):
    arrays, weights = rng.normal(size=(7, 30)), rng.uniform(0, 5, size=7)

    assert np.array_equal(fl.weighted_average(arrays, weights),
                          np.tensordot(weights / weights.sum(), arrays, axes=1))


@pytest.mark.parametrize("arrays, weights, error, message", [
    ([np.ones(2)], ["a"], TypeError, r"'weights' parameter of weighted_average must be an array of real numbers"),
    ([np.ones(2)], None, TypeError, r"'weights' parameter of weighted_average must be an array of real numbers. Got NoneType"),
    ([["a", "b"]], [1], TypeError, r"'arrays' parameter of weighted_average must be an array of real numbers"),
    ([np.ones(2) * 1j], [1], TypeError, r"'arrays' parameter of weighted_average .*complex numbers are not real"),
    (None, [1], TypeError, r"'arrays' parameter of weighted_average must be a sequence of arrays. Got NoneType"),
    ([], [], ValueError, r"'arrays' parameter of weighted_average must hold at least one array"),
])
def test_weighted_average_names_a_bad_argument(arrays, weights, error, message):
    with pytest.raises(error, match=message):
        fl.weighted_average(arrays, weights)


def test_weighted_average_accepts_a_generator_of_arrays():
    result = fl.weighted_average((a for a in [np.ones(2), np.zeros(2)]), [1, 3])

    np.testing.assert_array_equal(result, [0.25, 0.25])


# 6. make_fedprox_synthetic


@pytest.mark.parametrize("alpha, beta, bad", [
    (INF, 0, "alpha"), (NAN, 0, "alpha"), (-0.5, 1, "alpha"), (0, INF, "beta"), (1, NAN, "beta"), (0, -1, "beta"),
])
def test_fedprox_synthetic_refuses_non_finite_or_negative_alpha_and_beta(alpha, beta, bad):
    value = {"alpha": alpha, "beta": beta}[bad]

    with pytest.raises(ValueError, match=rf"'{bad}' parameter of make_fedprox_synthetic must be a float in \[0, inf\). Got {value}"):
        fl.make_fedprox_synthetic(alpha, beta)


@pytest.mark.parametrize("alpha, beta", [(1e308, 0), (0, 1e308)])
def test_fedprox_synthetic_refuses_alpha_or_beta_so_large_that_they_overflow(alpha, beta):
    with pytest.raises(ValueError, match=rf"'alpha' and 'beta' parameters of make_fedprox_synthetic must be small enough .* Got {re.escape(f'alpha={alpha!r}, beta={beta!r}')}"):
        fl.make_fedprox_synthetic(alpha, beta, n_clients=3)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"n_clients": 0}, ValueError, "n_clients"), ({"n_features": 2.0}, TypeError, "n_features"),
    ({"n_classes": True}, TypeError, "n_classes"), ({"seed": "x"}, TypeError, "seed"),
])
def test_fedprox_synthetic_names_its_other_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=rf"'{name}' parameter of make_fedprox_synthetic .* Got"):
        fl.make_fedprox_synthetic(0, 0, **kwargs)


# 7. make_partition: "bad number" only for a number that does not parse


def test_make_partition_passes_the_partitioners_own_error_through():
    y = np.repeat(np.arange(2), 20)

    with pytest.raises(ValueError, match=r"dirichlet_partition could not give every one of 20 clients min_size=1 samples with alpha=0.01") as caught:
        fl.make_partition("dirichlet:0.01", y, 20, seed=0)

    assert "bad number" not in str(caught.value)


@pytest.mark.parametrize("spec, n_clients, error, message", [
    ("dirichlet:inf", 3, ValueError, r"'alpha' parameter of dirichlet_partition must be a float in \(0, inf\). Got inf"),
    ("quantity:nan", 3, ValueError, r"'beta' parameter of quantity_skew_partition .* Got nan"),
    ("shards:0", 3, ValueError, r"'shards_per_client' parameter of shard_partition .* Got 0"),
    ("iid", 0, ValueError, r"'n_clients' parameter of iid_partition must be an int in \[1, 30\]. Got 0"),
    ("iid", "3", TypeError, r"'n_clients' parameter of iid_partition .* Got '3' of type str"),
])
def test_make_partition_reports_errors_after_parsing_in_the_partitioners_words(spec, n_clients, error, message):
    with pytest.raises(error, match=message):
        fl.make_partition(spec, np.arange(30) % 3, n_clients)


@pytest.mark.parametrize("spec", ["dirichlet:abc", "shards:2.5", "quantity:x", "dirichlet:0,3"])
def test_make_partition_says_bad_number_when_the_number_does_not_parse(spec):
    kind = spec.partition(":")[0]

    with pytest.raises(ValueError, match=rf"'spec' parameter of make_partition has a bad number after '{kind}:'. Got '{spec}'"):
        fl.make_partition(spec, np.arange(30) % 3, 3)


def test_make_partition_names_a_bad_y():
    with pytest.raises(ValueError, match=r"'y' parameter of make_partition must be a 1-D array .* Got an array of shape \(\)"):
        fl.make_partition("iid", None, 3)


# 8. check_index_partition


@pytest.mark.parametrize("parts", [
    [np.array([0, 2]), np.array([1, 3])],
    [[0, 2], [1, 3]],
    (np.array([3, 0], dtype=np.uint8), np.array([1, 2], dtype=np.int32)),
    [np.arange(4), np.array([])],
])
def test_check_index_partition_returns_int64_parts_with_the_same_indices(parts):
    checked = check_index_partition(parts, 4, "f")

    assert isinstance(checked, list) and len(checked) == len(parts)
    for ours, theirs in zip(checked, parts):
        assert ours.dtype == np.int64 and ours.ndim == 1
        np.testing.assert_array_equal(ours, np.asarray(theirs, dtype=np.int64))


@pytest.mark.parametrize("parts, error, message", [
    ([np.array([0, 1]), np.array([2.0, 3.0])], TypeError,
     r"'clients' parameter of make_clients must be a sequence of 1-D integer index arrays. Got an array of dtype float64 as part 1 instead \(a float array is refused even when its values are whole"),
    ([np.array([0.5, 1.7, 2.0, 3.0])], TypeError, r"'clients' parameter of make_clients .* dtype float64 as part 0"),
    ([np.array([True, False, True, True])], TypeError, r"'clients' parameter of make_clients .* a boolean array as part 0 instead: a mask"),
    ([np.array(["0", "1"])], TypeError, r"'clients' parameter of make_clients .* dtype <U1 as part 0"),
    ([np.array([0, 1]), np.array([2, -1])], ValueError,
     r"'clients' parameter of make_clients must hold indices in \[0, 3\] \(n_samples=4\). Got index -1 in part 1 instead \(negative indices are not counted"),
    ([np.array([0, 1, 4]), np.array([2, 3])], ValueError, r"'clients' parameter of make_clients must hold indices in \[0, 3\] .* Got index 4 in part 0"),
    ([np.array([0, 1, 2]), np.array([2, 3])], ValueError,
     r"'clients' parameter of make_clients must hold each of the 4 samples exactly once. Got 1 repeated index instead; the first repeated, 2, is in part 0 and part 1"),
    ([np.array([0, 1, 1]), np.array([2, 3])], ValueError, r"Got 1 repeated index instead; the first repeated, 1, is twice in part 0"),
    ([np.array([0]), np.array([2])], ValueError, r"'clients' parameter of make_clients must hold each of the 4 samples exactly once. Got 2 missing samples instead \(the first is 1\)"),
    ([np.array([0, 0]), np.array([2])], ValueError, r"Got 1 repeated index and 2 missing samples instead"),
    (None, TypeError, r"'clients' parameter of make_clients must be a sequence of 1-D integer index arrays, one per part. Got None"),
    (3, TypeError, r"'clients' parameter of make_clients must be a sequence .* Got 3 of type int"),
    ("0123", TypeError, r"'clients' parameter of make_clients must be a sequence .* Got '0123' of type str"),
    ({0: [0, 1, 2, 3]}, TypeError, r"'clients' parameter of make_clients must be a sequence .* of type dict"),
    (np.array(3), TypeError, r"'clients' parameter of make_clients must be a sequence .* of type ndarray"),
    (np.arange(4), TypeError, r"'clients' parameter of make_clients .* Got np.int64\(0\) of type int64 as part 0 instead \(a partition with one part is a list"),
    ([None, np.arange(4)], TypeError, r"'clients' parameter of make_clients .* Got None of type NoneType as part 0"),
    ([np.arange(4).reshape(2, 2)], ValueError, r"'clients' parameter of make_clients .* Got an array of shape \(2, 2\) as part 0"),
    ([[0, [1, 2]], [3]], TypeError, r"'clients' parameter of make_clients .* Got list as part 0, not an array"),
])
def test_check_index_partition_names_the_problem_the_part_and_the_index(parts, error, message):
    with pytest.raises(error, match=message):
        check_index_partition(parts, 4, "make_clients", name="clients")


def test_check_index_partition_without_cover_accepts_a_subset_but_not_a_repeat():
    subset = check_index_partition([np.array([3]), np.array([], dtype=np.int64)], 4, "f", cover=False)

    assert [part.tolist() for part in subset] == [[3], []]
    with pytest.raises(ValueError, match=r"'partition' parameter of f must hold each of the 4 samples at most once. Got 1 repeated index"):
        check_index_partition([np.array([3]), np.array([3])], 4, "f", cover=False)


@pytest.mark.parametrize("n_samples, error", [(4.0, TypeError), (-1, ValueError), (True, TypeError)])
def test_check_index_partition_checks_n_samples(n_samples, error):
    with pytest.raises(error, match=r"'n_samples' parameter of f must be an int in \[0, inf\)"):
        check_index_partition([np.arange(4)], n_samples, "f")


@pytest.mark.parametrize("parts, error, message", [
    ([np.array([0.0, 1.0]), np.array([2.0])], TypeError, r"'partition' parameter of check_partition .* dtype float64 as part 0"),
    ([np.array([0, -1]), np.array([1])], ValueError, r"'partition' parameter of check_partition .* Got index -1 in part 0"),
    ([], ValueError, r"'partition' parameter of check_partition .* Got 3 missing samples"),
])
def test_check_partition_uses_the_index_checker(parts, error, message):
    with pytest.raises(error, match=message):
        fl.check_partition(parts, 3)


def test_check_partition_still_returns_none_and_accepts_lists():
    assert fl.check_partition([[0, 2], [1], []], 3) is None


@pytest.mark.parametrize("parts, error, message", [
    ([np.array([0.0]), np.array([1.0, 2.0])], TypeError, r"'partition' parameter of partition_stats .* dtype float64"),
    ([np.array([0, 1]), np.array([-1])], ValueError, r"'partition' parameter of partition_stats .* Got index -1 in part 1"),
])
def test_partition_stats_refuses_float_or_negative_indices(parts, error, message):
    with pytest.raises(error, match=message):
        fl.partition_stats([0, 1, 1], parts)


def test_partition_stats_accepts_lists_of_indices():
    stats = fl.partition_stats([0, 1, 1], [[0, 1], [2]])

    np.testing.assert_array_equal(stats.label_counts, [[1, 1], [0, 1]])


@pytest.mark.parametrize("parts, error, message", [
    ([np.arange(10.0), np.arange(10.0, 20.0)], TypeError,
     r"'partition' parameter of DataParallelSGD.fit must be a sequence of 1-D integer index arrays. Got an array of dtype float64 as part 0"),
    ([np.arange(-1, 10), np.arange(10, 19)], ValueError, r"'partition' parameter of DataParallelSGD.fit .* Got index -1 in part 0"),
    ([np.arange(11), np.arange(10, 20)], ValueError, r"'partition' parameter of DataParallelSGD.fit .* the first repeated, 10, is in part 0 and part 1"),
    ([np.arange(10), np.arange(10, 19)], ValueError, r"'partition' parameter of DataParallelSGD.fit must hold each of the 20 samples exactly once. Got 1 missing sample"),
    (3, TypeError, r"'partition' parameter of DataParallelSGD.fit must be a sequence"),
])
def test_data_parallel_sgd_checks_its_partition_with_the_index_checker(parts, error, message):
    with pytest.raises(error, match=message):
        DataParallelSGD(SOFTMAX, batch_size=4).fit(X, Y, n_steps=1, partition=parts)


def test_data_parallel_sgd_accepts_a_partition_of_lists(rng):
    parts = [list(range(0, 20, 2)), list(range(1, 20, 2))]

    via_lists = DataParallelSGD(SOFTMAX, batch_size=4, seed=0).fit(X, Y, n_steps=5, partition=parts)
    via_arrays = DataParallelSGD(SOFTMAX, batch_size=4, seed=0).fit(X, Y, n_steps=5, partition=[np.array(p) for p in parts])

    assert np.array_equal(via_lists.params_, via_arrays.params_)


# 9. DataParallelSGD.fit checks every argument, and divergence


@pytest.mark.parametrize("kwargs, fit_kwargs, error, message", [
    ({"model": None}, {}, TypeError, r"'model' parameter of DataParallelSGD must be a flcourse Model instance.* Got None of type NoneType"),
    ({"model": fl.SoftmaxRegression}, {}, TypeError, r"'model' parameter of DataParallelSGD .* Got the class SoftmaxRegression \(instantiate it"),
    ({"backend": 3}, {}, TypeError, r"'backend' parameter of DataParallelSGD must be one of \['dask', 'in-process', 'processes'\] or a back-end object .* Got 3 of type int"),
    ({"backend": object()}, {}, TypeError, r"'backend' parameter of DataParallelSGD .* which has no start, reduce_gradients, __enter__, __exit__"),
    ({"aggregation": ["server"]}, {}, ValueError, r"'aggregation' parameter of DataParallelSGD must be one of \['ring', 'server'\]. Got \['server'\]"),
    ({"start_method": 3}, {}, TypeError, r"'start_method' parameter of DataParallelSGD must be a str or None. Got 3"),
    ({"scheduler_address": 8786}, {}, TypeError, r"'scheduler_address' parameter of DataParallelSGD must be a str or None. Got 8786"),
    ({"seed": "x"}, {}, TypeError, r"'seed' parameter of DataParallelSGD must be a non-negative int"),
    ({"seed": -1}, {}, TypeError, r"'seed' parameter of DataParallelSGD must be a non-negative int"),
    ({"timeout": "60"}, {}, TypeError, r"'timeout' parameter of DataParallelSGD must be a float in \(0, 86400\]. Got '60' of type str"),
    ({}, {"eval_every": 0}, ValueError, r"'eval_every' parameter of DataParallelSGD.fit must be an int in \[1, inf\). Got 0"),
    ({}, {"eval_every": -1}, ValueError, r"'eval_every' parameter of DataParallelSGD.fit must be an int in \[1, inf\). Got -1"),
    ({}, {"eval_every": 1.5}, TypeError, r"'eval_every' parameter of DataParallelSGD.fit .* Got 1.5 of type float"),
    ({}, {"eval_every": True}, TypeError, r"'eval_every' parameter of DataParallelSGD.fit .* Got True of type bool"),
    ({}, {"callback": 3}, TypeError, r"'callback' parameter of DataParallelSGD.fit must be callable or None. Got 3"),
    ({}, {"eval_set": (X,)}, TypeError, r"'eval_set' parameter of DataParallelSGD.fit must be a pair \(X_test, y_test\). Got a tuple of length 1"),
    ({}, {"eval_set": {"X": X}}, TypeError, r"'eval_set' parameter of DataParallelSGD.fit must be a pair .* Got dict"),
    ({}, {"eval_set": (X[:, :2], Y)}, ValueError, r"'eval_set\[0\]' parameter of DataParallelSGD.fit must have 3 columns \(n_features\). Got an array of shape \(20, 2\)"),
    ({}, {"eval_set": (X, Y + 5)}, ValueError, r"'eval_set\[1\]' parameter of DataParallelSGD.fit must hold labels in \[0, 1\] \(n_classes=2\). Got label 5"),
    ({}, {"eval_set": (X, Y[:3])}, ValueError, r"'eval_set\[1\]' parameter of DataParallelSGD.fit must have one entry per row"),
    ({}, {"params": np.full(SOFTMAX.n_params, NAN)}, ValueError, r"'params' parameter of .*DataParallelSGD.fit must hold finite numbers only"),
])
def test_data_parallel_sgd_names_every_bad_argument(kwargs, fit_kwargs, error, message):
    trainer = DataParallelSGD(kwargs.pop("model", SOFTMAX), batch_size=4, **kwargs)

    with pytest.raises(error, match=message):
        trainer.fit(X, Y, n_steps=3, **fit_kwargs)


def test_data_parallel_sgd_stops_at_divergence_with_a_learning_rate_hint():
    trainer = DataParallelSGD(fl.LinearRegression(n_features=1), batch_size=2, lr=10.0)

    with pytest.raises(FloatingPointError, match=r"DataParallelSGD diverged: the parameters are no longer finite after step \d+. Try a smaller learning rate than lr=10.0"):
        with np.errstate(over="ignore", invalid="ignore"):
            trainer.fit(np.array([[1e3], [2e3]]), [1.0, 2.0], n_steps=500)


def test_data_parallel_sgd_accepts_a_back_end_object():
    by_name = DataParallelSGD(SOFTMAX, batch_size=4, seed=0).fit(X, Y, n_steps=5)
    by_object = DataParallelSGD(SOFTMAX, batch_size=4, seed=0, backend=InProcessBackend()).fit(X, Y, n_steps=5)

    assert np.array_equal(by_name.params_, by_object.params_)


def test_data_parallel_sgd_records_the_test_set_it_was_given():
    trainer = DataParallelSGD(SOFTMAX, batch_size=4, seed=0).fit(X, Y, n_steps=4, eval_every=2,
                                                                 eval_set=(X[:5].tolist(), Y[:5].tolist()))

    assert trainer.history_["step"] == [0, 2, 4] and len(trainer.history_["test_accuracy"]) == 3


# 10. derived_rng and reproducible initial parameters


def test_derived_rng_of_an_int_is_default_rng_of_seed_and_key():
    first, again = derived_rng(7, 1, "f"), derived_rng(7, 1, "f")

    expected = np.random.default_rng([7, 1]).random(5)
    np.testing.assert_array_equal(first.random(5), expected)
    np.testing.assert_array_equal(again.random(5), expected)
    assert not np.array_equal(derived_rng(7, 2, "f").random(5), expected)


def test_derived_rng_does_not_shift_the_seed_generators_own_stream():
    seed = np.random.default_rng(5)

    derived = derived_rng(seed, 1, "f")
    derived.random(100)

    np.testing.assert_array_equal(seed.random(5), np.random.default_rng(5).random(5))
    assert not np.array_equal(derived_rng(np.random.default_rng(5), 1, "f").random(5),
                              np.random.default_rng(5).random(5))


def test_derived_rng_of_a_generator_is_reproducible_from_the_same_seed():
    first = derived_rng(np.random.default_rng(5), 1, "f").random(5)
    again = derived_rng(np.random.default_rng(5), 1, "f").random(5)

    np.testing.assert_array_equal(first, again)


def test_derived_rng_of_a_generator_without_seed_sequence_draws_once_from_it():
    legacy = np.random.Generator(np.random.RandomState(0)._bit_generator)

    derived = derived_rng(legacy, 1, "f")

    assert isinstance(derived, np.random.Generator)


def test_derived_rng_of_none_is_an_unseeded_generator():
    assert isinstance(derived_rng(None, 1, "f"), np.random.Generator)


@pytest.mark.parametrize("seed", ["x", -1, True, 1.5, [1]])
def test_derived_rng_refuses_what_check_rng_refuses(seed):
    with pytest.raises(TypeError) as ours:
        derived_rng(seed, 1, "Server", name="seed")
    with pytest.raises(TypeError) as theirs:
        _validation.check_rng(seed, "Server", name="seed")

    assert str(ours.value) == str(theirs.value)


MLP = fl.MLP(n_features=3, n_hidden=5, n_classes=2)


def test_data_parallel_sgd_of_an_mlp_without_params_is_reproducible_from_the_seed():
    runs = [DataParallelSGD(MLP, batch_size=4, seed=seed).fit(X, Y, n_steps=5).params_ for seed in (0, 0, 1)]

    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_data_parallel_sgd_starts_an_mlp_from_the_derived_stream_and_keeps_serial_minibatches():
    start = MLP.init_params(seed=np.random.default_rng([3, 1]))
    params = start
    for batch in islice(fl.minibatches(len(Y), 4, n_epochs=6, seed=3), 6):
        params = params - 0.1 * MLP.grad(params, X[batch], Y[batch])

    trainer = DataParallelSGD(MLP, n_workers=1, batch_size=4, lr=0.1, seed=3).fit(X, Y, n_steps=6)

    np.testing.assert_allclose(trainer.params_, params, rtol=0, atol=1e-13)


def test_data_parallel_sgd_with_a_generator_seed_keeps_the_minibatch_order_of_sgd():
    params, _ = fl.sgd(SOFTMAX, ZEROS, X, Y, lr=0.1, batch_size=20, n_epochs=4, seed=np.random.default_rng(9))

    trainer = DataParallelSGD(SOFTMAX, n_workers=1, batch_size=20, lr=0.1, seed=np.random.default_rng(9))
    trainer.fit(X, Y, n_steps=4)

    np.testing.assert_allclose(trainer.params_, params, rtol=0, atol=1e-13)


def test_data_parallel_sgd_of_softmax_without_params_still_starts_from_zeros():
    without = DataParallelSGD(SOFTMAX, batch_size=4, seed=2).fit(X, Y, n_steps=5).params_
    with_zeros = DataParallelSGD(SOFTMAX, batch_size=4, seed=2).fit(X, Y, n_steps=5, params=ZEROS).params_

    assert np.array_equal(without, with_zeros)


# 11. More bad input found by probing: each names the argument and the value


@pytest.mark.parametrize("call, error, message", [
    (lambda: SOFTMAX.loss(["a"] * 6, X, Y), TypeError, r"'params' parameter of SoftmaxRegression.loss must be an array of real numbers"),
    (lambda: SOFTMAX.loss(None, X, Y), TypeError, r"'params' parameter of SoftmaxRegression.loss must be an array of real numbers. Got NoneType"),
    (lambda: SOFTMAX.loss(ZEROS + 1j, X, Y), TypeError, r"'params' parameter of SoftmaxRegression.loss .*complex numbers are not real"),
    (lambda: SOFTMAX.grad(ZEROS, X + 1j, Y), TypeError, r"'X' parameter of SoftmaxRegression.grad .*complex numbers are not real"),
    (lambda: SOFTMAX.predict(ZEROS, [[None, 1.0, 2.0]]), TypeError, r"'X' parameter of SoftmaxRegression.predict .*None is not a number"),
    (lambda: SOFTMAX.loss(ZEROS, X[:2], [0, NAN]), ValueError, r"'y' parameter of SoftmaxRegression.loss must hold integer class labels. Got nan at position 1"),
    (lambda: fl.LinearRegression(n_features=3).loss(np.zeros(4), X[:2], ["a", "b"]), ValueError,
     r"'y' parameter of LinearRegression.loss must hold finite real targets. Got values of dtype <U1"),
    (lambda: fl.LinearRegression(n_features=3).loss(np.zeros(4), X[:2], [0.0, INF]), ValueError,
     r"'y' parameter of LinearRegression.loss must hold finite real targets. Got inf at position 1"),
    (lambda: fl.LinearRegression(n_features=3).loss(np.zeros(4), X[:2], [1j, 0]), ValueError,
     r"'y' parameter of LinearRegression.loss must hold finite real targets. Got values of dtype complex128"),
    (lambda: fl.check_gradient(None, ZEROS, X, Y), TypeError, r"'model' parameter of check_gradient must be a flcourse Model instance"),
    (lambda: fl.check_gradient(fl.MLP, ZEROS, X, Y), TypeError, r"'model' parameter of check_gradient .* Got the class MLP"),
    (lambda: fl.sgd(None, ZEROS, X, Y, lr=0.1, batch_size=4), TypeError, r"'model' parameter of sgd must be a flcourse Model instance"),
    (lambda: fl.gradient_descent("softmax", ZEROS, X, Y, lr=0.1, n_steps=1), TypeError, r"'model' parameter of gradient_descent .* Got 'softmax' of type str"),
    (lambda: fl.sgd(SOFTMAX, ZEROS, X, Y, lr=0.1, batch_size=4, eval_set=(X[:, :2], Y)), ValueError,
     r"'eval_set\[0\]' parameter of sgd must have 3 columns"),
    (lambda: fl.gradient_descent(SOFTMAX, ZEROS, X, Y, lr=0.1, n_steps=1, eval_set=(X, Y + 2)), ValueError,
     r"'eval_set\[1\]' parameter of gradient_descent must hold labels in \[0, 1\]"),
    (lambda: fl.dirichlet_partition(Y, 2, alpha=1.0, max_tries=0), ValueError, r"'max_tries' parameter of dirichlet_partition must be an int in \[1, inf\). Got 0"),
    (lambda: fl.dirichlet_partition(Y, 2, alpha=1.0, max_tries="a"), TypeError, r"'max_tries' parameter of dirichlet_partition .* Got 'a' of type str"),
    (lambda: fl.dirichlet_partition(None, 2, alpha=1.0), ValueError, r"'y' parameter of dirichlet_partition must be a 1-D array .* shape \(\)"),
    (lambda: fl.dirichlet_partition([], 2, alpha=1.0), ValueError, r"'y' parameter of dirichlet_partition must be a 1-D array .* shape \(0,\)"),
    (lambda: fl.dirichlet_partition([0, INF], 1, alpha=1.0), ValueError, r"'y' parameter of dirichlet_partition must hold labels .* Got label inf"),
    (lambda: fl.shard_partition(None, 2), ValueError, r"'y' parameter of shard_partition must be a 1-D array"),
    (lambda: fl.partition_stats(None, [[0]]), ValueError, r"'y' parameter of partition_stats must be a 1-D array"),
    (lambda: fl.partition_stats([0, 1], [[0], [1]], n_classes=0), ValueError, r"'n_classes' parameter of partition_stats must be an int in \[1, inf\). Got 0"),
    (lambda: fl.partition_stats([0, 1], [[0], [1]], n_classes=2.5), TypeError, r"'n_classes' parameter of partition_stats .* Got 2.5"),
    (lambda: fl.partition_stats([0, 1], [[0], [1]], n_classes=-1), ValueError, r"'n_classes' parameter of partition_stats .* Got -1"),
    (lambda: _validation.check_choice(["a"], "aggregation", "f", {"a"}), ValueError, r"'aggregation' parameter of f must be one of \['a'\]. Got \['a'\]"),
])
def test_probed_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("call, check", [
    (lambda: fl.SoftmaxRegression(n_features=3, n_classes=2, l2=Fraction(1, 3)), lambda m: m.l2 == Fraction(1, 3)),
    (lambda: fl.LogisticRegression(n_features=10**400), lambda m: m.n_features == 10**400),
    (lambda: fl.partition_stats([0.0, 1.0, 1.0], [[0, 1], [2]], n_classes=3), lambda s: s.label_counts.shape == (2, 3)),
    (lambda: list(fl.minibatches(4, 2, shuffle=np.False_)), lambda b: [x.tolist() for x in b] == [[0, 1], [2, 3]]),
    (lambda: fl.make_fedprox_synthetic(0, 0, iid=np.True_, n_clients=2), lambda r: len(r[2]) == 2),
])
def test_probed_valid_input_still_works(call, check):
    assert check(call())


# 12. Errors name the function the caller called, never "<Model>.<function>"
@pytest.mark.parametrize("call, owner", [
    (lambda X, y: fl.sgd(SOFTMAX, ZEROS, X, y, lr=0.1, batch_size=2), "sgd"),
    (lambda X, y: fl.gradient_descent(SOFTMAX, ZEROS, X, y, lr=0.1, n_steps=1), "gradient_descent"),
    (lambda X, y: fl.check_gradient(SOFTMAX, ZEROS, X, y), "check_gradient"),
    (lambda X, y: NumpyClient(SOFTMAX, X, y), "NumpyClient"),
    (lambda X, y: make_clients(SOFTMAX, X, y, [np.arange(2)]), "make_clients"),
    (lambda X, y: DataParallelSGD(SOFTMAX, n_workers=1, batch_size=2).fit(X, y, n_steps=1), "DataParallelSGD.fit"),
    (lambda X, y: SOFTMAX.loss(ZEROS, X, y), "SoftmaxRegression.loss"),
])
def test_a_bad_X_names_the_function_called(call, owner):
    with pytest.raises(ValueError, match=rf"^The 'X' parameter of {re.escape(owner)} must have"):
        call(np.zeros((6, X.shape[1] + 1)), Y[:6])
