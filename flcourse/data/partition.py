"""Ways to split a training set among clients, and statistics of a split.

A partition is a list of ``n_clients`` integer index arrays into the training set; every
sample belongs to exactly one client (:mod:`~.partition_checks` checks that). See notebook 02.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_rng, check_scalar, check_y
from .partition_checks import check_index_partition


def iid_partition(n_samples: int, n_clients: int, *, seed=None) -> list[np.ndarray]:
    """Shuffle the samples and deal them out in ``n_clients`` near-equal parts."""
    _check_counts(n_samples, n_clients, "iid_partition")
    rng = check_rng(seed, "iid_partition")
    return _sorted_parts(np.array_split(rng.permutation(n_samples), n_clients))


def quantity_skew_partition(n_samples: int, n_clients: int, *, beta: float = 0.5,
                            seed=None) -> list[np.ndarray]:
    """IID labels, unequal sizes: proportions ~ Dirichlet(beta), every client gets >= 1 sample.

    Small ``beta`` gives a few large clients and many tiny ones; large ``beta`` near-equal sizes.
    """
    _check_counts(n_samples, n_clients, "quantity_skew_partition")
    check_scalar(beta, "beta", "quantity_skew_partition", low=0)
    rng = check_rng(seed, "quantity_skew_partition")
    sizes = 1 + rng.multinomial(n_samples - n_clients, rng.dirichlet(np.full(n_clients, beta)))
    return _sorted_parts(np.split(rng.permutation(n_samples), np.cumsum(sizes)[:-1]))


def dirichlet_partition(y, n_clients: int, *, alpha: float, min_size: int = 1,
                        seed=None, max_tries: int = 1000) -> list[np.ndarray]:
    """Label skew: each class is split among clients in proportions drawn from Dirichlet(alpha).

    This is the scheme of Hsu et al. (2019) as implemented in NIID-Bench (Li et al., 2022):
    a client that already holds more than n_samples / n_clients samples gets no more, and the
    draw is repeated until every client holds at least ``min_size`` samples. Large ``alpha``
    (say 1000) is close to IID; small ``alpha`` (say 0.05) gives each client a few labels.
    """
    owner = "dirichlet_partition"
    y = _check_labels(y, owner)
    _check_counts(len(y), n_clients, owner)
    check_scalar(alpha, "alpha", owner, low=0)
    check_scalar(min_size, "min_size", owner, int, low=0, high=len(y) // n_clients, closed="both")
    check_scalar(max_tries, "max_tries", owner, int, low=1, closed="left")
    rng = check_rng(seed, owner)
    for _ in range(max_tries):
        parts = _dirichlet_draw(y, n_clients, alpha, rng)
        if min(len(part) for part in parts) >= min_size:
            return _sorted_parts(parts)
    raise ValueError(f"dirichlet_partition could not give every one of {n_clients} clients "
                     f"min_size={min_size} samples with alpha={alpha} in {max_tries} tries; "
                     f"lower min_size or raise alpha.")


def _dirichlet_draw(y, n_clients, alpha, rng):
    parts = [[] for _ in range(n_clients)]
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        shares = rng.dirichlet(np.full(n_clients, alpha))
        eligible = np.array([len(part) < len(y) / n_clients for part in parts])
        shares *= eligible
        if not shares.sum() > 0:  # tiny alpha: every eligible share underflowed to 0
            shares = np.zeros(n_clients)
            shares[rng.choice(np.flatnonzero(eligible)) if eligible.any() else np.argmin([len(p) for p in parts])] = 1.0
        cumulative = np.cumsum(shares / shares.sum())
        cumulative[np.flatnonzero(shares)[-1]:] = 1.0  # no rounding hands a full client at the end a sample
        cuts = (cumulative * len(members)).astype(int)[:-1]
        for part, piece in zip(parts, np.split(members, cuts)):
            part.extend(piece.tolist())
    return [np.array(part, dtype=np.int64) for part in parts]


def shard_partition(y, n_clients: int, *, shards_per_client: int = 2, seed=None) -> list[np.ndarray]:
    """Pathological non-IID split of McMahan et al. (2017): sort by label, cut into shards,
    give each client ``shards_per_client`` shards at random.

    Shards never straddle two labels (each label is cut into a number of shards proportional to
    its frequency), so a client holds at most ``shards_per_client`` labels.
    """
    owner = "shard_partition"
    y = _check_labels(y, owner)
    _check_counts(len(y), n_clients, owner)
    n_shards = n_clients * check_scalar(shards_per_client, "shards_per_client", owner, int, low=1,
                                        closed="left")
    labels, counts = np.unique(y, return_counts=True)
    if n_shards < len(labels) or n_shards > len(y):
        raise ValueError(f"The 'shards_per_client' parameter of {owner} must give between "
                         f"{len(labels)} (one shard per label) and {len(y)} shards in all. Got "
                         f"{shards_per_client} x {n_clients} clients = {n_shards} shards instead.")
    rng = check_rng(seed, owner)
    shards = []
    for label, n_label_shards in zip(labels, _shards_per_label(counts, n_shards)):
        shards += np.array_split(rng.permutation(np.flatnonzero(y == label)), n_label_shards)
    order = rng.permutation(n_shards).reshape(n_clients, shards_per_client)
    return _sorted_parts([np.concatenate([shards[s] for s in row]) for row in order])


def _shards_per_label(counts, n_shards):
    """Largest-remainder apportionment of ``n_shards`` to labels in proportion to ``counts``,
    at least one shard for every label."""
    exact = counts / counts.sum() * n_shards
    shares = np.floor(exact).astype(int)
    shares[np.argsort(shares - exact)[:n_shards - shares.sum()]] += 1
    for label in np.flatnonzero(shares == 0):
        shares[np.argmax(shares)] -= 1
        shares[label] = 1
    return shares


SPEC_NUMBERS = {"dirichlet": float, "shards": int, "quantity": float}


def make_partition(spec: str, y, n_clients: int, *, seed=None) -> list[np.ndarray]:
    """Build a partition from a short text spec.

    ``"iid"``, ``"dirichlet:ALPHA"``, ``"shards:SHARDS_PER_CLIENT"`` or ``"quantity:BETA"``,
    for example ``"dirichlet:0.3"`` or ``"shards:2"``. A number that does not parse is reported
    as a bad spec; any other error comes from the partitioner, with its own message.
    """
    kind, number = _parse_spec(spec)
    y = _check_1d(y, "make_partition")
    makers = {
        "iid": lambda: iid_partition(len(y), n_clients, seed=seed),
        "dirichlet": lambda: dirichlet_partition(y, n_clients, alpha=number, seed=seed),
        "shards": lambda: shard_partition(y, n_clients, shards_per_client=number, seed=seed),
        "quantity": lambda: quantity_skew_partition(len(y), n_clients, beta=number, seed=seed),
    }
    return makers[kind]()


def _parse_spec(spec):
    """(kind, number) from "kind:number"; (kind, None) for "iid"."""
    kind, _, arg = str(spec).partition(":")
    if kind not in ("iid", *SPEC_NUMBERS) or (kind != "iid") != bool(arg):
        raise ValueError(f"The 'spec' parameter of make_partition must be one of 'iid', "
                         f"'dirichlet:ALPHA', 'shards:N', 'quantity:BETA'. Got {spec!r} instead.")
    if kind == "iid":
        return kind, None
    try:
        return kind, SPEC_NUMBERS[kind](arg)
    except ValueError:
        raise ValueError(f"The 'spec' parameter of make_partition has a bad number after "
                         f"'{kind}:'. Got {spec!r} instead.") from None


@dataclass(frozen=True, repr=False)
class PartitionStats:
    """Per-client sizes and label counts of a partition.

    Attributes
    ----------
    sizes : ndarray of shape (n_clients,)
    label_counts : ndarray of shape (n_clients, n_classes)
    """

    sizes: np.ndarray
    label_counts: np.ndarray

    @property
    def n_clients(self) -> int:
        return len(self.sizes)

    @property
    def labels_per_client(self) -> np.ndarray:
        """Number of distinct labels each client holds, shape (n_clients,)."""
        return (self.label_counts > 0).sum(axis=1)

    @property
    def label_skew(self) -> float:
        """Size-weighted mean total-variation distance between each client's label distribution
        and the whole set's: 0 for identical distributions, near 1 when clients share no labels."""
        overall = self.label_counts.sum(0) / self.sizes.sum()
        local = self.label_counts / np.maximum(self.sizes, 1)[:, None]
        distance = 0.5 * np.abs(local - overall).sum(axis=1)
        return float(np.average(distance, weights=self.sizes))

    def __repr__(self) -> str:
        sizes, labels = self.sizes, self.labels_per_client
        return (f"PartitionStats(n_clients={self.n_clients}, sizes: min {sizes.min()}, median "
                f"{np.median(sizes):g}, max {sizes.max()}; labels per client: min {labels.min()}, "
                f"mean {labels.mean():.2f}, max {labels.max()}; label_skew={self.label_skew:.3f})")


