"""Self-checks for chapter 02: label counts, label skew, reading partitions, a shard partitioner.

Each ``exercise_N(answer)`` prints "Correct. ..." or "Not yet. <hint>" and returns a bool.
See notebook 02.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data import (PartitionStats, check_partition, dirichlet_partition, iid_partition,
                   load_digits, partition_stats, quantity_skew_partition, shard_partition)
from ._core import call, close, report

_LETTERS = ("A", "B", "C", "D")


def _labels(n_samples: int = 300, seed: int = 2) -> np.ndarray:
    """Labels in 0..5 with unequal class frequencies, so weighting mistakes show."""
    return np.random.default_rng(seed).choice(6, size=n_samples, p=[.3, .25, .2, .1, .1, .05])


def _count_cases():
    y = _labels()
    return [(y, dirichlet_partition(y, 8, alpha=0.2, seed=1), 6),
            (y, shard_partition(y, 6, shards_per_client=2, seed=3), 7)]


def exercise_1(answer: Callable) -> bool:
    """Check a function ``label_counts(y, partition, n_classes)``.

    ``answer`` must return an int array of shape (n_clients, n_classes) whose entry [k, c] is
    the number of samples of label c held by client k (``partition_stats(...).label_counts``).
    """
    for y, partition, n_classes in _count_cases():
        result, error = call(answer, y, partition, n_classes)
        if error:
            return report(False, "", error)
        expected = partition_stats(y, partition, n_classes).label_counts
        if close(result, expected):
            continue
        return report(False, "", _counts_hint(result, expected))
    return report(True, "Row k is np.bincount(y[partition[k]], minlength=n_classes).", "")


def _counts_hint(result, expected) -> str:
    n_clients, n_classes = expected.shape
    try:
        result = np.asarray(result, dtype=np.float64)
    except (TypeError, ValueError):
        longest = max((np.size(row) for row in result), default=0)
        if longest > n_classes:
            return "Count the labels y[part] of each client, not its sample indices part."
        return (f"Rows of different lengths: give every row n_classes={n_classes} entries with "
                "np.bincount(..., minlength=n_classes).")
    if result.shape == expected.T.shape and result.shape != expected.shape:
        return f"Shape {result.shape} is transposed: rows are clients, columns are labels."
    if result.ndim == 2 and result.shape[0] == n_clients and result.shape[1] > 100:
        return "Count the labels y[part] of each client, not its sample indices part."
    if result.ndim != 2 or result.shape[0] != n_clients:
        return f"Expected one row per client: shape {expected.shape}. Got shape {result.shape}."
    if result.shape[1] != n_classes:
        return (f"Every row needs n_classes={n_classes} entries, got {result.shape[1]}: use "
                "np.bincount(..., minlength=n_classes), since a client (or even the whole set) "
                "can lack the highest labels.")
    if np.allclose(result.sum(axis=1), 1.0):
        return "Each row sums to 1: return counts of samples, not proportions."
    first = int(np.flatnonzero(np.any(result != expected, axis=1))[0])
    return f"Row {first} (client {first}) is wrong: it should count the labels y[partition[{first}]]."


def exercise_2(answer: Callable) -> bool:
    """Check a function ``label_skew(label_counts)``.

    ``label_counts`` is an array of shape (n_clients, n_classes); ``answer`` must return the
    float sum_k (n_k / N) * 0.5 * sum_c |q_k(c) - q(c)|, where q_k is client k's label
    distribution and q the whole set's (``PartitionStats.label_skew``).
    """
    y = _labels()
    for partition in (dirichlet_partition(y, 8, alpha=0.2, seed=1), iid_partition(len(y), 5, seed=4),
                      shard_partition(y, 6, shards_per_client=2, seed=3)):
        counts = partition_stats(y, partition).label_counts
        result, error = call(answer, counts)
        if error:
            return report(False, "", error)
        expected = PartitionStats(counts.sum(axis=1), counts).label_skew
        if not close(result, expected):
            return report(False, "", _skew_hint(result, expected, counts))
    return report(True, "That is the size-weighted total-variation distance to the overall mix.", "")


def _skew_hint(result, expected, counts) -> str:
    if np.ndim(result) != 0:
        return (f"Return one number, not an array of shape {np.shape(result)}: average the "
                "per-client distances with weights n_k / N.")
    sizes = counts.sum(axis=1)
    local = counts / sizes[:, None]
    distance = 0.5 * np.abs(local - counts.sum(0) / sizes.sum()).sum(axis=1)
    to_uniform = 0.5 * np.abs(local - 1 / counts.shape[1]).sum(axis=1) @ sizes / sizes.sum()
    if close(result, 2 * expected):
        return "Your value is twice the right one: total variation is HALF the sum of |q_k - q|."
    if close(result, distance.mean()):
        return "You took a plain mean over clients: weight client k by n_k / N."
    if close(result, to_uniform):
        return ("Compare with the overall label distribution q = label_counts.sum(0) / N, "
                "not with the uniform one: these labels are not equally frequent.")
    if result > 1:
        return "A total-variation distance is at most 1: turn counts into proportions first."
    return ("Compute q = counts.sum(0) / N, q_k = counts[k] / n_k, then the weighted mean of "
            "0.5 * |q_k - q|.sum().")


def mystery_partitions():
    """Return ``(y, partitions)``: the digits training labels and four partitions "A" to "D"
    of them among 20 clients, for exercise 3."""
    y = load_digits(seed=0).y_train
    return y, {"A": quantity_skew_partition(len(y), 20, beta=0.5, seed=5),
               "B": shard_partition(y, 20, shards_per_client=2, seed=6),
               "C": iid_partition(len(y), 20, seed=7),
               "D": dirichlet_partition(y, 20, alpha=0.1, seed=8)}


def _iid_floor(y, n_clients: int, n_seeds: int = 20) -> float:
    """The label skew of IID splits from sampling noise alone: the mean over ``n_seeds`` seeds,
    as chapter 02 measures it (section 2.3)."""
    return float(np.mean([partition_stats(y, iid_partition(len(y), n_clients, seed=seed)).label_skew
                          for seed in range(n_seeds)]))


_TRUTH = {"A": (True, False), "B": (False, True), "C": (True, True), "D": (False, False)}


def _is_bool_pair(value) -> bool:
    """True for a tuple, list or array of exactly two booleans."""
    if not isinstance(value, (tuple, list, np.ndarray)) or np.ndim(value) != 1 or len(value) != 2:
        return False
    return all(isinstance(b, (bool, np.bool_)) for b in value)


def exercise_3(answer: dict) -> bool:
    """Check ``answer = {"A": (is_iid, is_balanced), ..., "D": (...)}`` for ``mystery_partitions()``.

    ``is_iid`` is True when every client's labels follow the overall label mix (up to sampling
    noise); ``is_balanced`` is True when all clients hold about N / n_clients samples. Each pair
    may be a tuple, a list or an array of two booleans.
    """
    if not isinstance(answer, dict) or sorted(answer) != list(_LETTERS):
        return report(False, "", 'Give a dict with keys "A", "B", "C", "D", e.g. {"A": (True, False), ...}.')
    if not all(_is_bool_pair(value) for value in answer.values()):
        return report(False, "", "Each value must be a pair of booleans (is_iid, is_balanced), "
                      "as a tuple or a list.")
    y, partitions = mystery_partitions()
    iid_skew = _iid_floor(y, 20)
    for letter in _LETTERS:
        stats = partition_stats(y, partitions[letter])
        is_iid, is_balanced = _TRUTH[letter]
        if bool(answer[letter][0]) != is_iid:
            why = ("Unequal sizes alone do not make labels non-IID." if is_iid else
                   "Its clients' label mixes are far from the overall one.")
            return report(False, "", f"{letter}: label_skew is {stats.label_skew:.2f}; an IID split "
                          f"of these labels among 20 clients gives about {iid_skew:.2f} from "
                          f"sampling noise alone. {why}")
        if bool(answer[letter][1]) != is_balanced:
            return report(False, "", f"{letter}: client sizes run from {stats.sizes.min()} to "
                          f"{stats.sizes.max()}, against N / n_clients = {len(y) / 20:.1f}.")
    return report(True, "A: IID but unbalanced (quantity skew); B: shards, non-IID but balanced; "
                  "C: IID and balanced; D: Dirichlet(0.1), neither.", "")


def exercise_4(answer: Callable) -> bool:
    """Check a shard partitioner ``answer(y, n_clients, shards_per_client, seed)``.

    It must return a list of ``n_clients`` index arrays that (a) hold every sample exactly once,
    (b) have sizes within 10% of N / n_clients, (c) give no client more than
    2 * shards_per_client labels, (d) depend on ``seed``, reproducibly, and (e) deal the shards
    at random: for seeds 0 and 1 together, some client must hold labels that are not one
    contiguous run (such as 2 and 7), which consecutive shards never give.
    """
    y = load_digits(seed=0).y_train
    for n_clients, per_client in ((20, 2), (10, 3)):
        runs = []
        for seed in (0, 0, 1):
            result, error = call(answer, y, n_clients, per_client, seed)
            hint = error or _shard_hint(result, y, n_clients, per_client)
            if hint:
                return report(False, "", hint)
            runs.append(result)
        same = [all(np.array_equal(a, b) for a, b in zip(runs[0], run)) for run in runs[1:]]
        if not same[0]:
            return report(False, "", "The same seed gave two different partitions: draw all "
                          "randomness from np.random.default_rng(seed).")
        if same[1]:
            return report(False, "", "Seeds 0 and 1 gave the same partition: deal the shards to "
                          "clients in a random order drawn from the seed.")
        if not any(_has_label_gap(y[np.asarray(part, dtype=np.int64)]) for run in runs for part in run):
            return report(False, "", "Every client's labels form one contiguous run (like 3, 4, 5), "
                          "for seeds 0 and 1 alike: you hand each client consecutive shards. Deal "
                          "the shards at random: permute the shard numbers, then give each client "
                          "shards_per_client of them.")
    return report(True, "Sorted by label, cut into equal shards, dealt at random: McMahan et al.'s split.", "")


def _has_label_gap(labels: np.ndarray) -> bool:
    """True when the labels present are not one contiguous run of integers (e.g. {2, 7})."""
    present = np.unique(labels)
    return present.size > 0 and present[-1] - present[0] + 1 > present.size


def _shard_hint(result, y, n_clients, per_client) -> str | None:
    if not isinstance(result, (list, tuple)) or len(result) != n_clients:
        return f"Return a list of n_clients={n_clients} index arrays."
    try:
        check_partition([np.asarray(part, dtype=np.int64) for part in result], len(y))
    except (ValueError, TypeError) as error:
        return str(error)
    stats = partition_stats(y, [np.asarray(part, dtype=np.int64) for part in result])
    target = len(y) / n_clients
    if stats.sizes.min() < 0.9 * target or stats.sizes.max() > 1.1 * target:
        return (f"Sizes run from {stats.sizes.min()} to {stats.sizes.max()}; with equal shards each "
                f"client should hold about N / n_clients = {target:.1f} samples.")
    if stats.labels_per_client.max() > 2 * per_client:
        return (f"A client holds {stats.labels_per_client.max()} labels with {per_client} shards "
                "each: sort the samples by label (np.argsort(y)) before cutting shards.")
    return None
