"""The defences against independent plain versions written here (loops, sorted lists, <= 1e-12);
the properties the course states (permutation invariance, the mean as a special case, the
breakdown point, Krum's hand-computed choice); non-finite rows never selected nor propagated;
the parameter errors."""
import functools
import math
import statistics

import numpy as np
import pytest

from flcourse.federated.defences import (DEFENCES, bucket_means, bucketing, bulyan, centered_clipping,
                                         clip_to_norm, geometric_median, krum, krum_scores, mean, median,
                                         multi_krum, norm_bounding, trimmed_mean)

N, D = 11, 4


@pytest.fixture
def stack():
    return np.random.default_rng(7).normal(size=(N, D))


# --- plain versions: lists of rows, one coordinate or one pair at a time -----------------------

def rows_of(updates):
    return [list(map(float, row)) for row in updates]


def sq_dist(a, b):
    return sum((x - y) ** 2 for x, y in zip(a, b))


def plain_mean(rows):
    return [sum(column) / len(column) for column in zip(*rows)]


def plain_median(rows):
    return [statistics.median(column) for column in zip(*rows)]


def plain_trimmed_mean(rows, beta):
    k = math.floor(beta * len(rows))
    kept = [sorted(column)[k:len(rows) - k] for column in zip(*rows)]
    return [sum(values) / len(values) for values in kept]


def plain_krum_scores(rows, f, n_neighbours=None):
    n_neighbours = len(rows) - f - 2 if n_neighbours is None else n_neighbours
    return [sum(sorted(sq_dist(a, b) for j, b in enumerate(rows) if j != i)[:n_neighbours])
            for i, a in enumerate(rows)]


def plain_multi_krum(rows, f, m):
    scores = plain_krum_scores(rows, f)
    best = sorted(range(len(rows)), key=lambda i: (scores[i], i))[:m]
    return plain_mean([rows[i] for i in best]), best


def plain_bulyan(rows, f):
    pool, chosen = list(range(len(rows))), []
    while len(chosen) < len(rows) - 2 * f:
        r = len(pool)
        among = [rows[i] for i in pool]
        scores = plain_krum_scores(among, f, min(max(1, r - f - 2), r - 1))
        totals = [sum(sq_dist(a, b) for b in among) for a in among]
        chosen.append(pool.pop(min(range(r), key=lambda k: (scores[k], totals[k], k))))
    beta = len(chosen) - 2 * f
    result = []
    for column in zip(*[rows[i] for i in chosen]):
        middle = statistics.median(column)
        closest = sorted(column, key=lambda v: abs(v - middle))[:beta]
        result.append(sum(closest) / beta)
    return result, chosen


def plain_geometric_median(rows, weights, nu=1e-6, max_iter=100, tol=1e-10):
    total = sum(weights)
    z = [sum(w * row[j] for w, row in zip(weights, rows)) / total for j in range(len(rows[0]))]
    objective = sum(w * math.dist(z, row) for w, row in zip(weights, rows))
    for _ in range(max_iter):
        b = [w / max(nu, math.dist(z, row)) for w, row in zip(weights, rows)]
        z = [sum(bi * row[j] for bi, row in zip(b, rows)) / sum(b) for j in range(len(rows[0]))]
        previous, objective = objective, sum(w * math.dist(z, row) for w, row in zip(weights, rows))
        if abs(previous - objective) <= tol * objective:
            break
    return z


def plain_clip(z, tau):
    norm = math.sqrt(sum(x * x for x in z))
    return list(z) if norm <= tau else [x * tau / norm for x in z]


def plain_centered_clipping(rows, tau, center, n_iter):
    v = list(center)
    for _ in range(n_iter):
        clipped = [plain_clip([x - c for x, c in zip(row, v)], tau) for row in rows]
        v = [c + s for c, s in zip(v, plain_mean(clipped))]
    return v


def plain_bucketing(rows, s, seed, aggregator):
    order = np.random.default_rng(seed).permutation(len(rows)).tolist()
    buckets = [[rows[i] for i in order[first:first + s]] for first in range(0, len(rows), s)]
    return aggregator([plain_mean(bucket) for bucket in buckets])