def partition_stats(y, partition, n_classes: int | None = None) -> PartitionStats:
    """Count each client's samples and labels.

    ``n_classes`` defaults to the largest label + 1; ``partition`` must cover every sample once.
    """
    owner = "partition_stats"
    if n_classes is not None:
        check_scalar(n_classes, "n_classes", owner, int, low=1, closed="left")
    y = _check_labels(y, owner, n_classes)
    parts = check_index_partition(partition, len(y), owner)
    n_classes = n_classes or int(y.max()) + 1
    label_counts = np.array([np.bincount(y[part], minlength=n_classes) for part in parts])
    return PartitionStats(label_counts.sum(axis=1), label_counts)


def _check_counts(n_samples, n_clients, owner):
    check_scalar(n_samples, "n_samples", owner, int, low=1, closed="left")
    check_scalar(n_clients, "n_clients", owner, int, low=1, high=n_samples, closed="both")


def _check_1d(y, owner):
    """``y`` as a 1-D array with at least one entry, else raise."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] == 0:
        raise ValueError(f"The 'y' parameter of {owner} must be a 1-D array with one entry per "
                         f"sample, at least one. Got an array of shape {y.shape} instead.")
    return y


def _check_labels(y, owner, n_classes=None):
    """``y`` as a 1-D int64 array of labels in [0, n_classes), n_classes defaulting to max + 1."""
    y = _check_1d(y, owner)
    return check_y(y, owner, len(y), n_classes or _n_classes(y))


def _n_classes(y):
    y = np.asarray(y)
    numeric = y.size and np.issubdtype(y.dtype, np.number) and np.isfinite(y).all()
    return int(y.max()) + 1 if numeric and y.max() >= 0 else 1


def _sorted_parts(parts):
    return [np.sort(np.asarray(part, dtype=np.int64)) for part in parts]
