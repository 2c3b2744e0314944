import subprocess
import sys
from math import ceil

import numpy as np
import pytest
from sklearn import datasets
from sklearn.model_selection import train_test_split

import flcourse as fl
from flcourse._validation import check_rng
from flcourse.data import stratified_split

RAW_LOADERS = {"digits": fl.data.datasets.load_digits_raw, "breast_cancer": fl.data.datasets.load_breast_cancer_raw}
SKLEARN_LOADERS = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer}


def test_digits_split_is_scaled_stratified_and_seeded():
    data, again = fl.load_digits(seed=3), fl.load_digits(seed=3)

    assert data.X_train.shape == (1347, 64) and data.X_test.shape == (450, 64)
    assert 0.0 <= data.X_train.min() and data.X_train.max() <= 1.0
    np.testing.assert_array_equal(data.y_test, again.y_test)
    assert not np.array_equal(data.y_test, fl.load_digits(seed=4).y_test)
    train_share = np.bincount(data.y_train) / len(data.y_train)
    test_share = np.bincount(data.y_test) / len(data.y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)
    assert repr(data) == "Dataset('digits', train=(1347, 64), test=(450, 64), n_classes=10)"


def test_breast_cancer_is_standardised_on_the_training_split():
    data = fl.load_breast_cancer(seed=0)

    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1, atol=1e-12)
    assert data.n_classes == 2 and data.n_features == 30


@pytest.mark.parametrize("test_size", [0, 1, 1.5, -0.1])
def test_bad_test_size_is_rejected(test_size):
    with pytest.raises(ValueError, match=r"'test_size' parameter of load_digits must be a float in \(0, 1\)"):
        fl.load_digits(test_size=test_size)



@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_raw_arrays_equal_scikit_learns(name):
    X, y = RAW_LOADERS[name]()
    X_sk, y_sk = SKLEARN_LOADERS[name](return_X_y=True)

    assert X.dtype == X_sk.dtype == np.float64 and y.dtype == y_sk.dtype
    np.testing.assert_array_equal(X, X_sk, strict=True)
    np.testing.assert_array_equal(y, y_sk, strict=True)


def _made_up_labels(counts, labels, seed=0):
    return np.random.default_rng(seed).permutation(np.repeat(labels, counts))


SPLIT_LABELS = {
    "digits": datasets.load_digits(return_X_y=True)[1],
    "breast_cancer": datasets.load_breast_cancer(return_X_y=True)[1],
    "tied_3333": _made_up_labels([3, 3, 3, 3], [0, 1, 2, 3]),  # every remainder ties
    "tied_3332": _made_up_labels([3, 3, 3, 2], [7, 2, 5, 0]),  # ties below the largest remainder
    "tied_5544": _made_up_labels([5, 5, 4, 4, 2], [4, 3, 2, 1, 0], seed=1),
}
SPLIT_STATES = [*range(31), 12345, 2**31 - 1, 987_654_321]


def _sizes_leaving_every_class_in_both_splits(y):
    n_classes = len(np.unique(y))
    return [size for size in (0.1, 0.25, 1 / 3, 0.5, 0.9)
            if n_classes <= ceil(size * len(y)) <= len(y) - n_classes]


@pytest.mark.parametrize("name, test_size", [
    (name, size) for name, y in SPLIT_LABELS.items()
    for size in _sizes_leaving_every_class_in_both_splits(y)])
def test_stratified_split_equals_scikit_learns_train_test_split(name, test_size):
    y = SPLIT_LABELS[name]
    X = np.arange(2 * len(y), dtype=np.float64).reshape(len(y), 2)
    for state in SPLIT_STATES:
        train, test = stratified_split(y, test_size, state, "test")
        expected = train_test_split(X, y, test_size=test_size, stratify=y, random_state=state)

        for ours, theirs in zip([X[train], X[test], y[train], y[test]], expected):
            assert np.array_equal(ours, theirs), (name, test_size, state)


