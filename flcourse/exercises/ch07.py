"""Self-checks for notebook 07, incomplete data and unreliable clients.

Each ``exercise_N`` takes the learner's answer, prints "Correct. ..." or "Not yet. <hint>" and
returns a bool. The references are computed with ``flcourse`` itself: the server's step of
federated mean imputation, the NaN-safe coordinate-wise median of the defences, ALIE's z of the
attacks, and how a round settles on the simulated clock.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from ..data import load_digits, make_partition
from ..data.missing import aggregate_means, client_sums_and_counts, missing_at_random, missing_not_at_random
from ..federated.attacks import alie_z
from ..federated.defences import median
from ..federated.simtime import settle_round
from ._core import call, close, report

# Exercise 3: (n, f); odd n where the floor matters, and the paper's n = 50, f = 24.
ALIE_CASES = ((100, 20), (50, 24), (25, 5), (51, 10), (11, 3))
# Exercise 4: (arrivals, deadline, n_wanted, timeout).
ROUND_CASES = (([3.0, 1.0, 2.5], 5.0, None, math.inf), ([3.0, 7.0, 1.0, math.inf], 5.0, None, math.inf),
                ([2.0, 5.0], 5.0, None, math.inf), ([7.0, 9.0], 5.0, None, math.inf),
                ([6.0, 1.0, 8.0, 3.0, 2.0], None, 3, math.inf), ([4.0, 2.0, 2.0, 9.0, 2.0], None, 2, math.inf),
                ([5.0, math.inf, 3.0, math.inf], None, 3, 10.0), ([1.0, 2.0, 30.0, 40.0], None, 3, 20.0))


def _first(pairs, answer, **tolerance) -> str | None:
    """The hint of the first (hint, value) pair that ``answer`` matches."""
    return next((hint for hint, value in pairs if close(answer, value, **tolerance)), None)


def _holds_nan(answer, d: int) -> bool:
    """Whether ``answer`` is a vector of length d with a nan in it."""
    try:
        values = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return values.shape == (d,) and bool(np.isnan(values).any())


# ----------------------------------------------------------------------------- exercise 1
@lru_cache(maxsize=1)
def imputation_case():
    """Ten digits clients with gaps: (X_parts, sums, counts), sums and counts of shape (10, 64).

    Parts of very unequal sizes (``"quantity:0.5"``), about half the clients never record 16
    pixels, then 10% of the values are lost at random: some clients observe a column hundreds of
    times, some a few times, some never.
    """
    data = load_digits(seed=0)
    parts = [data.X_train[p] for p in make_partition("quantity:0.5", data.y_train, 10, seed=0)]
    parts = missing_not_at_random(parts, client_fraction=0.5, n_unrecorded=16, seed=1)
    parts = missing_at_random(parts, 0.1, seed=2)
    sums, counts = map(np.array, zip(*(client_sums_and_counts(X) for X in parts)))
    return parts, sums, counts


def exercise_1(global_means: Callable) -> bool:
    """Check ``global_means(sums, counts)``.

    Parameters
    ----------
    global_means : callable
        Called with two arrays of shape (n_clients, n_features): row k holds client k's sums of
        its observed values per feature, and how many it observed. Must return the server's
        means m_j = Σ_k sums[k, j] / Σ_k counts[k, j], shape (n_features,); every feature is
        observed by some client, though not by every one.
    """
    parts, sums, counts = imputation_case()
    with np.errstate(invalid="ignore", divide="ignore"):
        answer, error = call(global_means, sums.copy(), counts.copy())
    if error:
        return report(False, "", error)
    if close(answer, aggregate_means(sums, counts), rtol=1e-12, atol=1e-12):
        pooled = np.concatenate(parts)
        gap = np.abs(np.asarray(answer) - np.nanmean(pooled, axis=0)).max()
        return report(True, f"Each client sent two vectors, and the server's means differ from the "
                      f"pooled data's column means by at most {gap:.1e}: federated mean imputation "
                      "is centralised mean imputation, without pooling.", "")
    with np.errstate(invalid="ignore", divide="ignore"):
        local = sums / counts
        wrong = [("the plain average of the clients' own means weighs a client that observed a "
                  "feature 3 times as much as one that observed it 300 times: divide the total sum "
                  "by the total count.", np.nanmean(local, axis=0)),
                 ("divide by the number of observed values, Σ_k counts[k], not by the number of "
                  "clients.", sums.sum(axis=0) / len(sums)),
                 ("that is upside down: a mean is a sum divided by a count.", counts.sum(axis=0) / sums.sum(axis=0))]
    if _holds_nan(answer, sums.shape[1]):
        return report(False, "", "your means hold nan: a client that never recorded a feature has "
                      "count 0 there, and 0/0 is nan. Add up the sums and the counts over the clients "
                      "first, then divide once.")
    hint = _first(wrong, answer, rtol=1e-12, atol=1e-12)
    return report(False, "", hint or f"return one mean per feature, shape ({sums.shape[1]},): "
                  "sums.sum(axis=0) / counts.sum(axis=0).")


# ----------------------------------------------------------------------------- exercise 2
def median_cases() -> list[np.ndarray]:
    """Stacks of updates with broken rows: half-nan, inf, -inf, all-nan; odd and even survivors."""
    rng = np.random.default_rng(7)
    odd = rng.normal(size=(7, 4))
    odd[2, :2] = np.nan
    odd[5, 3] = np.inf
    even = rng.normal(size=(6, 3))
    even[1] = np.nan
    even[4, 0] = -np.inf
    return [odd, even, rng.normal(size=(5, 3))]


def _median_variants(updates) -> list:
    """What common mistakes compute instead of the NaN-safe median, for the hints."""
    finite = updates[np.isfinite(updates).all(axis=1)]
    no_nan = updates[~np.isnan(updates).any(axis=1)]
    with np.errstate(invalid="ignore"):
        return [
            ("np.nanmedian skips the nan values but keeps the rest of a half-nan row (and keeps inf): "
             "a row with any non-finite value is a broken update, drop the whole row.", np.nanmedian(updates, axis=0)),
            ("np.nanmedian keeps the finite values of a broken row: drop every row with a non-finite "
             "value before the median.", np.nanmedian(np.where(np.isfinite(updates), updates, np.nan), axis=0)),
            ("inf is not nan: drop the rows with inf or -inf too (np.isfinite).", np.median(no_nan, axis=0)),
            ("that is the mean of the finite rows: one large update still moves it anywhere. Take the "
             "median.", finite.mean(axis=0)),
            ("with an even number of finite rows the median is the mean of the two middle values.",
             np.sort(finite, axis=0)[len(finite) // 2]),
            ("with an even number of finite rows the median is the mean of the two middle values.",
             np.sort(finite, axis=0)[(len(finite) - 1) // 2]),
        ]


def exercise_2(safe_median: Callable) -> bool:
    """Check ``safe_median(updates)``.

    Parameters
    ----------
    safe_median : callable
        Called with an array of shape (n, d) of client updates, some rows holding nan or inf.
        Must drop every row with a non-finite value, then return the coordinate-wise median of
        the rest, shape (d,): what ``flcourse.federated.defences.median`` computes.
    """
    for updates in median_cases():
        with np.errstate(invalid="ignore"):
            answer, error = call(safe_median, updates.copy())
        if error:
            return report(False, "", error)
        if close(answer, median(updates), rtol=1e-12, atol=1e-12):
            continue
        n_finite = int(np.isfinite(updates).all(axis=1).sum())
        if _holds_nan(answer, updates.shape[1]):
            hint = "np.median returns nan as soon as a column holds one nan: drop the rows with a " \
                   "non-finite value first (np.isfinite(updates).all(axis=1))."
        else:
            hint = _first(_median_variants(updates), answer, rtol=1e-12, atol=1e-12) or \
                f"return the median over the clients (axis 0) of the finite rows, shape ({updates.shape[1]},)."
        return report(False, "", f"For {len(updates)} updates, {n_finite} of them finite: {hint}")
    return report(True, "A broken row is dropped whole, so no client can push nan or inf into the "
                  "aggregate, and what is left is the coordinate-wise median.", "")


# ----------------------------------------------------------------------------- exercise 3
def _alie_variants(n, f) -> list:
    inv = NormalDist().inv_cdf

    def z_of(s, honest=n - f, total=n - f):
        ratio = (honest - s) / total
        return inv(ratio) if 0 < ratio < 1 else math.nan

    s = n // 2 + 1 - f
    return [("s = ⌊n/2 + 1⌋ - f is a whole number of clients: take the floor of n/2 + 1.", z_of(n / 2 + 1 - f)),
            ("s = ⌊n/2 + 1⌋ - f is a whole number of clients: the floor, not the ceiling.",
             z_of(math.ceil(n / 2 + 1) - f)),
            ("s counts the honest clients the attackers still need: subtract f from ⌊n/2 + 1⌋.", z_of(n // 2 + 1)),
            ("divide by the number of honest clients, n - f, not by n.", z_of(s, total=n)),
            ("use the honest clients' count: (n - f - s) / (n - f), not (n - s) / n.", z_of(s, honest=n, total=n)),
            ("z = Φ⁻¹(p) is the point below which a fraction p of a normal lies: NormalDist().inv_cdf, "
             "not .cdf.", NormalDist().cdf((n - f - s) / (n - f))),
            ("mind the sign: Φ⁻¹(p) > 0 for p > 1/2.", -alie_z(n, f))]


def exercise_3(z_of: Callable) -> bool:
    """Check ``z_of(n, f)``, ALIE's z.

    Parameters
    ----------
    z_of : callable
        Called with the ints n (all clients) and f (attackers). Must return the float
        z = Φ⁻¹((n - f - s) / (n - f)) with s = ⌊n/2 + 1⌋ - f (Baruch et al. 2019).
    """
    for n, f in ALIE_CASES:
        answer, error = call(z_of, n, f)
        if error:
            if "0.0 < p < 1.0" in error:
                error += " (inv_cdf needs p in (0, 1): check s = ⌊n/2 + 1⌋ - f and the ratio)"
            return report(False, "", error)
        if not close(answer, alie_z(n, f), rtol=1e-9, atol=1e-12):
            hint = _first(_alie_variants(n, f), answer, rtol=1e-9, atol=1e-12)
            return report(False, "", f"For n = {n}, f = {f}: " + (hint or f"your {answer!r} is not "
                          "Φ⁻¹((n - f - s) / (n - f)) with s = ⌊n/2 + 1⌋ - f."))
    return report(True, f"For n = 50, f = 24: s = 2, z = Φ⁻¹(24/26) = {alie_z(50, 24):.3f}; the "
                  "attackers place every coordinate z standard deviations from the honest mean.", "")


# ----------------------------------------------------------------------------- exercise 4
def exercise_4(settle: Callable) -> bool:
    """Check ``settle(arrivals, deadline, n_wanted, timeout)``.

    Parameters
    ----------
    settle : callable
        Called with a list of arrival times in seconds (``math.inf``: the client dropped out),
        a deadline (a float, or None), n_wanted (an int K, or None) and a timeout (a float, maybe
        inf); exactly one of deadline and n_wanted is given. Must return the pair
        ``(kept, duration)``. With a deadline d: keep the clients arriving at or before d; the round
        lasts until the last arrival if all arrived by d, else d. With K: keep the first K to
        arrive (equal times: lower index first), the round lasting until the K-th arrival; if fewer
        than K arrive by the timeout, keep those, and the round lasts the timeout.
    """
    for arrivals, deadline, n_wanted, timeout in ROUND_CASES:
        answer, error = call(settle, list(arrivals), deadline, n_wanted, timeout)
        if error:
            return report(False, "", error)
        kept, duration = settle_round(arrivals, deadline=deadline, n_wanted=n_wanted, timeout=timeout)
        hint = _round_hint(answer, np.asarray(arrivals), deadline, n_wanted, timeout, kept, duration)
        if hint:
            rule = f"deadline {deadline:g}" if deadline is not None else f"n_wanted {n_wanted}, timeout {timeout:g}"
            return report(False, "", f"For arrivals {arrivals} with {rule}: {hint}")
    return report(True, "A deadline caps every round at d; over-selection ends a round with the K-th "
                  "arrival, so the slowest clients no longer set its pace.", "")


def _round_hint(answer, arrivals, deadline, n_wanted, timeout, kept, duration) -> str | None:
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return "return a pair (kept indices, duration)."
    try:
        got = sorted(int(k) for k in np.asarray(answer[0]).ravel())
    except (TypeError, ValueError):
        return "the first item should hold the kept clients' indices into arrivals (ints)."
    if got != kept.tolist():
        return _kept_hint(got, arrivals, deadline, n_wanted, timeout) + f" Expected indices {kept.tolist()}."
    if close(answer[1], duration, rtol=1e-12, atol=1e-12):
        return None
    if deadline is not None:
        hint = ("every client arrived by the deadline, so the round ends with the last of them."
                if len(kept) == len(arrivals) else
                "a selected client is still missing, so the server waits until the deadline.")
    elif len(kept) < n_wanted:
        hint = "fewer than K updates arrived, so the server waits until the timeout."
    else:
        hint = "the round ends when the K-th update arrives."
    return f"{hint} Expected a duration of {duration:g} s."


def _kept_hint(got, arrivals, deadline, n_wanted, timeout) -> str:
    if any(math.isinf(arrivals[k]) for k in got if 0 <= k < len(arrivals)):
        return "a client whose arrival is inf dropped out: it sends nothing to keep."
    if deadline is not None:
        if got == np.flatnonzero(arrivals < deadline).tolist():
            return "an update arriving exactly at the deadline is on time (arrival <= d)."
        return "keep every client whose update arrives by the deadline, and only those."
    if len(got) > np.sum(arrivals <= timeout):
        return "an update arriving after the timeout is too late."
    later_first = np.lexsort((-np.arange(len(arrivals)), arrivals))[:n_wanted]
    if got == sorted(later_first.tolist()):
        return "equal arrival times: the lower index comes first (np.argsort(..., kind='stable'))."
    return "keep the K updates that arrive first."
