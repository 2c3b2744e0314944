"""Argument checks shared by every public function.

Every message has one shape, so a learner always knows what was wrong:

    The 'lr' parameter of sgd must be a float in (0, inf). Got -1 instead.
"""
from __future__ import annotations

import math
import numbers

import numpy as np


def check_scalar(value, name: str, owner: str, kind: type = float, *, low=None, high=None,
                 closed: str = "neither", allow_inf: bool = False):
    """Return ``value`` if it is a number of ``kind`` inside the interval, else raise.

    Parameters
    ----------
    value : object
        The value to check.
    name, owner : str
        The parameter's name and the function or class it belongs to.
    kind : {float, int}
        ``int`` accepts integers only; ``float`` accepts any real number.
    low, high : float or None
        Bounds of the interval; ``None`` means unbounded.
    closed : {"neither", "left", "right", "both"}
        Which bounds belong to the interval.
    allow_inf : bool, default=False
        Accept ``inf`` (or ``-inf``) as a value on an unbounded side, for the few parameters
        where infinity means "no limit". Otherwise non-finite values are refused: nan always.
    """
    interval = _interval_text(low, high, closed, allow_inf)
    expected = f"{'an int' if kind is int else 'a float'} in {interval}"
    real = numbers.Integral if kind is int else numbers.Real
    if isinstance(value, bool) or not isinstance(value, real):
        raise TypeError(f"The {name!r} parameter of {owner} must be {expected}. "
                        f"Got {value!r} of type {type(value).__name__} instead.")
    finite = _is_finite(value)
    below = low is not None and (value < low or (value == low and closed in ("neither", "right")))
    above = high is not None and (value > high or (value == high and closed in ("neither", "left")))
    if (not finite and not (allow_inf and value in (np.inf, -np.inf))) or below or above:
        raise ValueError(f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead.")
    return value


def _is_finite(value) -> bool:
    """Whether a real number is finite; Python ints and fractions of any size are."""
    if isinstance(value, numbers.Integral):
        return True
    try:
        return math.isfinite(value)
    except OverflowError:  # a Fraction too large for a float is still finite
        return True


def _interval_text(low, high, closed: str, allow_inf: bool = False) -> str:
    left = "[" if (closed in ("left", "both") and low is not None) or (allow_inf and low is None) else "("
    right = "]" if (closed in ("right", "both") and high is not None) or (allow_inf and high is None) else ")"
    low_text = "-inf" if low is None else f"{low:g}"
    high_text = "inf" if high is None else f"{high:g}"
    return f"{left}{low_text}, {high_text}{right}"


def as_real_array(value, name: str, owner: str) -> np.ndarray:
    """Return ``value`` as a float64 array; raise ``TypeError`` unless it holds real numbers.

    Complex numbers and None are refused rather than cast (to a real part and to nan).
    """
    try:
        array = np.asarray(value)
        if np.iscomplexobj(array):
            raise TypeError("complex numbers are not real")
        if array.dtype == object and any(item is None for item in array.flat):
            raise TypeError("None is not a number")  # numpy would cast it to nan
        return array.astype(np.float64, copy=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"The {name!r} parameter of {owner} must be an array of real numbers. "
                        f"Got {type(value).__name__} instead ({error}).") from None


def check_X(X, owner: str, n_features: int | None = None, name: str = "X") -> np.ndarray:
    """Return ``X`` as a finite float64 array of shape (n_samples, n_features), else raise."""
    X = as_real_array(X, name, owner)
    if X.ndim != 2:
        raise ValueError(f"The {name!r} parameter of {owner} must be a 2-D array of shape "
                         f"(n_samples, n_features). Got an array of shape {X.shape} instead.")
    if X.shape[0] == 0:
        raise ValueError(f"The {name!r} parameter of {owner} must hold at least one sample. "
                         f"Got an array of shape {X.shape} instead.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"The {name!r} parameter of {owner} must have {n_features} columns "
                         f"(n_features). Got an array of shape {X.shape} instead.")
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"The {name!r} parameter of {owner} must hold finite numbers only. "
                         f"Got {X[tuple(bad)]} at row {bad[0]}, column {bad[1]} instead.")
    return X


