"""load_mnist1d: the published frozen split, seeding, the cache and its damage, argument checks."""
import json
import random
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from flcourse.data.mnist1d import default_cache_dir, load_mnist1d

# ../shared beside the repository holds figures measured from published artefacts.
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "mnist1d-frozen.json"
FIELDS = {"x": "X_train", "y": "y_train", "x_test": "X_test", "y_test": "y_test"}
SMALL = {"n_train": 40, "n_test": 10}  # 50 samples, generated in a few tens of milliseconds


def arrays(data):
    return [getattr(data, field) for field in FIELDS.values()]


def assert_same_arrays(data, other):
    for array, expected in zip(arrays(data), arrays(other)):
        np.testing.assert_array_equal(array, expected, strict=True)


def test_default_arguments_reproduce_the_published_frozen_split(tmp_path):
    if not REFERENCE.exists():
        pytest.skip(f"the published split's fingerprint {REFERENCE} is absent: it lives in "
                    "../shared/reference beside the repository, which this checkout lacks")
    reference = json.loads(REFERENCE.read_text())

    data = load_mnist1d(cache_dir=tmp_path, verbose=False)

    assert data.n_classes == 10 and data.n_features == 40
    for key, field in FIELDS.items():
        array, expected = getattr(data, field), reference[key]
        first = expected["first_row_or_items"]
        head = array[0, :len(first)] if array.ndim == 2 else array[:len(first)]
        assert array.shape == tuple(expected["shape"]) and str(array.dtype) == expected["dtype"]
        np.testing.assert_allclose(array.sum(), expected["sum"], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(np.abs(array).sum(), expected["abs_sum"], rtol=1e-12)
        np.testing.assert_allclose(head, first, rtol=0, atol=1e-11)  # the JSON keeps 12 decimals


def test_same_seed_gives_the_same_arrays_and_another_seed_other_arrays(tmp_path):
    data = load_mnist1d(**SMALL, seed=7, cache_dir=tmp_path / "a", verbose=False)
    again = load_mnist1d(**SMALL, seed=7, cache_dir=tmp_path / "b", verbose=False)  # generated anew
    other = load_mnist1d(**SMALL, seed=8, cache_dir=tmp_path / "a", verbose=False)

    assert_same_arrays(data, again)
    assert not np.array_equal(data.X_train, other.X_train)


def test_sizes_split_one_generated_set_with_as_many_samples_of_each_digit(tmp_path):
    data = load_mnist1d(n_train=40, n_test=10, cache_dir=tmp_path, verbose=False)
    split_elsewhere = load_mnist1d(n_train=30, n_test=20, cache_dir=tmp_path, verbose=False)

    assert data.X_train.shape == (40, 40) and data.X_test.shape == (10, 40)
    labels = np.concatenate([data.y_train, data.y_test])
    np.testing.assert_array_equal(np.bincount(labels), [5] * 10)
    np.testing.assert_array_equal(split_elsewhere.X_train, data.X_train[:30])
    np.testing.assert_array_equal(split_elsewhere.X_test[:10], data.X_train[30:])
    assert len(list(tmp_path.glob("*.npz"))) == 2  # the cache is keyed by both sizes


def test_second_call_reads_the_cache_and_first_call_says_it_generates(tmp_path, monkeypatch,
                                                                      capsys):
    data = load_mnist1d(**SMALL, cache_dir=tmp_path)
    message = capsys.readouterr().err
    monkeypatch.setattr("mnist1d.data.make_dataset", lambda *args: pytest.fail("generated again"))

    again = load_mnist1d(**SMALL, cache_dir=tmp_path)

    assert message.startswith("Generating MNIST-1D (50 samples, seed 42) once; caching it in ")
    assert str(tmp_path) in message and message.endswith(" s.\n") and message.count("\n") == 1
    assert capsys.readouterr().err == ""
    assert_same_arrays(again, data)
    name = f"mnist1d-{version('mnist1d')}-train40-test10-seed42.npz"
    assert [path.name for path in tmp_path.iterdir()] == [name]  # no temporary file left


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _overwrite_the_middle(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3: len(raw) // 2] = bytes(len(raw) // 2 - len(raw) // 3)
    path.write_bytes(bytes(raw))


def _other_arrays(path):
    np.savez_compressed(path, X_train=np.zeros((3, 40)), y_train=np.zeros(3, dtype=np.int64),
                        X_test=np.zeros((1, 40)), y_test=np.zeros(1, dtype=np.int64))


@pytest.mark.parametrize("damage", [_truncate, _overwrite_the_middle, _other_arrays,
                                    lambda path: path.write_bytes(b""),
                                    lambda path: path.write_bytes(b"not an npz file")],
                         ids=["truncated", "overwritten", "other arrays", "empty", "garbage"])
def test_damaged_cache_file_is_generated_again_with_a_warning(tmp_path, damage):
    data = load_mnist1d(**SMALL, cache_dir=tmp_path, verbose=False)
    (path,) = tmp_path.iterdir()
    damage(path)

    with pytest.warns(UserWarning, match="The cached MNIST-1D file .* is damaged"):
        again = load_mnist1d(**SMALL, cache_dir=tmp_path, verbose=False)

    assert_same_arrays(again, data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same_arrays(load_mnist1d(**SMALL, cache_dir=tmp_path, verbose=False), data)


def test_interrupted_write_leaves_no_half_written_cache_file(tmp_path, monkeypatch):
    cache_files_while_writing = []

    def interrupted(file, **arrays):
        file.write(b"PK\x03\x04 half a zip file")
        cache_files_while_writing.extend(tmp_path.glob("*.npz"))  # what a killed run leaves
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)

    with pytest.raises(KeyboardInterrupt):
        load_mnist1d(**SMALL, cache_dir=tmp_path, verbose=False)

    assert cache_files_while_writing == [] and list(tmp_path.iterdir()) == []


def test_unwritable_cache_folder_warns_and_still_gives_the_data(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")

    with pytest.warns(UserWarning, match="Could not cache MNIST-1D in .*file"):
        data = load_mnist1d(**SMALL, cache_dir=not_a_folder, verbose=False)

    assert data.X_train.shape == (40, 40)


def test_cache_folder_comes_from_flcourse_data_dir_else_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLCOURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    load_mnist1d(**SMALL, verbose=False)
    chosen = default_cache_dir()
    monkeypatch.delenv("FLCOURSE_DATA_DIR")

    assert chosen == tmp_path / "data" and len(list(chosen.glob("*.npz"))) == 1
    if sys.platform not in ("win32", "darwin"):
        assert default_cache_dir() == tmp_path / "xdg" / "flcourse"


def test_global_random_states_are_left_as_they_were(tmp_path):
    numpy_state, python_state = np.random.get_state(), random.getstate()

    load_mnist1d(**SMALL, seed=3, cache_dir=tmp_path, verbose=False)  # make_dataset seeds both

    np.testing.assert_equal(np.random.get_state(), numpy_state)
    assert random.getstate() == python_state


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_train": -1}, ValueError,
     r"^The 'n_train' parameter of load_mnist1d must be an int in \[1, inf\)\. Got -1 instead\.$"),
    ({"n_test": 0}, ValueError, r"'n_test' parameter of load_mnist1d must be an int in \[1, inf\)"),
    ({"n_train": 4000.0}, TypeError, r"'n_train' .* int in \[1, inf\)\. Got 4000\.0 of type float"),
    ({"n_train": True}, TypeError, r"'n_train' .* Got True of type bool"),
    ({"n_train": 4001}, ValueError,
     r"'n_train' and 'n_test' parameters of load_mnist1d must add up to a multiple of 10 .*"
     r"Got 4001 \+ 1000 = 5001 instead\."),
    ({"seed": -1}, ValueError,
     r"^The 'seed' parameter of load_mnist1d must be an int in \[0, 2\*\*32\)\. Got -1 instead\.$"),
    ({"seed": 2**32}, ValueError, r"'seed' .* \[0, 2\*\*32\)\. Got 4294967296 instead\."),
    ({"seed": None}, TypeError, r"'seed' .* Got None instead\."),
    ({"seed": True}, TypeError, r"'seed' .* Got True instead\."),
    ({"seed": 1.5}, TypeError, r"'seed' .* Got 1\.5 instead\."),
    ({"cache_dir": 3}, TypeError,
     r"'cache_dir' parameter of load_mnist1d must be a str, a path or None\. Got 3 of type int"),
    ({"verbose": "no"}, TypeError, r"'verbose' parameter of load_mnist1d must be a bool"),
])
def test_bad_arguments_raise_errors_naming_parameter_rule_and_value(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        load_mnist1d(**{"cache_dir": tmp_path, **kwargs})
    assert list(tmp_path.iterdir()) == []
