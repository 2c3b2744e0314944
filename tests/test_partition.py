import numpy as np
import pytest

import flcourse as fl

PARTITIONERS = {
    "iid": lambda y, k, seed: fl.iid_partition(len(y), k, seed=seed),
    "quantity": lambda y, k, seed: fl.quantity_skew_partition(len(y), k, beta=0.5, seed=seed),
    "dirichlet": lambda y, k, seed: fl.dirichlet_partition(y, k, alpha=0.3, seed=seed),
    "shards": lambda y, k, seed: fl.shard_partition(y, k, shards_per_client=2, seed=seed),
}


@pytest.mark.parametrize("name, n_clients", [
    (name, n_clients) for name in PARTITIONERS for n_clients in (1, 10, 100)
    if (name, n_clients) != ("shards", 1)  # two shards cannot hold ten labels: rejected below
])
def test_every_sample_lands_in_exactly_one_client(name, n_clients, digits):
    partition = PARTITIONERS[name](digits.y_train, n_clients, 0)

    assert len(partition) == n_clients
    fl.check_partition(partition, len(digits.y_train))
    assert all(len(part) > 0 for part in partition)


@pytest.mark.parametrize("name", PARTITIONERS)
def test_same_seed_gives_the_same_partition(name, digits):
    first = PARTITIONERS[name](digits.y_train, 20, 3)
    again = PARTITIONERS[name](digits.y_train, 20, 3)
    other = PARTITIONERS[name](digits.y_train, 20, 4)

    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_dirichlet_with_large_alpha_is_close_to_iid(digits):
    y = digits.y_train
    dirichlet = fl.partition_stats(y, fl.dirichlet_partition(y, 10, alpha=1000, seed=0))
    iid = fl.partition_stats(y, fl.iid_partition(len(y), 10, seed=0))

    assert dirichlet.label_skew < 0.05
    assert dirichlet.label_skew < 2 * iid.label_skew
    assert np.all(dirichlet.labels_per_client == 10)
    assert dirichlet.sizes.max() / dirichlet.sizes.min() < 1.2


def test_dirichlet_with_small_alpha_is_strongly_skewed(digits):
    stats = fl.partition_stats(digits.y_train, fl.dirichlet_partition(digits.y_train, 10, alpha=0.05, seed=0))

    assert stats.label_skew > 0.6
    assert stats.labels_per_client.mean() < 5


def test_dirichlet_respects_min_size(digits):
    partition = fl.dirichlet_partition(digits.y_train, 10, alpha=0.3, min_size=40, seed=0)

    assert min(len(part) for part in partition) >= 40


def test_dirichlet_gives_up_with_a_clear_error_when_min_size_cannot_be_met():
    y = np.repeat(np.arange(2), 20)

    with pytest.raises(ValueError, match=r"could not give every one of 4 clients min_size=10 samples"):
        fl.dirichlet_partition(y, 4, alpha=0.01, min_size=10, seed=0, max_tries=5)


@pytest.mark.parametrize("seed", range(5))
def test_two_shards_per_client_give_at_most_two_labels(seed, digits):
    stats = fl.partition_stats(digits.y_train, fl.shard_partition(digits.y_train, 100, shards_per_client=2, seed=seed))

    assert stats.labels_per_client.max() <= 2
    assert stats.sizes.max() - stats.sizes.min() <= 4


def test_shards_split_each_label_in_proportion():
    y = np.repeat(np.arange(3), [60, 30, 10])

    partition = fl.shard_partition(y, 5, shards_per_client=2, seed=0)

    shard_sizes = sorted(len(part) for part in partition)
    assert shard_sizes == [20] * 5
    assert fl.partition_stats(y, partition).labels_per_client.max() <= 2


def test_too_few_shards_for_the_labels_are_rejected(digits):
    with pytest.raises(ValueError, match=r"must give between 10 \(one shard per label\) and 1347 shards in all. Got 2 x 3 clients = 6"):
        fl.shard_partition(digits.y_train, 3, shards_per_client=2)


