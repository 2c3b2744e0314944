"""Self-checks of chapter 02: right answers pass, typical mistakes get their specific hint."""
import numpy as np
import pytest

import flcourse as fl
from flcourse.exercises import ch02


def label_counts(y, partition, n_classes):
    return np.array([np.bincount(y[part], minlength=n_classes) for part in partition])


def label_skew(counts):
    sizes = counts.sum(axis=1)
    distance = 0.5 * np.abs(counts / sizes[:, None] - counts.sum(0) / sizes.sum()).sum(axis=1)
    return float(np.average(distance, weights=sizes))


def shard_partition(y, n_clients, shards_per_client, seed):
    rng = np.random.default_rng(seed)
    shards = np.array_split(np.argsort(y, kind="stable"), n_clients * shards_per_client)
    deal = rng.permutation(len(shards)).reshape(n_clients, shards_per_client)
    return [np.concatenate([shards[s] for s in row]) for row in deal]


def fails(*args):
    raise RuntimeError("boom")


TRUTH = {"A": (True, False), "B": (False, True), "C": (True, True), "D": (False, False)}


@pytest.mark.parametrize("exercise, answer", [
    (ch02.exercise_1, label_counts),
    (ch02.exercise_2, label_skew),
    (ch02.exercise_3, TRUTH),
    (ch02.exercise_3, {letter: list(pair) for letter, pair in TRUTH.items()}),
    (ch02.exercise_3, {letter: np.array(pair) for letter, pair in TRUTH.items()}),
    (ch02.exercise_4, shard_partition),
    (ch02.exercise_4, lambda y, n_clients, s, seed: fl.shard_partition(
        y, n_clients, shards_per_client=s, seed=seed)),
])
def test_right_answer_passes(exercise, answer, capsys):
    # Execute
    ok = exercise(answer)
    # Assert
    assert ok is True
    assert capsys.readouterr().out.startswith("Correct.")


@pytest.mark.parametrize("exercise", [ch02.exercise_1, ch02.exercise_2, ch02.exercise_4])
def test_raising_function_gets_a_hint_not_a_traceback(exercise, capsys):
    assert exercise(fails) is False
    assert "Your function raised RuntimeError: boom" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda y, p, c: label_counts(y, p, c).T, "transposed"),
    (lambda y, p, c: [np.bincount(y[part]) for part in p], "minlength"),
    (lambda y, p, c: [np.bincount(part) for part in p], "not its sample indices"),
    (lambda y, p, c: label_counts(y, p, c) / label_counts(y, p, c).sum(1, keepdims=True), "not proportions"),
    (lambda y, p, c: label_counts(y, p, c)[::-1], "Row 0"),
])
def test_exercise_1_wrong_counts_get_specific_hint(wrong, hint, capsys):
    assert ch02.exercise_1(wrong) is False
    assert hint in capsys.readouterr().out


def unweighted(counts):
    sizes = counts.sum(axis=1)
    return float(np.mean(0.5 * np.abs(counts / sizes[:, None] - counts.sum(0) / sizes.sum()).sum(axis=1)))


def against_uniform(counts):
    sizes = counts.sum(axis=1)
    distance = 0.5 * np.abs(counts / sizes[:, None] - 1 / counts.shape[1]).sum(axis=1)
    return float(np.average(distance, weights=sizes))


def per_client(counts):
    sizes = counts.sum(axis=1)
    return 0.5 * np.abs(counts / sizes[:, None] - counts.sum(0) / sizes.sum()).sum(axis=1)


@pytest.mark.parametrize("wrong, hint", [
    (lambda counts: 2 * label_skew(counts), "HALF"),
    (unweighted, "weight client k by n_k / N"),
    (against_uniform, "not with the uniform one"),
    (per_client, "Return one number"),
    (lambda counts: float(np.abs(counts - counts.mean(0)).sum()), "proportions"),
])
def test_exercise_2_wrong_skew_gets_specific_hint(wrong, hint, capsys):
    assert ch02.exercise_2(wrong) is False
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [
    ({**TRUTH, "A": (False, False)}, "Unequal sizes alone do not make labels non-IID"),
    ({**TRUTH, "D": (True, False)}, "far from the overall one"),
    ({**TRUTH, "B": (False, False)}, "B: client sizes run from"),
    (None, 'keys "A", "B", "C", "D"'),
    ({letter: ("yes", "no") for letter in TRUTH}, "pair of booleans"),
    ({**TRUTH, "A": [True, False, True]}, "pair of booleans"),
    ({**TRUTH, "A": [False, False]}, "Unequal sizes alone do not make labels non-IID"),
    ({**TRUTH, "C": [True, False]}, "C: client sizes run from"),
])
def test_exercise_3_wrong_reading_gets_specific_hint(answer, hint, capsys):
    assert ch02.exercise_3(answer) is False
    assert hint in capsys.readouterr().out


def test_exercise_3_hint_gives_the_iid_floor_the_chapter_teaches(capsys):
    ch02.exercise_3({**TRUTH, "A": (False, False)})

    assert "gives about 0.14 from sampling noise alone" in capsys.readouterr().out  # section 2.3: 0.141


def unsorted_shards(y, n_clients, shards_per_client, seed):
    parts = np.array_split(np.random.default_rng(seed).permutation(len(y)), n_clients * shards_per_client)
    return [np.concatenate(parts[k::n_clients]) for k in range(n_clients)]


def duplicated(y, n_clients, shards_per_client, seed):
    parts = shard_partition(y, n_clients, shards_per_client, seed)
    parts[0] = np.concatenate([parts[0], parts[1][:3]])
    return parts


def contiguous_blocks(y, n_clients, shards_per_client, seed):
    # Label-sorted blocks handed out in a seeded order: reproducible, seed-dependent, never dealt.
    blocks = np.array_split(np.argsort(y, kind="stable"), n_clients)
    return [blocks[k] for k in np.random.default_rng(seed).permutation(n_clients)]


@pytest.mark.parametrize("wrong, hint", [
    (unsorted_shards, "sort the samples by label"),
    (contiguous_blocks, "one contiguous run"),
    (lambda y, n, s, seed: shard_partition(y, n, s, 0), "Seeds 0 and 1 gave the same partition"),
    (lambda y, n, s, seed: shard_partition(y, n, s, None), "The same seed gave two different"),
    (duplicated, "3 repeated"),
    (lambda y, n, s, seed: fl.dirichlet_partition(y, n, alpha=0.1, seed=seed), "Sizes run from"),
    (lambda y, n, s, seed: np.array_split(np.arange(len(y)), n + 1), "list of n_clients=20"),
])
def test_exercise_4_wrong_partitioner_gets_specific_hint(wrong, hint, capsys):
    assert ch02.exercise_4(wrong) is False
    assert hint in capsys.readouterr().out


def test_mystery_partitions_are_valid_partitions_of_the_digits():
    y, partitions = ch02.mystery_partitions()
    assert sorted(partitions) == ["A", "B", "C", "D"]
    for partition in partitions.values():
        fl.check_partition(partition, len(y))
