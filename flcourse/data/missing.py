"""Incomplete data: values that go missing, and ways to fill them in across a federation.

A missing value is ``nan``. Two ways to lose values:

- :func:`missing_at_random` (MCAR, missing completely at random): every value is lost with the
  same probability, whatever it is and whoever holds it;
- :func:`missing_not_at_random` (MNAR): whether a value is lost depends on who holds it or on
  the value itself. Some clients never record some features (an older device, a form without
  that field: :func:`unrecorded_columns`), and values above a threshold are lost (a saturated
  sensor: self-masking).

A federation here is a list of per-client arrays ``X_k`` of shape (n_k, n_features); client k
is the k-th entry, as in :func:`~flcourse.federated.make_clients`. Four ways to fill the gaps:
drop the incomplete rows (:func:`drop_incomplete_rows`); each client its own column means
(:func:`local_mean_impute`); the global column means computed from per-client sums and counts
only (:func:`federated_mean_impute`); and the pooled data's means (:func:`centralised_mean_impute`),
the reference that a federation cannot compute directly but the federated version equals.
See notebook 07.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from .._validation import as_real_array, check_rng, check_scalar, derived_rng

# Keys that keep the random streams of the two kinds of missingness apart.
_MCAR, _UNRECORDED, _SELF_MASKED = 1, 2, 3


def _client_rngs(seed, n_clients: int, key: int, owner: str) -> list[np.random.Generator]:
    """One generator per client: from an int seed, ``default_rng([seed, key, k])`` for client k,
    so a client's draws depend on the seed and its id only; from a Generator, its children."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        return [np.random.default_rng([int(seed), key, k]) for k in range(n_clients)]
    rng = check_rng(seed, owner)
    return [derived_rng(rng, key, owner) for _ in range(n_clients)]


def _check_parts(X_parts, owner: str, name: str = "X_parts") -> list[np.ndarray]:
    """The parts as float64 arrays of shape (n_k, n_features), one n_features, no inf."""
    if isinstance(X_parts, np.ndarray) or not isinstance(X_parts, (list, tuple)) or not X_parts:
        raise TypeError(f"The {name!r} parameter of {owner} must be a non-empty list of 2-D arrays, "
                        f"one per client. Got {type(X_parts).__name__} instead.")
    parts = [as_real_array(X, name, owner) for X in X_parts]
    for k, X in enumerate(parts):
        if X.ndim != 2 or X.shape[1] != parts[0].shape[1]:
            raise ValueError(f"The {name!r} parameter of {owner} must hold 2-D arrays with the same "
                             f"number of columns ({parts[0].shape[1:]}). Got shape {X.shape} for client "
                             f"{k} instead.")
        if np.isinf(X).any():
            raise ValueError(f"The {name!r} parameter of {owner} must hold finite numbers or nan "
                             f"(missing). Got inf in client {k}'s array instead.")
    return parts


def _one_or_many(X, owner: str):
    """(parts, was_single): a 2-D array is a federation of one client (id 0)."""
    if isinstance(X, (list, tuple)):
        return _check_parts(X, owner, "X"), False
    return _check_parts([X], owner, "X"), True


def missing_at_random(X, rate: float, *, seed=None):
    """Lose every value with probability ``rate`` (MCAR): ``X_ij`` becomes nan when ``U_ij < rate``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), or a list of them (one per client)
    rate : float in [0, 1]
    seed : int, numpy.random.Generator or None
        With an int, client k's mask comes from ``default_rng([seed, 1, k])``: it depends on the
        seed and the client's id only. A single array is client 0.

    Returns
    -------
    X_missing : a new array (or list of arrays) of the same shapes, with nan where values are lost
    """
    parts, single = _one_or_many(X, "missing_at_random")
    check_scalar(rate, "rate", "missing_at_random", low=0, high=1, closed="both")
    rngs = _client_rngs(seed, len(parts), _MCAR, "missing_at_random")
    out = [np.where(rng.random(part.shape) < rate, np.nan, part) for part, rng in zip(parts, rngs)]
    return out[0] if single else out


