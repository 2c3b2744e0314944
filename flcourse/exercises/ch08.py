"""Self-checks for notebook 08, security and privacy.

Each ``exercise_N`` takes the learner's answer, prints "Correct. ..." or "Not yet. <hint>" and
returns a bool. The references are computed with ``flcourse`` itself: models' gradients and
:mod:`flcourse.privacy`'s leakage, accountant, Shamir shares and fixed-point encoding.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from functools import lru_cache
from itertools import combinations

import numpy as np

from ..data import load_digits
from ..models import MLP, SoftmaxRegression
from ..privacy.accountant import DEFAULT_ORDERS, rdp_subsampled_gaussian, rdp_to_epsilon
from ..privacy.fixed_point import clip_and_encode, decode_sum
from ..privacy.leakage import first_layer_gradient
from ..privacy.shamir import PRIME, lagrange_at_zero, random_element, split_secret
from ._core import call, close, report

# Exercise 2: (z, T, delta, orders); the first has T > 1, the second integer orders only.
DP_CASES = ((10.0, 100, 1e-5, DEFAULT_ORDERS), (5.0, 10, 1e-6, tuple(range(2, 65))), (2.0, 1, 1e-5, DEFAULT_ORDERS))
# Exercise 3: (n_shares, threshold, the x's of the shares given); t = 2 and 4 catch a sign error.
SHAMIR_CASES = ((5, 3, (2, 4, 5)), (6, 4, (6, 1, 3, 5)), (4, 2, (3, 1)))
_FLOAT_DIVISION = ("/ is float division, 53 bits of a 127-bit number: in GF(p) dividing by a is multiplying by "
                   "its inverse, pow(a, -1, p).")
# Exercise 4: the ring Z_{2^32}; the (sign for v > u, sign for v < u) of common mistakes, and their hints.
MODULUS = 2**32
_MASK_VARIANTS = {
    (0, 0): "you returned the inputs unmasked.",
    (-1, 1): "the masks cancel (the sum is right), but the convention is the other way round: client u adds the "
             "mask it shares with each v > u and subtracts it for each v < u. Both ends of a pair must agree who adds.",
    (1, 1): "the masks do not cancel: each pair's mask is added by one client (u, the lower) and subtracted by v.",
    (1, 0): "client v must also subtract the mask it shares with each u < v, or the masks do not cancel."}


# ----------------------------------------------------------------------------- exercise 1
@lru_cache(maxsize=1)
def leakage_cases() -> tuple:
    """((grad_W, grad_b, x), ...): a digits image's gradient of SoftmaxRegression at random parameters (W of
    shape (64, 10)), then of an MLP's first layer (64, 32) whose units 0, 1, 2 are saturated (bias +-40, tanh
    is +-1 to the last bit), so their bias gradients are exactly 0, like ReLU units that are off."""
    X, y = (data := load_digits(seed=0)).X_train, data.y_train
    softmax = SoftmaxRegression(n_features=64, n_classes=10)
    params = np.random.default_rng(0).normal(size=softmax.n_params)
    cases = [first_layer_gradient(softmax, softmax.grad(params, X[:1], y[:1])) + (X[0],)]
    mlp = MLP(n_features=64, n_hidden=32, n_classes=10)
    params = mlp.init_params(seed=0)
    params[64 * 32:64 * 32 + 3] = [40.0, -40.0, 40.0]  # b1[0:3]
    cases.append(first_layer_gradient(mlp, mlp.grad(params, X[1:2], y[1:2])) + (X[1],))
    return tuple(cases)


def exercise_1(recover_input: Callable) -> bool:
    """Check ``recover_input(grad_W, grad_b)``.

    Parameters
    ----------
    recover_input : callable
        Called with one sample's gradient of a dense layer z = x W + b: grad_W of shape
        (n_features, n_units) (flcourse's layout) and grad_b of shape (n_units,). Must return the
        input x, shape (n_features,): x = dL/dW[:, i] / dL/db_i for a unit i with dL/db_i != 0.
    """
    for name, (grad_W, grad_b, x) in zip(("SoftmaxRegression", "the MLP's first layer"), leakage_cases()):
        with np.errstate(divide="ignore", invalid="ignore"):
            answer, error = call(recover_input, grad_W.copy(), grad_b.copy())
        if error:
            return report(False, "", error)
        if not close(answer, x, rtol=1e-10, atol=1e-10):
            return report(False, "", f"For {name}, W of shape {grad_W.shape}: {_leak_hint(answer, grad_W, grad_b, x)}")
    return report(True, "One sample's gradient hands over its input to the last bits, whatever the parameters: a "
                  "unit with dL/db_i = 0 shows nothing (its column is 0 too), any other shows x.", "")


def _leak_hint(answer, grad_W, grad_b, x) -> str:
    n_features, n_units = grad_W.shape
    zero = np.flatnonzero(grad_b == 0).tolist()
    try:
        values = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.zeros(0)
    if values.shape == (n_units,):
        return ("that has one entry per unit: flcourse stores W with shape (n_features, n_units) "
                "(z = x W + b), so x sits in a column, dL/dW[:, i], not in a row.")
    if values.shape != (n_features,):
        return f"return one vector of shape ({n_features},): x = dL/dW[:, i] / dL/db_i for one unit i."
    if zero and (np.isnan(values).any() or not values.any()):
        return (f"units {zero} have dL/db_i = 0 here (saturated tanh units, like ReLUs that are off): their columns "
                "of dL/dW are 0 too, and 0/0 is nan. Divide by a unit with dL/db_i != 0, e.g. the largest |dL/db_i|.")
    if np.isinf(values).any():
        return "inf: you divided by dL/dW, which is 0 wherever a pixel is blank. x = dL/dW[:, i] / dL/db_i."
    if close(values, x, rtol=1e-5, atol=1e-6):
        return "close, but one sample's gradient gives x to the last bits: keep float64 throughout."
    scale = float(values @ x / (x @ x))
    if close(values, scale * x, rtol=1e-9, atol=1e-12):
        return f"your vector is {scale:.3g} times the input: divide column i of dL/dW by dL/db_i of the same unit i."
    return "x = dL/dW[:, i] / dL/db_i: one column of dL/dW divided by that unit's bias gradient."


# ----------------------------------------------------------------------------- exercise 2
def classic_epsilon(z: float, T: int, delta: float, orders) -> tuple[float, float]:
    """(epsilon, its order): min over alpha of T alpha / (2 z^2) + log(1/delta) / (alpha - 1) (Mironov 2017)."""
    alphas = np.asarray(orders, dtype=np.float64)
    eps = T * rdp_subsampled_gaussian(1.0, z, alphas) + math.log(1 / delta) / (alphas - 1)
    return float(eps.min()), float(alphas[np.argmin(eps)])


def _dp_variants(z, T, delta, orders) -> list:
    a = np.asarray(orders, dtype=np.float64)
    one, log_term = a / (2 * z * z), math.log(1 / delta) / (a - 1)
    return [("that is one ε per order: return the smallest, the best bound.", T * one + log_term),
            ("composition: T steps add their RDP, T·α/(2z²); you left out T.", np.min(one + log_term)),
            ("T steps add their RDP, T·α/(2z²), before the conversion: T times ε is far looser.",
             T * np.min(one + log_term)),
            ("the Gaussian's RDP at order α is α/(2z²): you left out the 1/2.", np.min(2 * T * one + log_term)),
            ("every order gives a valid ε: take the minimum over them, not the maximum.", np.max(T * one + log_term)),
            ("the conversion adds log(1/δ)/(α−1) > 0: log(δ) is negative, mind the sign.", np.min(T * one - log_term)),
            ("divide log(1/δ) by α − 1, not by α.", np.min(T * one + math.log(1 / delta) / a)),
            ("that is the tighter conversion of flcourse's rdp_to_epsilon (Canonne et al. 2020): this "
             "exercise asks for the classic one, ρ(α) + log(1/δ)/(α−1).", rdp_to_epsilon(a, T * one, delta)[0])]


def exercise_2(epsilon_of: Callable) -> bool:
    """Check ``epsilon_of(z, T, delta, orders)``, T Gaussian steps without subsampling (q = 1).

    Parameters
    ----------
    epsilon_of : callable
        Called with the noise multiplier z (a float), the number of steps T (an int), delta (a
        float) and an ndarray of Renyi orders alpha > 1. Must return the float
        epsilon = min over the orders of T alpha / (2 z^2) + log(1/delta) / (alpha - 1): the
        Gaussian's RDP, composed over T steps, converted the classic way (Mironov 2017).
    """
    for z, T, delta, orders in DP_CASES:
        answer, error = call(epsilon_of, z, T, delta, np.array(orders, dtype=np.float64))
        if error:
            return report(False, "", error)
        if not close(answer, classic_epsilon(z, T, delta, orders)[0], rtol=1e-9, atol=1e-12):
            return report(False, "", f"For z = {z:g}, T = {T}, δ = {delta:g}: {_dp_hint(answer, z, T, delta, orders)}")
    (z, T, delta, orders), (eps, order) = DP_CASES[0], classic_epsilon(*DP_CASES[0])
    tight, tight_order = rdp_to_epsilon(orders, T * rdp_subsampled_gaussian(1.0, z, orders), delta)
    return report(True, f"For z = {z:g}, T = {T}, δ = {delta:g}: ε = {eps:.3f} at α = {order:g}. From the same "
                  f"RDP, flcourse's rdp_to_epsilon (Canonne et al. 2020, the conversion dp-accounting uses) "
                  f"gives {tight:.3f} at α = {tight_order:g}, {1 - tight / eps:.1%} lower.", "")


def _dp_hint(answer, z, T, delta, orders) -> str:
    expected = classic_epsilon(z, T, delta, orders)[0]
    if isinstance(answer, (tuple, list)) and len(answer) == 2 and close(answer[0], expected, rtol=1e-9):
        return "return ε alone, a float, not a pair."
    hint = next((hint for hint, value in _dp_variants(z, T, delta, orders) if close(answer, value, rtol=1e-9)), None)
    if hint or not isinstance(answer, numbers.Real):
        return hint or "return one float, ε."
    return f"your {answer!r} is not min over α of T·α/(2z²) + log(1/δ)/(α−1) (expected {expected:.6g})."


# ----------------------------------------------------------------------------- exercise 3
@lru_cache(maxsize=1)
def shamir_cases() -> tuple:
    """((secret, threshold, shares given), ...) from split_secret with a seeded numpy Generator."""
    rng = np.random.default_rng(3)
    split = [(s := random_element(rng), t, split_secret(s, n, t, rng=rng), xs) for n, t, xs in SHAMIR_CASES]
    return tuple((secret, t, tuple(shares[x - 1] for x in xs)) for secret, t, shares, xs in split)


def interpolate(points, at: int = 0) -> int:
    """f(at) mod p of the polynomial through ``points`` ((x, y) pairs), with flcourse's Lagrange weights."""
    weights = lagrange_at_zero([(x - at) % PRIME for x, _ in points])  # f(at) is g(0), g(x) = f(x + at)
    return sum(y * w for (_, y), w in zip(points, weights)) % PRIME


def exercise_3(reconstruct: Callable) -> bool:
    """Check ``reconstruct(shares)``, Shamir's secret from t shares.

    Parameters
    ----------
    reconstruct : callable
        Called with a list of t pairs (x, y) of ints, shares of one secret made by
        ``flcourse.privacy.shamir.split_secret`` over GF(p), p = 2**127 - 1 (``PRIME``); the x's are
        distinct but not 1..t. Must return the secret f(0), an int in [0, p), by Lagrange interpolation
        at 0: s = sum_j y_j prod_{m != j} x_m / (x_m - x_j) mod p, dividing by a as pow(a, -1, p).
    """
    for secret, t, shares in shamir_cases():
        answer, error = call(reconstruct, list(shares))
        if error:
            return report(False, "", error)
        if isinstance(answer, bool) or not isinstance(answer, numbers.Integral) or int(answer) != secret:
            hint = _shamir_hint(answer, secret, shares)
            return report(False, "", f"For {t} shares at x = {[x for x, _ in shares]}: {hint}")
    return report(True, _secrecy_note(), "")


def _shamir_hint(answer, secret, shares) -> str:
    t, xs = len(shares), [x for x, _ in shares]
    if isinstance(answer, (float, np.floating)):
        return _FLOAT_DIVISION
    if isinstance(answer, (np.integer, np.ndarray, bool)) or not isinstance(answer, numbers.Integral):
        return ("return the secret as a Python int: numpy's integers hold 64 bits and overflow silently, "
                f"and p = 2^127 − 1. Got {type(answer).__name__}.")
    real = sum(y * math.prod(m / (m - x) for m in xs if m != x) for x, y in shares)  # what / computes
    if abs(answer) < 2**1000 and any(close(answer, v, rtol=1e-9) for v in (real, real % PRIME)):  # int(a float)
        return _FLOAT_DIVISION
    if not 0 <= answer < PRIME and answer % PRIME == secret:
        return "that is the secret plus a multiple of p: reduce mod p (% PRIME)."
    if answer == (-secret) % PRIME:
        return "that is −s mod p: mind the sign, L_j = prod x_m / (x_m − x_j) (f at 0: 0 − x_m over x_j − x_m)."
    if answer == interpolate([(k + 1, y) for k, (_, y) in enumerate(shares)]):
        return "use each share's own x, not its position 1..t in the list."
    for k in range(1, t):
        if any(answer == interpolate(subset) for subset in combinations(shares, k)):
            return f"that is f(0) of the polynomial through only {k} of the {t} shares: use all of them."
    return "s = sum_j y_j · L_j mod p with L_j = prod_{m≠j} x_m · (x_m − x_j)^(−1) mod p, pow(a, -1, p)."


def _secrecy_note() -> str:
    """t - 1 shares of the first case fit every secret: each candidate gets its own t-th share."""
    secret, t, shares = shamir_cases()[0]
    known, x_new, xs = list(shares[:t - 1]), shares[t - 1][0], ", ".join(str(x) for x, _ in shares[:t - 1])
    ends = ", ".join(f"…{interpolate([(0, s)] + known, at=x_new) % 10**6:06d}" for s in (0, 1, secret))
    return (f"Any {t} shares give the secret, and {t - 1} give nothing: through the shares at x = {xs} and (0, s') "
            f"passes exactly one polynomial of degree {t - 1} for every s' in GF(p). For s' = 0, 1 and the true "
            f"secret, its value at x = {x_new} ends in {ends} (the real share): {t - 1} shares favour no secret.")


# ----------------------------------------------------------------------------- exercise 4
@lru_cache(maxsize=1)
def masking_case() -> tuple:
    """(updates, inputs, pair_masks): 4 clients' updates of length 6, their clip_and_encode (clip 1, 16 bits)
    in Z_{2^32}, and a uniform uint32 mask per pair u < v, from numpy (see exercise_4)."""
    rng = np.random.default_rng(8)
    updates = rng.normal(scale=0.3, size=(4, 6))
    inputs = tuple(clip_and_encode(row, clip=1.0) for row in updates)
    pairs = {(u, v): rng.integers(0, MODULUS, size=6, dtype=np.uint32) for u, v in combinations(range(4), 2)}
    return updates, inputs, pairs


def pairwise_masked(inputs, pair_masks, above: int = 1, below: int = -1) -> list[np.ndarray]:
    """Client u adds ``above`` times the mask of each pair (u, v > u) and ``below`` times that of
    each pair (v < u, u), mod 2^32; the defaults are the protocol's +1 and -1 (Bonawitz et al. 2017)."""
    masked = [np.array(x, dtype=np.uint32) for x in inputs]
    for (u, v), mask in pair_masks.items():  # a sign s is the factor s mod 2^32 (-1 is 2^32 - 1): uint32 wraps
        masked[u] += mask * np.uint32(above % MODULUS)
        masked[v] += mask * np.uint32(below % MODULUS)
    return masked


def exercise_4(mask_all: Callable) -> bool:
    """Check ``mask_all(inputs, pair_masks)``.

    Parameters
    ----------
    mask_all : callable
        Called with a list of n uint32 vectors (the clients' encoded updates) and a dict
        {(u, v): uint32 vector} with one mask per pair u < v. Must return the n masked vectors:
        client u adds the mask of each pair (u, v) with v > u and subtracts that of each pair
        (v, u) with v < u, mod 2^32 (numpy's uint32 arithmetic wraps by itself). numpy only builds
        the masks of this case: the protocol expands each from a seed the pair agreed on, with a
        cryptographic PRG (AES in counter mode; chapter 08).
    """
    updates, inputs, pairs = masking_case()
    answer, error = call(mask_all, [x.copy() for x in inputs], {k: m.copy() for k, m in pairs.items()})
    if error:
        note = " (pair_masks holds each pair once, as (u, v) with u < v)" if "KeyError" in error else ""
        return report(False, "", error + note)
    if hint := _mask_hint(answer, inputs, pairs):
        return report(False, "", f"For {len(inputs)} clients and vectors of length {inputs[0].size}: {hint}")
    total = np.sum(pairwise_masked(inputs, pairs), axis=0, dtype=np.uint64) % MODULUS
    gap = np.abs(decode_sum(total, len(inputs), clip=1.0) - np.clip(updates, -1, 1).sum(axis=0)).max()
    return report(True, "Each masked vector alone is uniform in Z_{2^32}, yet they sum to the inputs' sum mod "
                  f"2^32 bit for bit: decode_sum turns it into the sum of the updates to {gap:.1e} (the "
                  "fixed-point grid's rounding), and the server learns nothing else.", "")


def _mask_hint(answer, inputs, pairs) -> str | None:
    n, d = len(inputs), inputs[0].size
    try:
        values = np.asarray(answer)
    except (TypeError, ValueError):
        values = np.zeros(0)
    if values.shape != (n, d) or values.dtype.kind not in "iuf":
        return f"return the {n} masked vectors, one per client, each of shape ({d},): a list, or an array ({n}, {d})."
    expected = np.array(pairwise_masked(inputs, pairs), dtype=np.int64)
    if values.dtype.kind == "f":
        right = "your values are right, but " if (np.mod(values, MODULUS) == expected).all() else ""
        return right + "the masked vectors live in Z_{2^32}: floats round and do not wrap. Keep uint32, it wraps."
    reduced = (values.astype(np.uint64) % np.uint64(MODULUS)).astype(np.int64)  # exact: an int64 < 0 wraps mod 2^64
    if (reduced == expected).all():
        return None if (values == expected).all() else \
            "reduce mod 2^32: int64 does not wrap, so your values leave [0, 2^32). Keep uint32 (it wraps)."
    for signs, hint in _MASK_VARIANTS.items():
        if (reduced == np.array(pairwise_masked(inputs, pairs, *signs), dtype=np.int64)).all():
            return hint
    if ((reduced.sum(axis=0) - expected.sum(axis=0)) % MODULUS == 0).all():
        return "the masks cancel, but client u must add +mask(u, v) for v > u and −mask(v, u) for v < u."
    return "your masked vectors do not sum to the inputs' sum mod 2^32: the masks do not cancel."
