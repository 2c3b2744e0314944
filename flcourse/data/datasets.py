"""Datasets the course uses, all available offline: scikit-learn's bundled sets. See data/README.md
for sources and licences."""
from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from math import ceil
from pathlib import Path

import numpy as np

from .._validation import check_rng, check_scalar


@dataclass(frozen=True, repr=False)
class Dataset:
    """A train/test split of a classification dataset.

    Attributes
    ----------
    name : str
    X_train : ndarray of shape (n_train, n_features)
    y_train : ndarray of shape (n_train,), int labels in [0, n_classes)
    X_test : ndarray of shape (n_test, n_features)
    y_test : ndarray of shape (n_test,)
    n_classes : int
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.X_train.shape}, test={self.X_test.shape}, "
                f"n_classes={self.n_classes})")


def load_digits(*, test_size: float = 0.25, seed=0) -> Dataset:
    """Load scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes).

    Pixels are scaled from 0..16 to [0, 1]; the split is stratified by label and seeded.
    The file bundled with scikit-learn is read without importing scikit-learn, which is slow
    to import; scikit-learn must be installed.
    """
    X, y = load_digits_raw()
    return _split("digits", X / 16.0, y, test_size, seed, "load_digits", standardise=False)


def load_breast_cancer(*, test_size: float = 0.25, seed=0) -> Dataset:
    """Load scikit-learn's Wisconsin breast cancer set (569 samples, 30 features, 2 classes).

    Features are standardised with the training split's mean and standard deviation.
    The file bundled with scikit-learn is read without importing scikit-learn, which is slow
    to import; scikit-learn must be installed.
    """
    X, y = load_breast_cancer_raw()
    return _split("breast_cancer", X, y, test_size, seed, "load_breast_cancer", standardise=True)


def load_digits_raw():
    """Read the arrays ``sklearn.datasets.load_digits(return_X_y=True)`` returns."""
    path = _sklearn_data_file("digits.csv.gz", "load_digits")
    with gzip.open(path, "rt", encoding="utf-8") as file:
        data = np.loadtxt(file, delimiter=",")  # one image a row: 64 pixels, then the label
    return data[:, :-1], data[:, -1].astype(int)


def load_breast_cancer_raw():
    """Read the arrays ``sklearn.datasets.load_breast_cancer(return_X_y=True)`` returns."""
    path = _sklearn_data_file("breast_cancer.csv", "load_breast_cancer")
    data = np.loadtxt(path, delimiter=",", skiprows=1, encoding="utf-8")  # row 1: sizes, names
    return data[:, :-1], data[:, -1].astype(int)


def _sklearn_data_file(name: str, owner: str) -> Path:
    """Return the path of a data file bundled with scikit-learn, without importing it."""
    spec = importlib.util.find_spec("sklearn")  # a top-level package: finds it, runs nothing
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{owner} reads a dataset bundled with scikit-learn, which is not "
                          "installed. Install it with: pip install scikit-learn")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name


def _split(name, X, y, test_size, seed, owner, standardise) -> Dataset:
    check_scalar(test_size, "test_size", owner, low=0, high=1)
    rng = check_rng(seed, owner)
    train, test = stratified_split(y, test_size, int(rng.integers(2**31)), owner)
    X_train, X_test, y_train, y_test = X[train], X[test], y[train], y[test]
    if standardise:
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
        X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    return Dataset(name, X_train.astype(np.float64), y_train.astype(np.int64),
                   X_test.astype(np.float64), y_test.astype(np.int64), int(y.max()) + 1)


def stratified_split(y, test_size, random_state, owner):
    """Return train and test indices, stratified by ``y``, as scikit-learn would draw them.

    Reproduces ``sklearn.model_selection.train_test_split(..., test_size=test_size, stratify=y,
    random_state=random_state)`` for a float ``test_size`` in (0, 1) and an int
    ``random_state``, so that splits are unchanged without importing scikit-learn. It mirrors
    ``_validate_shuffle_split`` and ``StratifiedShuffleSplit._iter_indices`` (scikit-learn 1.x),
    drawing from one ``RandomState`` in the same order.
    """
    n_test = ceil(test_size * len(y))
    n_train = len(y) - n_test
    classes, y_indices, counts = np.unique(y, return_inverse=True, return_counts=True)
    if counts.min() < 2 or min(n_train, n_test) < len(classes):
        raise ValueError(f"The 'test_size' parameter of {owner} must leave at least one sample "
                         f"of each of the {len(classes)} classes in both splits. Got {test_size!r} "
                         f"({n_train} train, {n_test} test samples) instead.")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(random_state)
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_test, rng)
    train, test = [], []
    for i in range(len(classes)):
        shuffled = class_indices[i][rng.permutation(counts[i])]
        train.append(shuffled[:n_i[i]])
        test.append(shuffled[n_i[i]:n_i[i] + t_i[i]])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _approximate_mode(class_counts, n_draws, rng):
    """Split ``n_draws`` across classes in proportion to ``class_counts``, as scikit-learn does.

    A port of ``sklearn.utils.extmath._approximate_mode``: floor the proportional shares, then
    hand the rest out by largest remainder, breaking ties with ``rng.choice`` (called for every
    remainder used, tied or not, as scikit-learn does).
    """
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    remainder = continuous - floored
    for value in np.unique(remainder)[::-1]:
        if need_to_add == 0:
            break
        (inds,) = np.where(remainder == value)
        add_now = min(len(inds), need_to_add)
        floored[rng.choice(inds, size=add_now, replace=False)] += 1
        need_to_add -= add_now
    return floored.astype(int)