def unrecorded_columns(n_clients: int, n_features: int, *, client_fraction: float,
                       n_unrecorded: int, seed=None) -> list[np.ndarray]:
    """The columns each client never records: for :func:`missing_not_at_random`.

    Client k is affected with probability ``client_fraction``; an affected client never records
    ``n_unrecorded`` columns drawn without replacement, its own set. With an int seed both draws
    come from ``default_rng([seed, 2, k])``, so they depend on the seed and k only.

    Returns
    -------
    columns : list of ``n_clients`` sorted int64 arrays (empty for a client that records all)
    """
    owner = "unrecorded_columns"
    check_scalar(n_clients, "n_clients", owner, int, low=1, closed="left")
    check_scalar(n_features, "n_features", owner, int, low=1, closed="left")
    check_scalar(client_fraction, "client_fraction", owner, low=0, high=1, closed="both")
    check_scalar(n_unrecorded, "n_unrecorded", owner, int, low=0, high=n_features, closed="both")
    columns = []
    for rng in _client_rngs(seed, n_clients, _UNRECORDED, owner):
        affected = rng.random() < client_fraction
        chosen = rng.choice(n_features, size=n_unrecorded, replace=False) if affected else []
        columns.append(np.sort(np.asarray(chosen, dtype=np.int64)))
    return columns


def missing_not_at_random(X_parts, *, client_fraction: float = 0.5, n_unrecorded: int = 0,
                          threshold=None, rate: float = 1.0, seed=None) -> list[np.ndarray]:
    """Lose values depending on who holds them and on what they are (MNAR).

    Two mechanisms, either or both:

    - unrecorded features: client k's columns ``unrecorded_columns(...)[k]`` are nan in every row;
    - self-masking: a value above its feature's threshold, ``X_ij > t_j``, is lost with
      probability ``rate`` (``default_rng([seed, 3, k])`` for client k).

    Parameters
    ----------
    X_parts : list of ndarrays of shape (n_k, n_features), one per client
    client_fraction : float in [0, 1], default=0.5
    n_unrecorded : int in [0, n_features], default=0 (no unrecorded features)
    threshold : float, array of shape (n_features,) or None (no self-masking)
    rate : float in [0, 1], default=1.0
    seed : int, numpy.random.Generator or None

    Returns
    -------
    X_missing : list of new arrays of the same shapes, with nan where values are lost
    """
    owner = "missing_not_at_random"
    parts = _check_parts(X_parts, owner)
    n_features = parts[0].shape[1]
    check_scalar(rate, "rate", owner, low=0, high=1, closed="both")
    columns = unrecorded_columns(len(parts), n_features, client_fraction=client_fraction,
                                 n_unrecorded=n_unrecorded, seed=seed)
    out = [part.copy() for part in parts]
    for part, cols in zip(out, columns):
        part[:, cols] = np.nan
    if threshold is not None:
        t = as_real_array(threshold, "threshold", owner)
        if t.shape not in ((), (n_features,)) or np.isnan(t).any():
            raise ValueError(f"The 'threshold' parameter of {owner} must be a number or an array of "
                             f"shape ({n_features},) without nan. Got shape {t.shape} instead.")
        for part, rng in zip(out, _client_rngs(seed, len(out), _SELF_MASKED, owner)):
            part[(part > t) & (rng.random(part.shape) < rate)] = np.nan
    return out


