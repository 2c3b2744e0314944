"""An RDP accountant for the Poisson-subsampled Gaussian mechanism, in numpy and the standard library.

One step of DP-SGD or DP-FedAvg samples each record (client) independently with probability ``q``
and adds N(0, z^2 C^2) noise to a sum of contributions clipped to norm C. Its Renyi DP at order
alpha is ``log(A_alpha) / (alpha - 1)`` (Mironov, Talwar and Zhang 2019, arXiv 1908.10530); T
steps compose by adding RDP; the total converts to (epsilon, delta) with the bound dp-accounting
uses (Canonne, Kamath and Steinke 2020, arXiv 2004.00010, Proposition 12 in v4). See notebook 08.

Everything is computed in log space, so z = 0.5 at alpha = 1024 does not overflow. Integer orders
are exact. At fractional orders the default sums the absolute values of the series' terms, as
dp-accounting does, an upper bound; ``exact_fractional=True`` keeps their signs and gives the exact
RDP, which lowers epsilon where a fractional order is the best (e.g. 47.4 against 49.4 at z = 0.5,
q = 0.01, T = 10^4, delta = 1e-5).
"""
from __future__ import annotations

import math

import numpy as np

from .._validation import as_real_array, check_bool, check_scalar

# dp-accounting's RdpAccountant default (DEFAULT_RDP_ORDERS in dp_accounting 0.6.0): 1.1, 1.2, ...,
# 10.9, then 11, 12, ..., 63, then 128, 256, 512, 1024 (156 orders).
DEFAULT_ORDERS = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024])

_FRAC_RTOL = 1e-8  # a fractional series stops when its tail is below this fraction of A - 1
_FRAC_MAX_TERMS = 2 ** 16