def check_y(y, owner: str, n_samples: int, n_classes: int | None = None, name: str = "y") -> np.ndarray:
    """Return ``y`` as a 1-D array of length ``n_samples``, else raise.

    With ``n_classes`` given, ``y`` must hold integer labels in ``[0, n_classes)`` and is
    returned as int64; without it, ``y`` must hold finite real targets and is returned as float64.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"The {name!r} parameter of {owner} must be a 1-D array. "
                         f"Got an array of shape {y.shape} instead.")
    if y.shape[0] != n_samples:
        raise ValueError(f"The {name!r} parameter of {owner} must have one entry per row of X "
                         f"({n_samples}). Got {y.shape[0]} entries instead.")
    real = np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)
    if n_classes is None:
        if not real:
            raise ValueError(f"The {name!r} parameter of {owner} must hold finite real targets. "
                             f"Got values of dtype {y.dtype} instead.")
        if not np.isfinite(y).all():
            bad = np.flatnonzero(~np.isfinite(y))[0]
            raise ValueError(f"The {name!r} parameter of {owner} must hold finite real targets. "
                             f"Got {y[bad]} at position {bad} instead.")
        return y.astype(np.float64, copy=False)
    if not real:
        raise ValueError(f"The {name!r} parameter of {owner} must hold integer class labels. "
                         f"Got values of dtype {y.dtype} instead.")
    if y.size and not np.all(y == np.round(y)):
        bad = np.flatnonzero(y != np.round(y))[0]
        raise ValueError(f"The {name!r} parameter of {owner} must hold integer class labels. "
                         f"Got {y[bad]} at position {bad} instead.")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)][0]
        raise ValueError(f"The {name!r} parameter of {owner} must hold labels in [0, {n_classes - 1}] "
                         f"(n_classes={n_classes}). Got label {bad} instead.")
    return y.astype(np.int64, copy=False)


def check_finite(array: np.ndarray, name: str, owner: str) -> np.ndarray:
    """Return ``array`` if every entry is finite, else raise naming how many are not."""
    if not np.isfinite(array).all():
        raise ValueError(f"The {name!r} parameter of {owner} must hold finite numbers only. "
                         f"Got {int((~np.isfinite(array)).sum())} non-finite entries instead.")
    return array


def check_params(params, n_params: int, owner: str, name: str = "params") -> np.ndarray:
    """Return ``params`` as a float64 vector of length ``n_params``, else raise."""
    params = as_real_array(params, name, owner)
    if params.shape != (n_params,):
        raise ValueError(f"The {name!r} parameter of {owner} must be a flat vector of shape "
                         f"({n_params},). Got an array of shape {params.shape} instead.")
    check_finite(params, name, owner)
    return params


def check_rng(seed, owner: str, name: str = "seed") -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from an int seed, a Generator or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or _is_seed_int(seed):
        return np.random.default_rng(seed)
    raise _seed_error(seed, owner, name)


def derived_rng(seed, key: int, owner: str, name: str = "seed") -> np.random.Generator:
    """Return a generator for one purpose (``key``) derived from ``seed``, without using it up.

    A derived stream is independent of the seed's own stream, and making or drawing from it does
    not shift the seed's own stream: a caller can take, say, initial parameters from
    ``derived_rng(seed, 1, ...)`` and still draw minibatches from ``check_rng(seed, ...)``
    exactly as if it had not.

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        An int gives ``default_rng([seed, key])``, so each key has its own reproducible stream.
        A Generator gives a child of its ``SeedSequence`` (``seed_seq.spawn(1)[0]``; ``key`` is
        then unused and each call gives a new child); a Generator without a SeedSequence (built
        on a legacy bit generator) gives a child seeded by one draw from it, which does advance it.
        None gives an unseeded generator.
    key : int
        Which purpose the stream serves, e.g. 1 for initial parameters.
    owner, name : str
        For the error message, as in :func:`check_rng`.
    """
    if isinstance(seed, np.random.Generator):
        seed_seq = getattr(seed.bit_generator, "seed_seq", None)
        if isinstance(seed_seq, np.random.SeedSequence):
            return np.random.default_rng(seed_seq.spawn(1)[0])
        return np.random.default_rng(int(seed.integers(2**63)))
    if seed is None:
        return np.random.default_rng()
    if _is_seed_int(seed):
        return np.random.default_rng([seed, key])
    raise _seed_error(seed, owner, name)


def _is_seed_int(seed) -> bool:
    return isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0


def _seed_error(seed, owner, name) -> TypeError:
    return TypeError(f"The {name!r} parameter of {owner} must be a non-negative int, a "
                     f"numpy.random.Generator or None. Got {seed!r} instead.")


def check_choice(value, name: str, owner: str, choices) -> object:
    """Return ``value`` if it is one of ``choices``, else raise."""
    try:
        known = value in choices
    except TypeError:  # an unhashable value is in no set of choices
        known = False
    if not known:
        raise ValueError(f"The {name!r} parameter of {owner} must be one of {sorted(choices)}. "
                         f"Got {value!r} instead.")
    return value


def check_bool(value, name: str, owner: str) -> bool:
    """Return ``value`` as a bool if it is a Python or numpy bool, else raise ``TypeError``.

    Truthiness is not enough: ``fit_intercept="no"`` must not mean True.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"The {name!r} parameter of {owner} must be a bool (True or False). "
                        f"Got {value!r} of type {type(value).__name__} instead.")
    return bool(value)


