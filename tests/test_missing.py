import math

import numpy as np
import pytest

from flcourse.data import missing as ms


def federation(seed=0, sizes=(5, 9, 14, 3), n_features=6):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, n_features)) for n in sizes]


def with_gaps(seed=0):
    """A federation with MCAR gaps, a column client 1 never recorded, and a column nobody did."""
    parts = ms.missing_at_random(federation(seed), 0.3, seed=seed)
    parts[1][:, 2] = np.nan
    for X in parts:
        X[:, 5] = np.nan
    return parts


# Plain references: loops over lists, no numpy reductions.
def column_mean(values, fallback):
    observed = [v for v in values if not math.isnan(v)]
    return sum(observed) / len(observed) if observed else fallback


def fill_loop(X, means):
    return np.array([[means[j] if math.isnan(v) else v for j, v in enumerate(row)] for row in X.tolist()])


def columns_of(parts):
    return [[row[j] for X in parts for row in X.tolist()] for j in range(parts[0].shape[1])]


# Missing completely at random
def test_mcar_loses_values_at_the_rate():
    X = np.ones((2000, 50))
    lost = np.isnan(ms.missing_at_random(X, 0.2, seed=0)).mean()
    assert abs(lost - 0.2) < 4 * math.sqrt(0.2 * 0.8 / X.size)


@pytest.mark.parametrize("rate, lost", [(0.0, 0.0), (1.0, 1.0)])
def test_mcar_edge_rates(rate, lost):
    assert np.isnan(ms.missing_at_random(np.ones((20, 3)), rate, seed=1)).mean() == lost


def test_mcar_keeps_other_values_and_the_input():
    parts = federation()
    copies = [X.copy() for X in parts]
    out = ms.missing_at_random(parts, 0.4, seed=3)
    for X, before, after in zip(parts, copies, out):
        assert np.array_equal(X, before)
        kept = ~np.isnan(after)
        assert np.array_equal(after[kept], X[kept])


def test_mcar_mask_depends_on_the_seed_and_client_id_only():
    parts = federation()
    out = ms.missing_at_random(parts, 0.3, seed=7)
    fewer = ms.missing_at_random(parts[:2], 0.3, seed=7)
    for k, X in enumerate(parts):
        rng = np.random.default_rng([7, 1, k])
        expected = [[rng.random() < 0.3 for _ in row] for row in X]  # row-major, as numpy draws
        assert np.array_equal(np.isnan(out[k]), np.array(expected, dtype=bool).reshape(X.shape))
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(fewer, out))


def test_mcar_of_one_array_is_client_zero():
    X = federation()[0]
    assert np.array_equal(ms.missing_at_random(X, 0.5, seed=2), ms.missing_at_random([X], 0.5, seed=2)[0],
                          equal_nan=True)


# Missing not at random
def test_unrecorded_columns_hit_the_chosen_clients_only():
    parts = federation(sizes=(4,) * 30, n_features=10)
    columns = ms.unrecorded_columns(30, 10, client_fraction=0.5, n_unrecorded=3, seed=5)
    out = ms.missing_not_at_random(parts, client_fraction=0.5, n_unrecorded=3, seed=5)
    chosen = [k for k, cols in enumerate(columns) if len(cols)]
    assert 0 < len(chosen) < 30
    for k, (X, after, cols) in enumerate(zip(parts, out, columns)):
        missing = sorted(j for j in range(10) if all(math.isnan(v) for v in after[:, j]))
        assert missing == cols.tolist()
        assert len(cols) in (0, 3) and len(set(cols.tolist())) == len(cols)
        assert not np.isnan(np.delete(after, cols, axis=1)).any()
        assert np.array_equal(np.delete(after, cols, axis=1), np.delete(X, cols, axis=1))


def test_unrecorded_clients_come_at_the_fraction_and_depend_on_the_id():
    columns = ms.unrecorded_columns(4000, 8, client_fraction=0.25, n_unrecorded=2, seed=0)
    share = np.mean([len(cols) > 0 for cols in columns])
    assert abs(share - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 4000)
    fewer = ms.unrecorded_columns(10, 8, client_fraction=0.25, n_unrecorded=2, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(fewer, columns))


def test_self_masking_loses_exactly_the_values_above_the_threshold():
    parts = federation()
    threshold = np.linspace(-0.5, 0.5, 6)
    out = ms.missing_not_at_random(parts, n_unrecorded=0, threshold=threshold, seed=0)
    for X, after in zip(parts, out):
        for i, row in enumerate(X.tolist()):
            for j, v in enumerate(row):
                assert math.isnan(after[i, j]) == (v > threshold[j])
                assert math.isnan(after[i, j]) or after[i, j] == v


def test_self_masking_at_a_rate_loses_part_of_the_high_values():
    X = np.random.default_rng(0).random((3000, 4))
    after = ms.missing_not_at_random([X], threshold=0.5, rate=0.4, seed=1)[0]
    high = X > 0.5
    assert not np.isnan(after[~high]).any()
    assert abs(np.isnan(after[high]).mean() - 0.4) < 4 * math.sqrt(0.24 / high.sum())


