"""MNIST-1D (Greydanus 2020, arXiv:2011.14439), generated offline by the ``mnist1d`` package and
cached. See data/README.md for the source, the licence and the cache."""
from __future__ import annotations

import numbers
import os
import random
import sys
import tempfile
import time
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np

from .._validation import check_bool, check_scalar
from .datasets import Dataset

OWNER = "load_mnist1d"
N_CLASSES = 10
N_FEATURES = 40
_ARRAYS = ("X_train", "y_train", "X_test", "y_test")
_DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


def load_mnist1d(*, n_train: int = 4000, n_test: int = 1000, seed: int = 42,
                 cache_dir: str | os.PathLike | None = None, verbose: bool = True) -> Dataset:
    """Generate MNIST-1D once with ``mnist1d.data.make_dataset``, then load it from a cache.

    MNIST-1D is a 1-D analogue of MNIST: each sample is a digit's template, padded, stretched,
    scaled, shifted, sheared and made noisy, then resampled to 40 points. Nothing is downloaded
    (the package's ``get_dataset`` would download; this never calls it). The defaults reproduce
    the frozen split published with the paper (``mnist1d_data.pkl``) to rounding; a larger call such
    as ``load_mnist1d(n_train=60_000, n_test=10_000)`` gives a set of MNIST's size, enough for
    100 clients x 600 samples as in McMahan et al. (2017).

    Parameters
    ----------
    n_train, n_test : int, default=4000, 1000
        Training and test samples, each >= 1. ``mnist1d`` makes as many samples of each digit,
        so ``n_train + n_test`` must be a multiple of 10. The whole set of ``n_train + n_test``
        is generated, shuffled and standardised (one mean and one standard deviation over all
        its values, as the package does), then its first ``n_train`` samples are the training
        split: changing either size changes every sample.
    seed : int, default=42
        Seed in [0, 2**32) that ``make_dataset`` gives to the global generators of ``random``
        and ``numpy.random``. 42 is the seed of the published split. Both global generators
        are put back as they were afterwards, so a caller's randomness is never disturbed
        (though another thread drawing from them during the generation would see the change).
    cache_dir : str, path or None, default=None
        Folder of the cache. None means ``$FLCOURSE_DATA_DIR`` if set, else the user's cache
        folder: ``$XDG_CACHE_HOME/flcourse`` or ``~/.cache/flcourse`` on Linux,
        ``~/Library/Caches/flcourse`` on macOS, ``%LOCALAPPDATA%\\flcourse`` on Windows.
    verbose : bool, default=True
        Print one line to stderr while generating (the cache's first use only).

    Returns
    -------
    Dataset
        ``X_train`` of shape (n_train, 40) and ``X_test`` of shape (n_test, 40), float64;
        ``y_train``, ``y_test`` int64 labels in [0, 10); ``n_classes`` 10.

    Notes
    -----
    The cache holds one compressed ``.npz`` file for each (``mnist1d`` version, ``n_train``,
    ``n_test``, ``seed``), named by them: everything that changes the data. It is written to a
    temporary file, then renamed, so an interrupted run never leaves a half-written cache file;
    a damaged one is generated again, with a warning. Generation takes about 1 ms a sample
    (5,000 in ~4 s, 70,000 in ~1 min), plus ~1.5 s to import ``mnist1d`` (which imports
    matplotlib's pyplot); loading from the cache takes 15 ms (150 ms for 70,000 samples).
    """
    n_train, n_test, seed = _check_sizes_and_seed(n_train, n_test, seed)
    verbose = check_bool(verbose, "verbose", OWNER)
    path = _cache_file(n_train, n_test, seed, cache_dir)
    arrays = _read_cache(path, n_train, n_test)
    if arrays is None:
        arrays = _generate(n_train, n_test, seed, path, verbose)
        _write_cache(path, arrays)
    return Dataset("mnist1d", *arrays, N_CLASSES)


def default_cache_dir() -> Path:
    """Return the folder :func:`load_mnist1d` caches in when ``cache_dir`` is None."""
    if os.environ.get("FLCOURSE_DATA_DIR"):
        return Path(os.environ["FLCOURSE_DATA_DIR"]).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "flcourse"


