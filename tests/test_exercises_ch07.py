import math
from statistics import NormalDist

import numpy as np
import pytest
from exercise_helpers import assert_hint, raises

from flcourse.exercises import ch07


# Exercise 1: the server's step of federated mean imputation
def global_means(sums, counts):
    return sums.sum(axis=0) / counts.sum(axis=0)


def test_exercise_1_accepts_total_sum_over_total_count(capsys):
    assert ch07.exercise_1(global_means) is True
    out = capsys.readouterr().out
    assert out.startswith("Correct.") and "without pooling" in out


def test_exercise_1_case_has_clients_that_never_saw_a_feature():
    """The case the hints rely on: zero counts, and clients of very different sizes."""
    parts, sums, counts = ch07.imputation_case()
    assert (counts.sum(axis=0) > 0).all()
    unrecorded = [k for k, X in enumerate(parts) if len(X) >= 20 and (counts[k] == 0).sum() >= 16]
    assert unrecorded, "no large client that never recorded 16 pixels"
    assert counts.sum(axis=1).max() > 10 * counts.sum(axis=1).min()
    pooled = np.concatenate(parts)
    for j in range(pooled.shape[1]):  # the reference, by a loop over the pooled column
        observed = [v for v in pooled[:, j] if not math.isnan(v)]
        assert abs(global_means(sums, counts)[j] - sum(observed) / len(observed)) <= 1e-12


@pytest.mark.parametrize("answer, hint", [
    (lambda s, c: np.mean(s / c, axis=0), "your means hold nan"),
    (lambda s, c: np.nanmean(s / c, axis=0), "the plain average of the clients' own means"),
    (lambda s, c: s.sum(axis=0) / len(s), "not by the number of clients"),
    (lambda s, c: c.sum(axis=0) / s.sum(axis=0), "upside down"),
    (lambda s, c: s.sum(axis=1) / c.sum(axis=1), "shape (64,)"),
    (lambda s, c: s / c, "shape (64,)"),
])
def test_exercise_1_names_the_mistake(answer, hint, capsys):
    assert ch07.exercise_1(answer) is False
    assert_hint(capsys, hint)


# Exercise 2: the NaN-safe coordinate-wise median
def safe_median(updates):
    return np.median(updates[np.isfinite(updates).all(axis=1)], axis=0)


def test_exercise_2_accepts_the_median_of_the_finite_rows(capsys):
    assert ch07.exercise_2(safe_median) is True
    assert capsys.readouterr().out.startswith("Correct.")


def test_exercise_2_reference_is_the_median_of_finite_rows_by_a_loop():
    from flcourse.federated.defences import median
    for updates in ch07.median_cases():
        rows = [row for row in updates.tolist() if all(math.isfinite(v) for v in row)]
        for j in range(updates.shape[1]):
            values = sorted(row[j] for row in rows)
            n = len(values)
            expected = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
            assert abs(median(updates)[j] - expected) <= 1e-12


def finite(updates):
    return updates[np.isfinite(updates).all(axis=1)]