def drop_incomplete_rows(X_parts, y_parts) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Keep only each client's complete rows (no nan), and their labels.

    A client may be left with no rows at all: it then has nothing to train on, and a caller
    building clients (``make_clients`` refuses empty parts) leaves it out.
    """
    parts = _check_parts(X_parts, "drop_incomplete_rows")
    if not isinstance(y_parts, (list, tuple)) or len(y_parts) != len(parts):
        raise ValueError(f"The 'y_parts' parameter of drop_incomplete_rows must be a list of "
                         f"{len(parts)} label arrays, one per client. Got {type(y_parts).__name__} "
                         f"of length {len(y_parts) if hasattr(y_parts, '__len__') else '?'} instead.")
    ys = [np.asarray(y) for y in y_parts]
    for k, (X, y) in enumerate(zip(parts, ys)):
        if y.shape != (len(X),):
            raise ValueError(f"The 'y_parts' parameter of drop_incomplete_rows must have one label "
                             f"per row of X_parts. Got shape {y.shape} for client {k}, whose X has "
                             f"{len(X)} rows, instead.")
    keep = [~np.isnan(X).any(axis=1) for X in parts]
    return [X[k] for X, k in zip(parts, keep)], [y[k] for y, k in zip(ys, keep)]


def fill_missing(X, values) -> np.ndarray:
    """A copy of ``X`` with each nan in column j replaced by ``values[j]``."""
    return np.where(np.isnan(X), values, X)


def _check_fallback(fallback, owner: str) -> float:
    return check_scalar(fallback, "fallback", owner)


def local_mean_impute(X_parts, *, fallback: float = 0.0) -> list[np.ndarray]:
    """Each client fills its gaps with its own column means: m_kj = mean of its observed X_kij.

    Nothing leaves the client. A column client k never observed has no local mean; it is filled
    with ``fallback`` (default 0.0), because without communication the client has no other
    estimate. For standardised features 0 is the (training) mean; for digits' pixels, blank ink.
    """
    parts = _check_parts(X_parts, "local_mean_impute")
    _check_fallback(fallback, "local_mean_impute")
    return [fill_missing(X, _means(*client_sums_and_counts(X), fallback)) for X in parts]


def client_sums_and_counts(X) -> tuple[np.ndarray, np.ndarray]:
    """What a client sends for federated mean imputation: per feature, the sum of its observed
    values, s_kj = Σ_i X_kij over observed i, and how many there are, c_kj.

    Two vectors of shape (n_features,) whatever n_k is, and no single value: these sums are what
    secure aggregation (chapter 08) can add up without the server seeing any one client's.
    """
    X = _check_parts([X], "client_sums_and_counts", "X")[0]
    observed = ~np.isnan(X)
    return np.where(observed, X, 0.0).sum(axis=0), observed.sum(axis=0).astype(np.float64)


def _means(sums, counts, fallback):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), fallback)


def aggregate_means(sums, counts, *, fallback: float = 0.0) -> np.ndarray:
    """The server's step: global means m_j = Σ_k s_kj / Σ_k c_kj from the clients' sums and counts.

    Parameters
    ----------
    sums, counts : array_like of shape (n_clients, n_features)
        Row k is what :func:`client_sums_and_counts` returned for client k.
    fallback : float, default=0.0
        The mean of a column that no client observed.

    Returns
    -------
    means : ndarray of shape (n_features,), equal to the pooled data's ``nanmean`` per column
    """
    sums = as_real_array(sums, "sums", "aggregate_means")
    counts = as_real_array(counts, "counts", "aggregate_means")
    if sums.ndim != 2 or counts.shape != sums.shape or (counts < 0).any() or not np.isfinite(sums).all():
        raise ValueError(f"The 'sums' and 'counts' parameters of aggregate_means must be finite arrays "
                         f"of one shape (n_clients, n_features), counts >= 0. Got shapes {sums.shape} "
                         f"and {counts.shape} instead.")
    return _means(sums.sum(axis=0), counts.sum(axis=0), _check_fallback(fallback, "aggregate_means"))


def federated_mean_impute(X_parts, *, fallback: float = 0.0) -> list[np.ndarray]:
    """Every client fills its gaps with the global column means, computed from sums and counts.

    Each client sends only :func:`client_sums_and_counts`; the server adds them
    (:func:`aggregate_means`) and sends back m_j = Σ_k s_kj / Σ_k c_kj, which equals the pooled
    data's column mean: the same result as :func:`centralised_mean_impute`, without pooling.
    """
    parts = _check_parts(X_parts, "federated_mean_impute")
    _check_fallback(fallback, "federated_mean_impute")
    sums, counts = zip(*(client_sums_and_counts(X) for X in parts))
    means = aggregate_means(np.array(sums), np.array(counts), fallback=fallback)
    return [fill_missing(X, means) for X in parts]


def centralised_mean_impute(X_parts, *, fallback: float = 0.0) -> list[np.ndarray]:
    """The reference: pool every client's rows, take each column's mean of the observed values
    (``fallback`` for a column nobody observed), fill every gap with it, split back per client."""
    parts = _check_parts(X_parts, "centralised_mean_impute")
    _check_fallback(fallback, "centralised_mean_impute")
    pooled = np.concatenate(parts)
    with warnings.catch_warnings():  # a column nobody observed: "Mean of empty slice"
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(pooled, axis=0)
    means[np.isnan(means)] = fallback
    return [fill_missing(X, means) for X in parts]


IMPUTATIONS = {"local": local_mean_impute, "federated": federated_mean_impute,
               "centralised": centralised_mean_impute}