def _signed_logsumexp(log_abs: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """log(sum_k sign_k exp(log_abs_k)) along the last axis, for sums known to be positive."""
    top = np.max(log_abs, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    total = np.sum(sign * np.exp(log_abs - top), axis=-1)
    return np.log(total) + top[..., 0]


def _log_erfc(x: np.ndarray) -> np.ndarray:
    """log(erfc(x)), exact to rounding: math.erfc up to x = 12, the asymptotic series beyond."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    big = x > 12.0
    small = x[~big]
    out[~big] = np.log(np.fromiter((math.erfc(v) for v in small.ravel()), np.float64, small.size))
    xb = x[big]
    u = 1.0 / (2.0 * xb * xb)  # erfc(x) = exp(-x^2) / (x sqrt(pi)) * sum_n (-1)^n (2n-1)!! u^n
    series = 1.0 + u * (-1 + u * (3 + u * (-15 + u * (105 + u * (-945 + u * (10395 - 135135 * u))))))
    out[big] = -xb * xb - np.log(xb * math.sqrt(math.pi)) + np.log(series)
    return out


def _log_expm1(x: np.ndarray) -> np.ndarray:
    """log(exp(x) - 1) for x >= 0 without overflow; a huge negative number at x = 0."""
    small = np.log(np.maximum(np.expm1(np.minimum(x, 1.0)), 1e-300))
    return np.where(x > 1.0, x + np.log1p(-np.exp(-np.maximum(x, 1.0))), small)


def _log_a_int(q: float, z: float, alphas: np.ndarray) -> np.ndarray:
    """log A_alpha for integer alphas, by the finite binomial sum
    A_alpha = sum_{k=0}^{alpha} C(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 z^2))."""
    n = int(alphas.max())
    log_fact = np.array([math.lgamma(k + 1.0) for k in range(n + 1)])
    k = np.arange(n + 1, dtype=np.float64)
    a = alphas[:, None].astype(np.float64)
    inside = k <= a
    kk = np.minimum(k, a).astype(np.int64)
    log_comb = log_fact[alphas][:, None] - log_fact[kk] - log_fact[(a - kk).astype(np.int64)]
    log_terms = log_comb + k * math.log(q) + (a - k) * math.log1p(-q) + (k * k - k) / (2 * z * z)
    return _signed_logsumexp(np.where(inside, log_terms, -np.inf), np.ones_like(log_terms))


def _log_a_frac_terms(q: float, z: float, a: np.ndarray, n_terms: int):
    """The first ``n_terms`` terms of the two series for fractional alphas: log |t_k| and sign."""
    k = np.arange(n_terms, dtype=np.float64)
    a = a[:, None]
    steps = np.log(np.abs(a - k[1:] + 1.0)) - np.log(k[1:])  # |C(a, k)| / |C(a, k - 1)|
    log_comb = np.concatenate([np.zeros_like(a), np.cumsum(steps, axis=1)], axis=1)
    sign = np.where(k > np.floor(a) + 1, (-1.0) ** (k - np.floor(a) - 1), 1.0)
    z0 = z * z * math.log(1 / q - 1) + 0.5
    j = a - k
    root = math.sqrt(2) * z
    log0 = k * math.log(q) + j * math.log1p(-q) + (k * k - k) / (2 * z * z) + _log_erfc((k - z0) / root)
    log1 = j * math.log(q) + k * math.log1p(-q) + (j * j - j) / (2 * z * z) + _log_erfc((z0 - j) / root)
    return log_comb + math.log(0.5) + np.logaddexp(log0, log1), sign


def _log_a_frac(q: float, z: float, alphas: np.ndarray, signed: bool) -> np.ndarray:
    """log A_alpha for fractional alphas: A_alpha = A_0 + A_1, section 3.3 of arXiv 1908.10530.

    With z0 = z^2 log(1/q - 1) + 1/2, where the two mixture components have equal density,
        A_0 = sum_k C(a, k) (1-q)^(a-k) q^k exp((k^2 - k) / (2 z^2)) erfc((k - z0) / (sqrt(2) z)) / 2,
        A_1 = sum_k C(a, k) (1-q)^k q^j exp((j^2 - j) / (2 z^2)) erfc((z0 - j) / (sqrt(2) z)) / 2, j = a - k,
    with the generalised binomial C(a, k), negative for every other k > a + 1. ``signed=False``
    sums |terms|, an upper bound on A_alpha (what dp-accounting sums); ``signed=True`` keeps the
    signs and gives A_alpha itself. Beyond k ~ z0 the terms shrink only like k^-(a + 2), so the
    blocks double (from 128 terms) until the tail left out is below: it is at most the next term
    when signed (the tail alternates), at most the next term times the number of terms if not. This
    bound is kept below max(``_FRAC_RTOL`` (A - 1), 1e-17): log A is then exact to a relative
    1e-8, or to the rounding of A near 1. An order not converged after ``_FRAC_MAX_TERMS`` terms
    gets inf (no bound), which the minimum over orders skips.
    """
    result = np.empty(alphas.shape)
    pending = np.arange(alphas.size)
    n_terms = 128
    while pending.size:
        if n_terms > _FRAC_MAX_TERMS:
            result[pending] = np.inf
            break
        log_abs, sign = _log_a_frac_terms(q, z, alphas[pending], n_terms + 1)
        log_a = _signed_logsumexp(log_abs[:, :-1], sign[:, :-1] if signed else 1.0)
        tail = log_abs[:, -1] + (0.0 if signed else math.log(n_terms))
        done = tail < np.maximum(math.log(_FRAC_RTOL) + _log_expm1(log_a), math.log(1e-17))
        result[pending[done]] = log_a[done]
        pending, n_terms = pending[~done], 2 * n_terms
    return result


def _check_orders(orders, owner: str) -> np.ndarray:
    """Return ``orders`` as a non-empty 1-D float64 array of finite orders > 1, else raise."""
    alphas = as_real_array(orders, "orders", owner)
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas) & (alphas > 1)):
        raise ValueError(f"The 'orders' parameter of {owner} must be a non-empty 1-D array of finite "
                         f"orders in (1, inf). Got {np.asarray(orders).tolist()!r} instead.")
    return alphas


def rdp_subsampled_gaussian(q: float, noise_multiplier: float, orders, *,
                            exact_fractional: bool = False) -> np.ndarray:
    """The RDP of one step of the Poisson-subsampled Gaussian mechanism at each order.

    Each record is included independently with probability ``q``; the sum of contributions of
    sensitivity 1 gets N(0, z^2) noise. Against the add-or-remove neighbour the Renyi divergence of
    order alpha is eps(alpha) = log(A_alpha) / (alpha - 1) (Mironov, Talwar and Zhang 2019, arXiv
    1908.10530), with A_alpha the alpha-th moment of the likelihood ratio of the mixture
    (1 - q) N(0, z^2) + q N(1, z^2) to N(0, z^2):

    - integer alpha: A_alpha = sum_{k=0}^{alpha} C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 z^2));
    - fractional alpha: the two series of section 3.3 (see :func:`_log_a_frac`). By default the
      absolute values of their terms are summed, as dp-accounting does: an upper bound on
      A_alpha, so a valid RDP bound, but loose at low orders (at q = 0.5, z = 4, alpha = 1.1:
      0.145 against the exact 0.0087) and then not monotone in q or alpha. ``exact_fractional=True``
      keeps the signs of the generalised binomial coefficients and gives A_alpha itself;
    - q = 1: the plain Gaussian, alpha / (2 z^2); q = 0: 0; z = 0: inf.

    Parameters
    ----------
    q : float in [0, 1]
        The sampling rate.
    noise_multiplier : float in [0, inf)
        z, the noise standard deviation divided by the L2 sensitivity.
    orders : array-like of shape (n_orders,)
        Renyi orders alpha > 1, integer or fractional.
    exact_fractional : bool, default=False
        Sum the fractional-order series with their signs (exact) rather than in absolute value.

    Returns
    -------
    ndarray of shape (n_orders,)
        eps(alpha) >= 0 for each order.
    """
    owner = "rdp_subsampled_gaussian"
    check_scalar(q, "q", owner, low=0, high=1, closed="both")
    z = check_scalar(noise_multiplier, "noise_multiplier", owner, low=0, closed="left")
    alphas = _check_orders(orders, owner)
    signed = check_bool(exact_fractional, "exact_fractional", owner)
    if q == 0:
        return np.zeros_like(alphas)
    if z == 0:
        return np.full_like(alphas, np.inf)
    if q == 1:
        return alphas / (2 * z * z)
    integer = alphas == np.round(alphas)
    log_a = np.empty_like(alphas)
    if integer.any():
        log_a[integer] = _log_a_int(q, z, alphas[integer].astype(np.int64))
    if (~integer).any():
        log_a[~integer] = _log_a_frac(q, z, alphas[~integer], signed)
    return np.maximum(log_a, 0.0) / (alphas - 1)  # A_alpha >= 1; a rounding below 1 means 0


def rdp_to_epsilon(orders, rdp, delta: float) -> tuple[float, float]:
    """The smallest epsilon, over the orders, such that the mechanism is (epsilon, delta)-DP.

    The conversion dp-accounting uses (Canonne, Kamath and Steinke 2020, arXiv 2004.00010,
    Proposition 12; Asoodeh et al. 2020, arXiv 2001.05990): an (alpha, rho)-RDP mechanism is
    (epsilon, delta)-DP with

        epsilon = rho - (log(delta) + log(alpha)) / (alpha - 1) + log((alpha - 1) / alpha),

    minimised over the orders and floored at 0. As in dp-accounting, an order whose rho is so small
    that 1 - exp(-rho) < delta^2 gives epsilon = 0 (the KL divergence is at most rho, and total
    variation at most sqrt(1 - exp(-KL)) <= delta).

    Parameters
    ----------
    orders : array-like of shape (n_orders,)
        Renyi orders alpha > 1.
    rdp : array-like of shape (n_orders,)
        rho(alpha) >= 0 at each order (inf allowed).
    delta : float in (0, 1)

    Returns
    -------
    epsilon : float
    order : float
        The order that attains the minimum.
    """
    owner = "rdp_to_epsilon"
    alphas = _check_orders(orders, owner)
    rho = as_real_array(rdp, "rdp", owner)
    if rho.shape != alphas.shape or np.isnan(rho).any() or (rho < 0).any():
        raise ValueError(f"The 'rdp' parameter of {owner} must hold one value in [0, inf] per order "
                         f"(shape {alphas.shape}). Got {np.asarray(rdp).tolist()!r} instead.")
    check_scalar(delta, "delta", owner, low=0, high=1)
    with np.errstate(invalid="ignore"):  # inf - inf cannot happen: the log terms are finite
        eps = rho - (math.log(delta) + np.log(alphas)) / (alphas - 1) + np.log1p(-1 / alphas)
    eps = np.where(delta ** 2 + np.expm1(-rho) > 0, 0.0, eps)
    best = int(np.argmin(eps))
    return max(0.0, float(eps[best])), float(alphas[best])


def epsilon(noise_multiplier: float, q: float, steps: int, delta: float,
            orders=DEFAULT_ORDERS, *, exact_fractional: bool = False) -> float:
    """epsilon of ``steps`` Poisson-subsampled Gaussian steps at ``delta``: RDP adds, T rho(alpha).

    Parameters
    ----------
    noise_multiplier : float in [0, inf)
    q : float in [0, 1]
    steps : int in [1, inf)
    delta : float in (0, 1)
    orders : array-like, default=DEFAULT_ORDERS (dp-accounting's default orders)
    exact_fractional : bool, default=False
        As in :func:`rdp_subsampled_gaussian`; False reproduces dp-accounting.

    Returns
    -------
    float
        min over orders of the conversion in :func:`rdp_to_epsilon` applied to T rho(alpha).
    """
    check_scalar(steps, "steps", "epsilon", int, low=1, closed="left")
    check_scalar(delta, "delta", "epsilon", low=0, high=1)
    rho = rdp_subsampled_gaussian(q, noise_multiplier, orders, exact_fractional=exact_fractional)
    return rdp_to_epsilon(orders, steps * rho, delta)[0]


def noise_multiplier_for_epsilon(target_epsilon: float, q: float, steps: int, delta: float,
                                 orders=DEFAULT_ORDERS, rtol: float = 1e-6, *,
                                 exact_fractional: bool = False) -> float:
    """The smallest noise multiplier z (to ``rtol``) with ``epsilon(z, q, steps, delta) <= target``.

    epsilon is non-increasing in z (each rho(alpha) is), so bisection applies: a bracket
    [lo, hi] with epsilon(lo) > target >= epsilon(hi) is found by halving or doubling from 1,
    then halved until hi - lo <= rtol * hi. The result is hi: it always meets the target, and
    lies within a relative ``rtol`` of the exact threshold.

    Parameters
    ----------
    target_epsilon : float in (0, inf)
    q : float in (0, 1]
    steps : int in [1, inf)
    delta : float in (0, 1)
    orders : array-like, default=DEFAULT_ORDERS
    rtol : float in (0, 1), default=1e-6
    exact_fractional : bool, default=False
        As in :func:`rdp_subsampled_gaussian`.

    Returns
    -------
    float
    """
    owner = "noise_multiplier_for_epsilon"
    check_scalar(target_epsilon, "target_epsilon", owner, low=0)
    check_scalar(q, "q", owner, low=0, high=1, closed="right")
    check_scalar(steps, "steps", owner, int, low=1, closed="left")
    check_scalar(delta, "delta", owner, low=0, high=1)
    check_scalar(rtol, "rtol", owner, low=0, high=1)
    alphas = _check_orders(orders, owner)
    exact = check_bool(exact_fractional, "exact_fractional", owner)

    def too_small(z: float) -> bool:
        rho = rdp_subsampled_gaussian(q, z, alphas, exact_fractional=exact)
        return rdp_to_epsilon(alphas, steps * rho, delta)[0] > target_epsilon

    lo, hi = 1.0, 1.0
    while too_small(hi):
        lo, hi = hi, 2 * hi
        if hi > 2.0 ** 30:
            raise ValueError(f"The 'target_epsilon' parameter of {owner} must be reachable with these "
                             f"orders. Got {target_epsilon!r}: no z <= 2^30 reaches it.")
    while not too_small(lo):
        lo, hi = lo / 2, lo
    while hi - lo > rtol * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if too_small(mid) else (lo, mid)
    return hi