# Imputation
def test_drop_incomplete_rows_against_a_loop():
    parts = with_gaps()
    parts[0][:2] = 1.0  # client 0 has two complete rows, the others none
    y_parts = [np.arange(len(X)) for X in parts]
    X_kept, y_kept = ms.drop_incomplete_rows(parts, y_parts)
    for X, y, Xk, yk in zip(parts, y_parts, X_kept, y_kept):
        rows = [i for i, row in enumerate(X.tolist()) if not any(math.isnan(v) for v in row)]
        assert yk.tolist() == [int(y[i]) for i in rows]
        assert np.array_equal(Xk, X[rows].reshape(len(rows), X.shape[1]))
    assert len(X_kept[0]) >= 2 and all(len(X) == 0 for X in X_kept[1:])


def test_local_mean_impute_against_a_loop():
    parts = with_gaps()
    out = ms.local_mean_impute(parts, fallback=-1.0)
    for X, filled in zip(parts, out):
        means = [column_mean(col, -1.0) for col in columns_of([X])]
        np.testing.assert_allclose(filled, fill_loop(X, means), rtol=0, atol=1e-12)
    assert np.all(out[1][:, 2] == -1.0) and np.all(out[0][:, 5] == -1.0)


def test_client_sums_and_counts_against_a_loop():
    X = with_gaps()[2]
    sums, counts = ms.client_sums_and_counts(X)
    for j, col in enumerate(columns_of([X])):
        observed = [v for v in col if not math.isnan(v)]
        assert counts[j] == len(observed)
        assert abs(sums[j] - sum(observed)) <= 1e-12


@pytest.mark.parametrize("impute", [ms.federated_mean_impute, ms.centralised_mean_impute])
def test_global_mean_imputations_against_a_loop(impute):
    parts = with_gaps()
    means = [column_mean(col, 0.5) for col in columns_of(parts)]
    for X, filled in zip(parts, impute(parts, fallback=0.5)):
        np.testing.assert_allclose(filled, fill_loop(X, means), rtol=0, atol=1e-12)


def test_federated_equals_centralised():
    parts = ms.missing_not_at_random(federation(3, sizes=(40, 7, 120, 1, 60)), client_fraction=0.6,
                                     n_unrecorded=2, threshold=1.0, rate=0.5, seed=3)
    parts = ms.missing_at_random(parts, 0.2, seed=4)
    for a, b in zip(ms.federated_mean_impute(parts), ms.centralised_mean_impute(parts)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_aggregate_means_is_what_the_server_computes():
    parts = with_gaps()
    sums, counts = map(np.array, zip(*(ms.client_sums_and_counts(X) for X in parts)))
    expected = [column_mean(col, 9.0) for col in columns_of(parts)]
    np.testing.assert_allclose(ms.aggregate_means(sums, counts, fallback=9.0), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ms.IMPUTATIONS))
def test_no_nan_remains_and_observed_values_stay(name):
    parts = with_gaps()
    for X, filled in zip(parts, ms.IMPUTATIONS[name](parts)):
        assert not np.isnan(filled).any()
        assert np.array_equal(filled[~np.isnan(X)], X[~np.isnan(X)])


# Bad input
@pytest.mark.parametrize("call, error, message", [
    (lambda: ms.missing_at_random(np.ones((3, 2)), 1.5), ValueError,
     "The 'rate' parameter of missing_at_random must be a float in [0, 1]. Got 1.5 instead."),
    (lambda: ms.missing_at_random(np.ones((3, 2)), 0.1, seed=-1), TypeError, "'seed' parameter"),
    (lambda: ms.local_mean_impute(np.ones((3, 2))), TypeError, "must be a non-empty list of 2-D arrays"),
    (lambda: ms.local_mean_impute([]), TypeError, "must be a non-empty list"),
    (lambda: ms.federated_mean_impute([np.ones((3, 2)), np.ones((3, 3))]), ValueError,
     "Got shape (3, 3) for client 1"),
    (lambda: ms.centralised_mean_impute([np.full((2, 2), np.inf)]), ValueError, "Got inf in client 0"),
    (lambda: ms.local_mean_impute([np.ones((2, 2))], fallback=math.nan), ValueError, "'fallback'"),
    (lambda: ms.drop_incomplete_rows([np.ones((3, 2))], [np.ones(2)]), ValueError,
     "Got shape (2,) for client 0"),
    (lambda: ms.drop_incomplete_rows([np.ones((3, 2))], []), ValueError, "list of 1 label arrays"),
    (lambda: ms.missing_not_at_random([np.ones((3, 2))], threshold=[1, 2, 3]), ValueError,
     "shape (2,) without nan"),
    (lambda: ms.missing_not_at_random([np.ones((3, 2))], n_unrecorded=3), ValueError,
     "The 'n_unrecorded' parameter of unrecorded_columns must be an int in [0, 2]"),
    (lambda: ms.aggregate_means(np.ones((2, 3)), np.ones((2, 2))), ValueError, "Got shapes (2, 3) and (2, 2)"),
    (lambda: ms.aggregate_means(np.ones((2, 3)), -np.ones((2, 3))), ValueError, "counts >= 0"),
    (lambda: ms.missing_at_random([np.array([["a"]])], 0.1), TypeError, "array of real numbers"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