def _check_sizes_and_seed(n_train, n_test, seed) -> tuple[int, int, int]:
    check_scalar(n_train, "n_train", OWNER, int, low=1, closed="left")
    check_scalar(n_test, "n_test", OWNER, int, low=1, closed="left")
    if (n_train + n_test) % N_CLASSES:
        raise ValueError(f"The 'n_train' and 'n_test' parameters of {OWNER} must add up to a "
                         f"multiple of {N_CLASSES} (mnist1d makes as many samples of each digit). "
                         f"Got {n_train} + {n_test} = {n_train + n_test} instead.")
    integer = isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
    if not integer or not 0 <= seed < 2**32:  # the seeds numpy.random.seed takes
        error = ValueError if integer else TypeError
        raise error(f"The 'seed' parameter of {OWNER} must be an int in [0, 2**32). "
                    f"Got {seed!r} instead.")
    return int(n_train), int(n_test), int(seed)


def _cache_file(n_train: int, n_test: int, seed: int, cache_dir) -> Path:
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"The 'cache_dir' parameter of {OWNER} must be a str, a path or None. "
                        f"Got {cache_dir!r} of type {type(cache_dir).__name__} instead.")
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    name = f"mnist1d-{_mnist1d_version()}-train{n_train}-test{n_test}-seed{seed}.npz"
    return folder / name


def _mnist1d_version() -> str:
    """The installed mnist1d's version, read without importing it (which takes seconds)."""
    try:
        return metadata.version("mnist1d")
    except metadata.PackageNotFoundError:
        raise ImportError(f"{OWNER} generates MNIST-1D with the mnist1d package, which is not "
                          "installed. Install it with: pip install mnist1d") from None


def _read_cache(path: Path, n_train: int, n_test: int):
    """Return the four cached arrays, or None if there is no cache file or it is damaged."""
    if not path.exists():
        return None
    expected = [((n_train, N_FEATURES), "float64"), ((n_train,), "int64"),
                ((n_test, N_FEATURES), "float64"), ((n_test,), "int64")]
    try:
        with np.load(path) as file:
            arrays = tuple(file[name] for name in _ARRAYS)
        found = [(array.shape, str(array.dtype)) for array in arrays]
        if found != expected:
            raise ValueError(f"arrays of shapes and dtypes {found}, expected {expected}")
        return arrays
    except _DAMAGED as error:
        warnings.warn(f"The cached MNIST-1D file {path} is damaged ({type(error).__name__}: "
                      f"{error}); generating it again.", UserWarning, stacklevel=3)
        return None


def _generate(n_train: int, n_test: int, seed: int, path: Path, verbose: bool):
    """Run ``make_dataset`` on the package's default arguments with our sizes and seed."""
    from mnist1d.data import get_dataset_args, make_dataset  # imports pyplot, scipy: ~2 s

    args = get_dataset_args()
    # train_split=1 keeps every sample in "x"; we split at n_train ourselves, which for the
    # defaults is where train_split=0.8 splits.
    args.num_samples, args.train_split, args.seed = n_train + n_test, 1.0, seed
    if verbose:
        print(f"Generating MNIST-1D ({n_train + n_test:,} samples, seed {seed}) once; caching it "
              f"in {path} ...", end="", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with _global_random_state_kept():
        data = make_dataset(args)
    if verbose:
        print(f" done in {time.perf_counter() - start:.1f} s.", file=sys.stderr, flush=True)
    X, y = data["x"].astype(np.float64), data["y"].astype(np.int64)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


@contextmanager
def _global_random_state_kept():
    """Restore the global ``random`` and ``numpy.random`` states that ``make_dataset`` seeds."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _write_cache(path: Path, arrays) -> None:
    """Write the arrays to a temporary file beside ``path``, then rename it to ``path``."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.stem + ".", suffix=".tmp",
                                         delete=False) as file:
            temporary = Path(file.name)
            np.savez_compressed(file, **dict(zip(_ARRAYS, arrays)))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        warnings.warn(f"Could not cache MNIST-1D in {path.parent} ({error}); it will be "
                      "generated again next time.", UserWarning, stacklevel=3)
    finally:
        if temporary is not None and temporary.exists():
            temporary.unlink()