@pytest.mark.parametrize("answer, hint", [
    (lambda u: np.median(u, axis=0), "np.median returns nan"),
    (lambda u: np.nanmedian(u, axis=0), "keeps the rest of a half-nan row"),
    (lambda u: np.nanmedian(np.where(np.isfinite(u), u, np.nan), axis=0), "drop every row with a non-finite"),
    (lambda u: np.median(u[~np.isnan(u).any(axis=1)], axis=0), "inf is not nan"),
    (lambda u: finite(u).mean(axis=0), "that is the mean of the finite rows"),
    (lambda u: np.sort(finite(u), axis=0)[len(finite(u)) // 2], "mean of the two middle values"),
    (lambda u: np.sort(finite(u), axis=0)[(len(finite(u)) - 1) // 2], "mean of the two middle values"),
    (lambda u: np.median(finite(u), axis=1), "the median over the clients (axis 0)"),
])
def test_exercise_2_names_the_mistake(answer, hint, capsys):
    assert ch07.exercise_2(answer) is False
    assert_hint(capsys, hint)


# Exercise 3: ALIE's z
inv_cdf = NormalDist().inv_cdf


def alie_z(n, f):
    s = math.floor(n / 2 + 1) - f
    return inv_cdf((n - f - s) / (n - f))


def test_exercise_3_accepts_the_formula(capsys):
    assert ch07.exercise_3(alie_z) is True
    out = capsys.readouterr().out
    assert out.startswith("Correct.") and "1.426" in out


def test_exercise_3_paper_example_by_hand():
    """n = 50, f = 24: s = 26 - 24 = 2 and z = Φ⁻¹(24 / 26), about 1.43 (Baruch et al. 2019)."""
    from flcourse.federated.attacks import alie_z as reference
    assert reference(50, 24) == pytest.approx(inv_cdf(24 / 26), abs=1e-12)
    assert 1.42 < reference(50, 24) < 1.43


def with_s(s_of, honest=lambda n, f: n - f, total=lambda n, f: n - f):
    return lambda n, f: inv_cdf((honest(n, f) - s_of(n, f)) / total(n, f))


@pytest.mark.parametrize("answer, hint", [
    (with_s(lambda n, f: n / 2 + 1 - f), "take the floor of n/2 + 1"),
    (with_s(lambda n, f: math.ceil(n / 2 + 1) - f), "the floor, not the ceiling"),
    (with_s(lambda n, f: n // 2 + 1), "subtract f from"),
    (with_s(lambda n, f: n // 2 + 1 - f, total=lambda n, f: n), "not by n"),
    (with_s(lambda n, f: n // 2 + 1 - f, honest=lambda n, f: n, total=lambda n, f: n), "not (n - s) / n"),
    (lambda n, f: NormalDist().cdf((n - f - (n // 2 + 1 - f)) / (n - f)), "not .cdf"),
    (lambda n, f: -alie_z(n, f), "mind the sign"),
    (lambda n, f: 1.0, "is not Φ⁻¹"),
])
def test_exercise_3_names_the_mistake(answer, hint, capsys):
    assert ch07.exercise_3(answer) is False
    assert_hint(capsys, hint)


def test_exercise_3_explains_a_probability_out_of_range(capsys):
    answer = with_s(lambda n, f: n // 2 + 1)
    assert ch07.exercise_3(lambda n, f: answer(n, f) if n != 100 else alie_z(n, f)) is False
    assert_hint(capsys, "inv_cdf needs p in (0, 1)")


# Exercise 4: a round on the simulated clock
def settle(arrivals, deadline=None, n_wanted=None, timeout=math.inf):
    """Written with sorted lists, not numpy: an independent reference."""
    if deadline is not None:
        kept = [k for k, t in enumerate(arrivals) if t <= deadline]
        return kept, max(arrivals) if len(kept) == len(arrivals) else deadline
    order = sorted(range(len(arrivals)), key=lambda k: (arrivals[k], k))
    arrived = [k for k in order if arrivals[k] <= timeout]
    if len(arrived) >= n_wanted:
        return sorted(arrived[:n_wanted]), arrivals[arrived[n_wanted - 1]]
    return sorted(arrived), timeout


def test_exercise_4_accepts_the_rules(capsys):
    assert ch07.exercise_4(settle) is True
    assert capsys.readouterr().out.startswith("Correct.")


def test_exercise_4_accepts_kept_in_arrival_order(capsys):
    def arrival_order(arrivals, deadline, n_wanted, timeout):
        kept, duration = settle(arrivals, deadline, n_wanted, timeout)
        return sorted(kept, key=lambda k: (arrivals[k], k)), duration
    assert ch07.exercise_4(arrival_order) is True


def test_exercise_4_matches_simtime_settle_round():
    from flcourse.federated.simtime import settle_round
    for arrivals, deadline, n_wanted, timeout in ch07.ROUND_CASES:
        kept, duration = settle_round(arrivals, deadline=deadline, n_wanted=n_wanted, timeout=timeout)
        assert (kept.tolist(), duration) == settle(arrivals, deadline, n_wanted, timeout)


def changed(kept_of=None, duration_of=None):
    def answer(arrivals, deadline, n_wanted, timeout):
        kept, duration = settle(arrivals, deadline, n_wanted, timeout)
        case = (arrivals, deadline, n_wanted, timeout)
        return (kept_of(*case) if kept_of else kept), (duration_of(kept, *case) if duration_of else duration)
    return answer


def by_deadline(rule):
    """Change only the deadline rounds: ``rule(kept, arrivals, d)`` gives the new duration."""
    return changed(duration_of=lambda kept, a, d, K, T: rule(kept, a, d) if d is not None else settle(a, d, K, T)[1])


def by_count(rule):
    return changed(duration_of=lambda kept, a, d, K, T: rule(kept, a, K, T) if K is not None else settle(a, d, K, T)[1])


@pytest.mark.parametrize("answer, hint", [
    (changed(kept_of=lambda a, d, K, T: [k for k, t in enumerate(a) if t < d] if d else settle(a, d, K, T)[0]),
     "exactly at the deadline is on time"),
    (by_deadline(lambda kept, a, d: d), "so the round ends with the last of them"),
    (by_deadline(lambda kept, a, d: max((a[k] for k in kept), default=d)), "the server waits until the deadline"),
    (by_deadline(lambda kept, a, d: max(a)), "the server waits until the deadline"),
    (changed(kept_of=lambda a, d, K, T: sorted(sorted(range(len(a)), key=lambda k: (a[k], -k))[:K])
             if K else settle(a, d, K, T)[0]), "the lower index comes first"),
    (changed(kept_of=lambda a, d, K, T: sorted(range(len(a)), key=lambda k: (a[k], k))[:K]
             if K else settle(a, d, K, T)[0]), "dropped out"),
    (by_count(lambda kept, a, K, T: sorted(a)[K] if len(kept) == K else T), "ends when the K-th update arrives"),
    (by_count(lambda kept, a, K, T: max(a[k] for k in kept)), "waits until the timeout"),
    (lambda a, d, K, T: settle(a, d, K, T)[0], "return a pair"),
    (lambda a, d, K, T: (["a"], 1.0), "indices into arrivals"),
])
def test_exercise_4_names_the_mistake(answer, hint, capsys):
    assert ch07.exercise_4(answer) is False
    assert_hint(capsys, hint)


@pytest.mark.parametrize("exercise", [ch07.exercise_1, ch07.exercise_2, ch07.exercise_3, ch07.exercise_4])
def test_an_exception_in_the_answer_becomes_a_hint(exercise, capsys):
    assert exercise(raises) is False
    assert "raised ValueError: boom" in capsys.readouterr().out