# --- every defence, as a function of the stack alone -------------------------------------------

EVERY = {
    "mean": mean,
    "median": median,
    "trimmed_mean": functools.partial(trimmed_mean, beta=0.2),
    "krum": functools.partial(krum, n_byzantine=2),
    "multi_krum": functools.partial(multi_krum, n_byzantine=2, n_selected=4),
    "bulyan": functools.partial(bulyan, n_byzantine=2),
    "geometric_median": geometric_median,
    "centered_clipping": functools.partial(centered_clipping, tau=0.8, n_iter=3),
    "norm_bounding": functools.partial(norm_bounding, bound=1.0),
    "bucketing": functools.partial(bucketing, bucket_size=1, aggregator=median, rng=3),
}


def test_the_registry_names_every_aggregator():
    assert set(DEFENCES) == set(EVERY) - {"bucketing"}
    assert all(DEFENCES[name] is (EVERY[name].func if isinstance(EVERY[name], functools.partial)
                                  else EVERY[name]) for name in DEFENCES)


@pytest.mark.parametrize("name", sorted(EVERY))
def test_every_defence_is_invariant_under_a_permutation_of_the_clients(stack, name):
    permutation = np.random.default_rng(1).permutation(N)

    np.testing.assert_allclose(EVERY[name](stack[permutation]), EVERY[name](stack), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name, expected", [
    ("median", lambda rows: plain_median(rows)),
    ("trimmed_mean", lambda rows: plain_trimmed_mean(rows, 0.2)),
    ("krum", lambda rows: plain_multi_krum(rows, 2, 1)[0]),
    ("multi_krum", lambda rows: plain_multi_krum(rows, 2, 4)[0]),
    ("bulyan", lambda rows: plain_bulyan(rows, 2)[0]),
    ("geometric_median", lambda rows: plain_geometric_median(rows, [1.0] * len(rows))),
    ("centered_clipping", lambda rows: plain_centered_clipping(rows, 0.8, [0.0] * D, 3)),
    ("norm_bounding", lambda rows: plain_mean([plain_clip(row, 1.0) for row in rows])),
    ("bucketing", lambda rows: plain_bucketing(rows, 1, 3, plain_median)),
])
def test_every_defence_equals_a_plain_version(stack, name, expected):
    np.testing.assert_allclose(EVERY[name](stack), expected(rows_of(stack)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [9, 10, 12])
def test_trimmed_mean_and_bulyan_equal_their_plain_versions_at_other_sizes(n):
    updates = np.random.default_rng(n).normal(size=(n, 3))
    rows = rows_of(updates)

    for beta in (0.1, 0.25, 0.49):
        np.testing.assert_allclose(trimmed_mean(updates, beta), plain_trimmed_mean(rows, beta), rtol=0, atol=1e-12)
    for f in range(0, (n - 3) // 4 + 1):
        aggregate, selected = bulyan(updates, f, return_selected=True)
        expected, chosen = plain_bulyan(rows, f)
        np.testing.assert_allclose(aggregate, expected, rtol=0, atol=1e-12)
        assert selected.tolist() == chosen


def test_krum_scores_and_selection_equal_the_plain_ones(stack):
    aggregate, selected = multi_krum(stack, 3, 5, return_selected=True)
    expected, best = plain_multi_krum(rows_of(stack), 3, 5)

    np.testing.assert_allclose(krum_scores(stack, 3), plain_krum_scores(rows_of(stack), 3), rtol=1e-12)
    assert selected.tolist() == best
    np.testing.assert_allclose(aggregate, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("s", [2, 3, 4, 11, 20])
def test_bucketing_equals_a_plain_version_and_keeps_a_smaller_last_bucket(stack, s):
    means, buckets = bucket_means(stack, s, 5)

    np.testing.assert_allclose(bucketing(stack, s, median, 5), plain_bucketing(rows_of(stack), s, 5, plain_median),
                               rtol=0, atol=1e-12)
    assert len(means) == math.ceil(N / s) and [len(b) for b in buckets[:-1]] == [min(s, N)] * (len(buckets) - 1)
    assert sorted(np.concatenate(buckets).tolist()) == list(range(N))


@pytest.mark.parametrize("aggregate", [
    lambda x: trimmed_mean(x, 0.0),
    lambda x: multi_krum(x, 0, len(x)),
    lambda x: norm_bounding(x, 1e300),
    lambda x: norm_bounding(x, math.inf),
    lambda x: centered_clipping(x, math.inf, center=np.ones(D)),
    lambda x: bucketing(x, 1, mean, 0),
    lambda x: bulyan(x, 0),
], ids=["trimmed beta=0", "multi-krum m=n f=0", "norm bound huge", "norm bound inf", "cclip tau=inf",
        "bucketing s=1", "bulyan f=0"])
def test_each_defence_is_the_mean_where_it_should_be(stack, aggregate):
    np.testing.assert_allclose(aggregate(stack), plain_mean(rows_of(stack)), rtol=0, atol=1e-12)


def test_the_geometric_median_of_identical_rows_is_that_row():
    row = np.array([0.3, -1.7, 2.5])

    np.testing.assert_allclose(geometric_median(np.tile(row, (6, 1))), row, rtol=0, atol=1e-12)


def test_geometric_median_weights_count_like_repeated_rows(stack):
    repeated = np.concatenate([stack, stack[:3], stack[:1]])
    weights = np.ones(N)
    weights[:3] += 1
    weights[0] += 1

    np.testing.assert_allclose(geometric_median(stack, weights=weights), geometric_median(repeated),
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(geometric_median(stack, weights=weights),
                               plain_geometric_median(rows_of(stack), weights.tolist()), rtol=0, atol=1e-12)


def test_the_geometric_median_keeps_its_digits_beside_far_updates(stack):
    far = stack.copy()
    far[:3] = 1e5  # centred on the mean, the honest rows' distances would lose ~8 digits

    np.testing.assert_allclose(geometric_median(far), plain_geometric_median(rows_of(far), [1.0] * N),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [9, 10])
def test_the_median_resists_half_minus_one_huge_updates_but_not_half(n):
    honest = np.random.default_rng(n).uniform(-1, 1, size=(n, D))
    n_bad = (n - 1) // 2
    held, broken = honest.copy(), honest.copy()
    held[:n_bad], broken[:n_bad + 1] = 1e12, 1e12
    low, high = honest[n_bad:].min(axis=0), honest[n_bad:].max(axis=0)
    high_broken = honest[n_bad + 1:].max(axis=0)

    assert np.all((median(held) >= low) & (median(held) <= high))
    assert np.all(median(broken) > high_broken)
    assert np.all(mean(np.vstack([honest[1:], np.full(D, 1e12)])) > honest[1:].max(axis=0))  # one moves the mean


def test_krum_makes_the_hand_computed_choice():
    # points 0, 1, 3, 10, -2 on a line; f = 1, so each is scored by its n - f - 2 = 2 nearest:
    # 0: 1 + 4 = 5,  1: 1 + 4 = 5,  3: 4 + 9 = 13,  10: 49 + 81 = 130,  -2: 4 + 9 = 13
    updates = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [10.0, 0.0], [-2.0, 0.0]])

    assert krum_scores(updates, 1).tolist() == [5.0, 5.0, 13.0, 130.0, 13.0]
    assert np.array_equal(krum(updates, 1), [0.0, 0.0])  # the tie 0 / 1 goes to the lowest position
    aggregate, selected = multi_krum(updates, 1, 3, return_selected=True)
    assert selected.tolist() == [0, 1, 2] and np.allclose(aggregate, [4 / 3, 0.0], rtol=0, atol=1e-15)


def test_krum_never_selects_one_of_f_far_updates(stack):
    far = stack.copy()
    far[[2, 5, 8]] = 1e6 + np.arange(3)[:, None]

    _, selected = multi_krum(far, 3, N - 3, return_selected=True)

    assert not {2, 5, 8} & set(selected.tolist())


def test_rows_whose_squares_overflow_are_still_clipped_and_never_selected(stack):
    huge = stack.copy()
    huge[[0, 1]] = 1e200  # finite, but their squared norms are inf

    np.testing.assert_allclose(np.linalg.norm(clip_to_norm(huge, 2.0)[:2], axis=1), [2.0, 2.0], rtol=1e-12)
    assert not {0, 1} & set(multi_krum(huge, 2, N - 2, return_selected=True)[1].tolist())
    assert not {0, 1} & set(bulyan(huge, 2, return_selected=True)[1].tolist())
    huge[:5] = 1e200  # beyond the budget: a score may be inf, never NaN (inf - inf)
    assert not np.isnan(krum_scores(huge, 0)).any()


# --- non-finite rows -------------------------------------------------------------------------

BAD_ROWS = {"nan": [np.nan, 0, 0, 0], "inf": [0, np.inf, 0, 0], "-inf and nan": [-np.inf, 0, np.nan, 0]}


@pytest.mark.parametrize("bad", sorted(BAD_ROWS))
@pytest.mark.parametrize("name", sorted(EVERY))
def test_no_defence_selects_or_propagates_a_non_finite_row(stack, name, bad):
    poisoned = stack.copy()
    poisoned[[1, 6]] = BAD_ROWS[bad]
    finite = np.delete(stack, [1, 6], axis=0)
    on_finite = {"krum": functools.partial(krum, n_byzantine=0),  # two rows used up f = 2
                 "multi_krum": functools.partial(multi_krum, n_byzantine=0, n_selected=4),
                 "bulyan": functools.partial(bulyan, n_byzantine=0)}.get(name, EVERY[name])

    result = EVERY[name](poisoned)

    assert np.isfinite(result).all()
    np.testing.assert_allclose(result, on_finite(finite), rtol=0, atol=1e-12)


def test_selecting_defences_report_only_finite_rows_and_score_the_others_inf(stack):
    poisoned = stack.copy()
    poisoned[[0, 4]] = np.nan

    scores = krum_scores(poisoned, 2)
    assert np.isinf(scores[[0, 4]]).all() and np.isfinite(np.delete(scores, [0, 4])).all()
    assert not {0, 4} & set(multi_krum(poisoned, 2, N, return_selected=True)[1].tolist())
    assert not {0, 4} & set(bulyan(poisoned, 2, return_selected=True)[1].tolist())
    assert clip_to_norm(poisoned, 1.0).shape == (N - 2, D)
    assert not {0, 4} & set(np.concatenate(bucket_means(poisoned, 3, 0)[1]).tolist())


def test_naive_median_and_krum_fail_on_a_nan_row_where_ours_do_not(stack):
    # Flower's aggregate_median and aggregate_krum: np.median over the stack, argmin of the scores
    poisoned = stack.copy()
    poisoned[3] = np.nan
    naive_distances = ((poisoned[:, None, :] - poisoned[None, :, :]) ** 2).sum(axis=2)
    naive_scores = np.sort(naive_distances, axis=1)[:, 1:1 + N - 1 - 2].sum(axis=1)  # f = 1

    assert np.isnan(np.median(poisoned, axis=0)).all()
    assert np.argmin(naive_scores) == 3  # argmin returns the first NaN
    assert np.isfinite(median(poisoned)).all()
    assert krum(poisoned, 1, return_selected=True)[1][0] != 3


def test_a_defence_on_rows_that_are_all_non_finite_is_an_error():
    with pytest.raises(ValueError, match="'updates' parameter of median must hold at least one row of finite"):
        median(np.full((3, 2), np.nan))


def test_more_non_finite_rows_than_the_budget_may_leave_too_few_for_krum(stack):
    with pytest.raises(ValueError, match=r"'updates' parameter of krum must leave enough finite rows for "
                                         r"2f \+ 2 < n \(f' = 0\). Got 2 finite rows of 5"):
        krum(np.concatenate([stack[:2], np.full((3, D), np.nan)]), 1)


# --- parameter errors ------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, message", [
    (lambda x: krum(x[:6], 2), ValueError, r"'n_byzantine' parameter of krum must satisfy 2f \+ 2 < n for "
                                           r"n = 6 updates. Got 2 instead"),
    (lambda x: krum_scores(x, -1), ValueError, r"'n_byzantine' parameter of krum_scores must be an int in \[0"),
    (lambda x: multi_krum(x, 1.5, 2), TypeError, "'n_byzantine' parameter of multi_krum must be an int"),
    (lambda x: multi_krum(x, 1, 0), ValueError, r"'n_selected' parameter of multi_krum must be an int in \[1, 11\]"),
    (lambda x: multi_krum(x, 1, N + 1), ValueError, "'n_selected' parameter of multi_krum"),
    (lambda x: bulyan(x[:10], 2), ValueError, r"'n_byzantine' parameter of bulyan must satisfy n >= 4f \+ 3 "
                                              r"for n = 10 updates. Got 2 instead"),
    (lambda x: trimmed_mean(x, 0.7), ValueError, r"'beta' parameter of trimmed_mean must be a float in "
                                                 r"\[0, 0.5\). Got 0.7 instead"),
    (lambda x: trimmed_mean(x, 0.5), ValueError, "'beta' parameter of trimmed_mean"),
    (lambda x: trimmed_mean(x, -0.1), ValueError, "'beta' parameter of trimmed_mean"),
    (lambda x: trimmed_mean(x, math.nan), ValueError, "'beta' parameter of trimmed_mean"),
    (lambda x: norm_bounding(x, 0.0), ValueError, r"'bound' parameter of norm_bounding must be a float in \(0"),
    (lambda x: clip_to_norm(x, -1.0), ValueError, "'bound' parameter of clip_to_norm"),
    (lambda x: centered_clipping(x, 0.0), ValueError, "'tau' parameter of centered_clipping"),
    (lambda x: centered_clipping(x, 1.0, n_iter=0), ValueError, "'n_iter' parameter of centered_clipping"),
    (lambda x: centered_clipping(x, 1.0, center=np.zeros(D + 1)), ValueError,
     r"'center' parameter of centered_clipping must have shape \(4,\)"),
    (lambda x: centered_clipping(x, 1.0, center=np.full(D, np.nan)), ValueError, "'center' parameter"),
    (lambda x: geometric_median(x, smoothing=0.0), ValueError, "'smoothing' parameter of geometric_median"),
    (lambda x: geometric_median(x, max_iter=0), ValueError, "'max_iter' parameter of geometric_median"),
    (lambda x: geometric_median(x, tol=-1.0), ValueError, "'tol' parameter of geometric_median"),
    (lambda x: geometric_median(x, weights=np.ones(3)), ValueError,
     r"'weights' parameter of geometric_median must have one entry per update \(11\)"),
    (lambda x: geometric_median(x, weights=-np.ones(N)), ValueError, "'weights' parameter of geometric_median"),
    (lambda x: geometric_median(x * 1e200), ValueError, "'updates' parameter of geometric_median must hold rows"),
    (lambda x: bucketing(x, 0, median, 0), ValueError, "'bucket_size' parameter of bucketing"),
    (lambda x: bucketing(x, 2, "median", 0), TypeError, "'aggregator' parameter of bucketing must be callable"),
    (lambda x: bucketing(x, 2, median, "seed"), TypeError, "'rng' parameter of bucketing"),
    (lambda x: median(x[0]), ValueError, r"'updates' parameter of median must be a 2-D array .* Got an array "
                                         r"of shape \(4,\) instead"),
    (lambda x: mean(x[:0]), ValueError, "'updates' parameter of mean must hold at least one update"),
    (lambda x: median(x + 1j), TypeError, "'updates' parameter of median must be an array of real numbers"),
])
def test_bad_parameters_are_errors_in_the_house_form(stack, call, error, message):
    with pytest.raises(error, match=message):
        call(stack)


def test_every_defence_takes_a_list_of_rows(stack):
    for name, defence in EVERY.items():
        np.testing.assert_array_equal(defence(stack.tolist()), defence(stack), err_msg=name)