def check_optional_callable(value, name: str, owner: str):
    """Return ``value`` if it is callable or None, else raise ``TypeError``."""
    if value is not None and not callable(value):
        raise TypeError(f"The {name!r} parameter of {owner} must be callable or None. "
                        f"Got {value!r} of type {type(value).__name__} instead.")
    return value


def check_optional_str(value, name: str, owner: str):
    """Return ``value`` if it is a str or None, else raise ``TypeError``."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"The {name!r} parameter of {owner} must be a str or None. "
                        f"Got {value!r} of type {type(value).__name__} instead.")
    return value


class Interval:
    """A constraint declared as data (scikit-learn's ``Interval``): a number of ``kind`` in
    an interval. ``none_ok`` also admits None, ``inf_ok`` admits inf as "no limit"."""

    def __init__(self, kind: type, low, high, *, closed: str = "neither", none_ok: bool = False,
                 inf_ok: bool = False):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed
        self.none_ok, self.inf_ok = none_ok, inf_ok

    def check(self, value, name: str, owner: str):
        """Return ``value`` if it meets the constraint, else raise as :func:`check_scalar` does."""
        if value is None and self.none_ok:
            return value
        if self.inf_ok and value == math.inf:
            return value
        return check_scalar(value, name, owner, self.kind, low=self.low, high=self.high, closed=self.closed)

    def invalid_values(self) -> list:
        """Values that break the constraint: for a common test over every public class."""
        values = ["text", math.nan]
        if self.low is not None:
            values.append(self.low if self.closed in ("neither", "right") else self.low - 1)
        if self.high is not None:
            values.append(self.high + 1)
        if self.kind is int:
            values.append(1.5)
        return values


class Options:
    """A constraint declared as data (scikit-learn's ``StrOptions``): one of ``choices``."""

    def __init__(self, choices):
        self.choices = set(choices)

    def check(self, value, name: str, owner: str):
        return check_choice(value, name, owner, self.choices)

    def invalid_values(self) -> list:
        return ["no such option", 3]


def check_constraints(obj, constraints: dict) -> None:
    """Check each attribute of ``obj`` named in ``constraints`` against its constraint."""
    owner = type(obj).__name__
    for name, constraint in constraints.items():
        constraint.check(getattr(obj, name), name, owner)