def test_quantity_skew_keeps_labels_balanced_but_sizes_unequal(digits):
    stats = fl.partition_stats(digits.y_train, fl.quantity_skew_partition(len(digits.y_train), 20, beta=0.3, seed=0))

    assert stats.sizes.max() > 5 * np.median(stats.sizes)
    assert stats.sizes.min() >= 1


def test_partition_stats_counts_labels_per_client():
    y = np.array([0, 1, 1, 2, 2, 2])

    stats = fl.partition_stats(y, [np.array([0, 1]), np.array([2, 3, 4, 5])])

    np.testing.assert_array_equal(stats.sizes, [2, 4])
    np.testing.assert_array_equal(stats.label_counts, [[1, 1, 0], [0, 1, 3]])
    assert stats.label_skew == pytest.approx((2 * 0.5 + 4 * 0.25) / 6)
    assert "n_clients=2" in repr(stats)


@pytest.mark.parametrize("spec, expected", [
    ("iid", lambda y: fl.iid_partition(len(y), 10, seed=1)),
    ("dirichlet:0.3", lambda y: fl.dirichlet_partition(y, 10, alpha=0.3, seed=1)),
    ("shards:2", lambda y: fl.shard_partition(y, 10, shards_per_client=2, seed=1)),
    ("quantity:0.5", lambda y: fl.quantity_skew_partition(len(y), 10, beta=0.5, seed=1)),
])
def test_make_partition_reads_a_text_spec(spec, expected, digits):
    made = fl.make_partition(spec, digits.y_train, 10, seed=1)

    assert all(np.array_equal(a, b) for a, b in zip(made, expected(digits.y_train)))


@pytest.mark.parametrize("spec", ["dirichlet", "dirichlet:", "shards:two", "banana:3", "iid:2", ""])
def test_unknown_partition_spec_is_rejected(spec, digits):
    with pytest.raises(ValueError, match=r"'spec' parameter of make_partition"):
        fl.make_partition(spec, digits.y_train, 10)


def test_bad_number_in_a_known_spec_names_the_rule(digits):
    with pytest.raises(ValueError, match=r"'alpha' parameter of dirichlet_partition must be a float in \(0, inf\). Got -1.0"):
        fl.make_partition("dirichlet:-1", digits.y_train, 10)


@pytest.mark.parametrize("name", PARTITIONERS)
def test_more_clients_than_samples_is_rejected(name):
    y = np.array([0, 1, 0, 1, 1])

    with pytest.raises(ValueError, match=r"'n_clients' parameter of \w+ must be an int in \[1, 5\]. Got 6 instead"):
        PARTITIONERS[name](y, 6, 0)


@pytest.mark.parametrize("alpha", [0, -0.5])
def test_non_positive_alpha_is_rejected(alpha, digits):
    with pytest.raises(ValueError, match=rf"'alpha' parameter of dirichlet_partition must be a float in \(0, inf\). Got {alpha}"):
        fl.dirichlet_partition(digits.y_train, 10, alpha=alpha)


def test_check_partition_reports_missing_and_repeated_samples():
    with pytest.raises(ValueError, match=r"Got 1 repeated index and 1 missing sample instead; the first repeated, 1, is in part 0 and part 1"):
        fl.check_partition([np.array([0, 1]), np.array([1, 3])], 4)


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.5])
def test_a_dirichlet_client_that_holds_n_over_k_samples_gets_no_more(alpha, digits):
    y, n_clients = digits.y_train, 10
    for seed in range(40):
        partition = fl.dirichlet_partition(y, n_clients, alpha=alpha, seed=seed)
        for part in partition:
            labels = y[part]
            for label in np.unique(y):  # labels are dealt in increasing order
                held_before = np.sum(labels < label)
                if held_before >= len(y) / n_clients:
                    assert np.sum(labels == label) == 0, (alpha, seed, label)
