"""What makes a list of index arrays a partition: 1-D integer indices in range, each sample once.

:func:`check_index_partition` is the one check behind every function and class that takes a
partition (the partition functions' statistics, data-parallel workers, federated clients);
:func:`check_partition` is its public face for readers. See notebook 02.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .._validation import check_bool, check_scalar


def check_index_partition(partition, n_samples: int, owner: str, *, name: str = "partition",
                          cover: bool = True) -> list[np.ndarray]:
    """Return the parts of ``partition`` as int64 index arrays; raise unless they are valid.

    Valid means: a sequence of 1-D integer arrays (or lists) of indices in ``[0, n_samples)``,
    each sample in at most one part and, with ``cover=True``, every sample in some part. Float
    arrays are refused even when their values are whole (casting would silently truncate 0.5),
    boolean masks are refused, and negative indices are refused rather than counted from the
    end. Empty parts of any dtype are fine.

    Parameters
    ----------
    partition : sequence of 1-D integer array-likes
    n_samples : int
        Size of the set the indices point into.
    owner, name : str
        The function or class checking, and the parameter's name, for error messages.
    cover : bool, default=True
        Also require every sample to be in some part (False: a subset, as for a sample of clients).

    Returns
    -------
    parts : list of ndarrays of dtype int64
    """
    check_scalar(n_samples, "n_samples", owner, int, low=0, closed="left")
    check_bool(cover, "cover", "check_index_partition")
    parts = [_index_array(part, k, owner, name) for k, part in enumerate(_iterate(partition, owner, name))]
    for k, part in enumerate(parts):
        _check_range(part, k, n_samples, owner, name)
    parts = [part.astype(np.int64, copy=False) for part in parts]
    _check_each_once(parts, n_samples, owner, name, cover)
    return parts


def _iterate(partition, owner, name):
    """``partition`` itself if it can be a sequence of parts, else raise ``TypeError``."""
    scalar = isinstance(partition, np.ndarray) and partition.ndim == 0
    if scalar or isinstance(partition, (str, bytes, dict)) or not isinstance(partition, Iterable):
        raise TypeError(f"The {name!r} parameter of {owner} must be a sequence of 1-D integer index "
                        f"arrays, one per part. Got {partition!r} of type {type(partition).__name__} "
                        f"instead.")
    return partition


def _index_array(part, k, owner, name) -> np.ndarray:
    """Part ``k`` as a 1-D integer array (empty parts as int64), else raise."""
    start = f"The {name!r} parameter of {owner} must be a sequence of 1-D integer index arrays."
    try:
        array = np.asarray(part)
    except ValueError as error:  # ragged nested lists
        raise TypeError(f"{start} Got {type(part).__name__} as part {k}, not an array ({error}), "
                        f"instead.") from None
    if array.ndim == 0:
        raise TypeError(f"{start} Got {part!r} of type {type(part).__name__} as part {k} instead "
                        f"(a partition with one part is a list holding one array: [part]).")
    if array.ndim != 1:
        raise ValueError(f"{start} Got an array of shape {array.shape} as part {k} instead.")
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype == bool:
        raise TypeError(f"{start} Got a boolean array as part {k} instead: a mask, not indices "
                        f"(np.flatnonzero(mask) gives its indices).")
    if not np.issubdtype(array.dtype, np.integer):
        hint = "" if array.dtype.kind != "f" else (
            " (a float array is refused even when its values are whole, since casting would "
            "truncate 0.5 to 0: convert it with .astype(int) if they are)")
        raise TypeError(f"{start} Got an array of dtype {array.dtype} as part {k} instead{hint}.")
    return array


def _check_range(part, k, n_samples, owner, name):
    if part.size and (part.min() < 0 or part.max() >= n_samples):
        bad = part[(part < 0) | (part >= n_samples)][0]
        note = " (negative indices are not counted from the end)" if bad < 0 else ""
        raise ValueError(f"The {name!r} parameter of {owner} must hold indices in "
                         f"[0, {n_samples - 1}] (n_samples={n_samples}). Got index {bad} in part {k} "
                         f"instead{note}.")


def _check_each_once(parts, n_samples, owner, name, cover):
    """Raise if a sample is in two parts (or twice in one) or, with ``cover``, in none."""
    counts = np.bincount(np.concatenate([np.zeros(0, np.int64), *parts]), minlength=n_samples)
    repeated, missing = np.flatnonzero(counts > 1), np.flatnonzero(counts == 0) if cover else []
    rule = f"The {name!r} parameter of {owner} must hold each of the {n_samples} samples " + \
        ("exactly once." if cover else "at most once.")
    lost = f"{len(missing)} missing {_plural(len(missing), 'sample', 'samples')}"
    if repeated.size:
        first = repeated[0]
        holders = [k for k, part in enumerate(parts) for _ in range(np.count_nonzero(part == first))]
        where = (f"twice in part {holders[0]}" if holders[0] == holders[1]
                 else f"in part {holders[0]} and part {holders[1]}")
        again = f"{repeated.size} repeated {_plural(repeated.size, 'index', 'indices')}"
        raise ValueError(f"{rule} Got {again}{' and ' + lost if len(missing) else ''} instead; the "
                         f"first repeated, {first}, is {where}.")
    if len(missing):
        raise ValueError(f"{rule} Got {lost} instead (the first is {missing[0]}).")


def _plural(count, one, many):
    return one if count == 1 else many


def check_partition(partition, n_samples: int) -> None:
    """Raise unless ``partition`` puts each of ``n_samples`` samples in exactly one part.

    The parts must be 1-D integer index arrays; see :func:`check_index_partition`, which this
    calls with ``cover=True``.
    """
    check_index_partition(partition, n_samples, "check_partition")