@pytest.mark.parametrize("y, test_size", [
    (_made_up_labels([3, 3, 3, 1], [0, 1, 2, 3]), 0.5),  # a class with one sample
    (_made_up_labels([3, 3, 3, 3], [0, 1, 2, 3]), 0.2),  # 3 test samples for 4 classes
    (_made_up_labels([3, 3, 3, 3], [0, 1, 2, 3]), 0.8),  # 2 training samples for 4 classes
])
def test_too_small_splits_are_rejected_where_scikit_learn_rejects_them(y, test_size):
    with pytest.raises(ValueError):
        train_test_split(y, test_size=test_size, stratify=y, random_state=0)
    with pytest.raises(ValueError, match="'test_size' parameter of test must leave"):
        stratified_split(y, test_size, 0, "test")


@pytest.mark.parametrize("test_size", [0.001, 0.999])
def test_digits_rejects_a_test_size_leaving_a_class_out_of_a_split(test_size):
    with pytest.raises(ValueError, match=r"'test_size' parameter of load_digits must leave at least "
                                         r"one sample of each of the 10 classes in both splits"):
        fl.load_digits(test_size=test_size)


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("test_size", [0.25, 0.4])
def test_loaders_give_the_split_the_scikit_learn_implementation_gave(seed, test_size):
    """The loaders used to call train_test_split; committed notebook outputs rely on its splits."""
    for load, name in [(fl.load_digits, "digits"), (fl.load_breast_cancer, "breast_cancer")]:
        X, y = SKLEARN_LOADERS[name](return_X_y=True)
        X = X / 16.0 if name == "digits" else X
        state = int(check_rng(seed, "load_digits").integers(2**31))
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_size, stratify=y, random_state=state)
        if name == "breast_cancer":
            mean, std = X_train.mean(axis=0), X_train.std(axis=0)
            X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
        data = load(seed=seed, test_size=test_size)

        for ours, theirs in zip([data.X_train, data.X_test, data.y_train, data.y_test],
                                [X_train, X_test, y_train, y_test]):
            np.testing.assert_array_equal(ours, theirs, strict=True)


def test_loaders_do_not_import_scikit_learn():
    code = ("import sys, flcourse; flcourse.load_digits(); flcourse.load_breast_cancer(); "
            "print('sklearn' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert run.stdout.strip() == "False"


def test_loaders_ask_for_scikit_learn_when_it_is_missing(monkeypatch):
    find_spec = fl.data.datasets.importlib.util.find_spec
    monkeypatch.setattr(fl.data.datasets.importlib.util, "find_spec",
                        lambda name, *args: None if name == "sklearn" else find_spec(name, *args))

    with pytest.raises(ImportError, match="load_breast_cancer reads a dataset bundled with "
                                          "scikit-learn.*pip install scikit-learn"):
        fl.load_breast_cancer()

def test_fedprox_synthetic_has_the_papers_shape():
    X, y, partition = fl.make_fedprox_synthetic(1, 1, seed=0)

    assert X.shape[1] == 60 and len(partition) == 30
    assert set(np.unique(y)) <= set(range(10))
    fl.check_partition(partition, len(y))
    assert min(len(part) for part in partition) >= 50


def test_fedprox_synthetic_inputs_have_the_papers_covariance():
    X, _, _ = fl.make_fedprox_synthetic(0, 0, iid=True, n_clients=4, seed=0)
    X = X[:20_000] if len(X) > 20_000 else X

    np.testing.assert_allclose(X.var(axis=0)[:5], np.arange(1, 6) ** -1.2, rtol=0.25)
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=0.1)


def test_fedprox_synthetic_iid_clients_share_one_labelling_model_and_niid_clients_do_not():
    from sklearn.linear_model import LogisticRegression

    def worst_client_accuracy(X, y, partition):
        model = LogisticRegression(C=100, max_iter=3000).fit(X, y)
        return min(model.score(X[part], y[part]) for part in partition)

    assert worst_client_accuracy(*fl.make_fedprox_synthetic(0, 0, iid=True, seed=1)) > 0.95
    assert worst_client_accuracy(*fl.make_fedprox_synthetic(1, 1, seed=1)) < 0.8


def test_fedprox_synthetic_is_reproducible_and_alpha_matters():
    first, again = fl.make_fedprox_synthetic(0.5, 0.5, seed=2), fl.make_fedprox_synthetic(0.5, 0.5, seed=2)

    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])


def test_fedprox_synthetic_rejects_negative_alpha():
    with pytest.raises(ValueError, match=r"'alpha' parameter of make_fedprox_synthetic must be a float in \[0, inf\). Got -1"):
        fl.make_fedprox_synthetic(-1, 0)
