"""The RDP accountant against dp-accounting's values (a committed table, written by
benchmarks/accountant_reference.py), against plain loops with exact binomials and against
quadrature; its inverse round-trips; the monotonicity and limits it states; the parameter errors."""
import functools
import itertools
import json
import math
import pathlib
from fractions import Fraction

import numpy as np
import pytest

from flcourse.privacy import accountant
from flcourse.privacy.accountant import (DEFAULT_ORDERS, epsilon, noise_multiplier_for_epsilon,
                                         rdp_subsampled_gaussian, rdp_to_epsilon)

TABLE = json.loads((pathlib.Path(__file__).parent / "data" / "accountant_reference.json").read_text())
DROPPED = {(d["noise_multiplier"], d["q"]): d["orders"] for d in TABLE["dropped_orders"]}


@functools.lru_cache(maxsize=None)
def one_step(q, z, orders=DEFAULT_ORDERS):
    return rdp_subsampled_gaussian(q, z, list(orders))


def test_default_orders_are_dp_accountings():
    assert list(DEFAULT_ORDERS) == TABLE["orders"]
    assert len(DEFAULT_ORDERS) == 156


def test_epsilon_agrees_with_dp_accounting_on_every_grid_point():
    # dp-accounting leaves out the orders whose series it could not sum in 1000 terms (DROPPED);
    # over the orders it kept, epsilon and the optimal order agree at all 120 points.
    assert len(TABLE["points"]) == 120
    errors = []
    for p in TABLE["points"]:
        z, q = p["noise_multiplier"], p["q"]
        kept = tuple(a for a in DEFAULT_ORDERS if a not in DROPPED.get((z, q), []))
        eps, order = rdp_to_epsilon(kept, p["steps"] * one_step(q, z, kept), p["delta"])
        errors.append(abs(eps - p["epsilon"]) / p["epsilon"])
        assert order == p["order"]
    assert max(errors) < 1e-7  # measured 1.1e-8; the acceptance asks for 1e-3


def test_epsilon_with_every_order_is_never_above_dp_accountings():
    # With every default order, ours is the same where dp-accounting dropped none, and lower
    # (tighter, still a valid bound) where it dropped some: 6 of 120 points, q = 0.1, z <= 0.8.
    lower = 0
    for p in TABLE["points"]:
        eps = epsilon(p["noise_multiplier"], p["q"], p["steps"], p["delta"])
        assert eps <= p["epsilon"] * (1 + 1e-7)
        if (p["noise_multiplier"], p["q"]) not in DROPPED:
            assert eps == pytest.approx(p["epsilon"], rel=1e-7)
        lower += eps < p["epsilon"] * (1 - 1e-3)
    assert lower == 6


@pytest.mark.parametrize("target, q, steps, delta", [(1.0, 0.01, 1000, 1e-5), (8.0, 0.1, 100, 1e-7),
                                                     (0.5, 1.0, 1, 1e-5), (3.0, 0.001, 10_000, 1e-6)])
def test_noise_multiplier_for_epsilon_round_trips(target, q, steps, delta):
    z = noise_multiplier_for_epsilon(target, q, steps, delta, rtol=1e-7)
    assert epsilon(z, q, steps, delta) <= target
    assert epsilon(z, q, steps, delta) == pytest.approx(target, rel=1e-6)
    assert epsilon(z * (1 - 2e-7), q, steps, delta) > target  # the smallest such z, to rtol


def plain_rdp_integer(q, z, alpha):
    """log A_alpha / (alpha - 1) by a loop: exact binomial polynomial, float exponentials."""
    q = Fraction(q)
    total = sum(math.comb(alpha, k) * (1 - q) ** (alpha - k) * q ** k * math.exp((k * k - k) / (2 * z * z))
                for k in range(alpha + 1))
    return math.log(total) / (alpha - 1)


@pytest.mark.parametrize("q, z", [(0.01, 1.1), (0.1, 0.8), (0.3, 2.0), (0.001, 0.5)])
def test_integer_orders_equal_a_plain_binomial_loop(q, z):
    orders = list(range(2, 13))
    expected = [plain_rdp_integer(q, z, alpha) for alpha in orders]
    np.testing.assert_allclose(rdp_subsampled_gaussian(q, z, orders), expected, rtol=1e-11)  # A near 1


def quadrature_rdp(q, z, alpha):
    """log(A_alpha) / (alpha - 1) with A_alpha - 1 = E[(1 - q + q L)^alpha - 1], L the likelihood
    ratio exp((2x - 1) / (2 z^2)) under x ~ N(0, z^2), by the trapezoid rule."""
    x = np.linspace(-40 * z, alpha + 40 * z, 40_001)
    log_phi = -x * x / (2 * z * z) - math.log(z * math.sqrt(2 * math.pi))
    power = alpha * np.log1p(q * np.expm1((2 * x - 1) / (2 * z * z)))
    with np.errstate(over="ignore", invalid="ignore"):  # each branch is used where it is finite
        f = np.where(power > 1, np.exp(log_phi + power) - np.exp(log_phi), np.exp(log_phi) * np.expm1(power))
    return math.log1p(np.trapezoid(f, x)) / (alpha - 1)


@pytest.mark.parametrize("q, z", [(0.1, 0.5), (0.01, 1.1), (0.001, 4.0), (0.6, 2.0)])
def test_fractional_orders_exact_equal_quadrature_and_default_is_an_upper_bound(q, z):
    orders = [1.1, 1.5, 2.5, 4.75, 7.3, 10.9]
    exact = rdp_subsampled_gaussian(q, z, orders, exact_fractional=True)
    np.testing.assert_allclose(exact, [quadrature_rdp(q, z, a) for a in orders], rtol=1e-7)
    assert np.all(rdp_subsampled_gaussian(q, z, orders) >= exact)


@pytest.mark.parametrize("exact", [False, True])
def test_fractional_series_is_continuous_at_an_integer_order(exact):
    near = rdp_subsampled_gaussian(0.05, 0.9, [3 - 1e-9, 3 + 1e-9, 6 + 1e-9], exact_fractional=exact)
    np.testing.assert_allclose(near, rdp_subsampled_gaussian(0.05, 0.9, [3, 3, 6]), rtol=1e-6)


@functools.lru_cache(maxsize=None)
def exact_step(q, z):
    return rdp_subsampled_gaussian(q, z, DEFAULT_ORDERS, exact_fractional=True)


def test_exact_rdp_grows_with_q_with_alpha_and_shrinks_with_z():
    qs, zs = [0.001, 0.01, 0.05, 0.1, 0.5, 1.0], [0.5, 0.8, 1.1, 2.0, 4.0]
    grid = np.array([[exact_step(q, z) for z in zs] for q in qs])  # (q, z, order)
    assert np.all(np.diff(grid, axis=0) > 0) and np.all(np.diff(grid, axis=1) < 0)
    assert np.all(np.diff(grid, axis=2) > 0)  # Renyi divergences grow with the order


def test_default_bound_is_monotone_where_exact_and_epsilon_is_monotone():
    qs, zs = [0.001, 0.01, 0.1, 1.0], [0.5, 1.1, 4.0]
    integer = np.array(DEFAULT_ORDERS) == np.round(DEFAULT_ORDERS)
    grid = np.array([[one_step(q, z)[integer] for z in zs] for q in qs])
    assert np.all(np.diff(grid, axis=0) > 0) and np.all(np.diff(grid, axis=1) < 0)
    eps = np.array([[epsilon(z, q, 100, 1e-5) for z in zs] for q in qs[:3]])
    assert np.all(np.diff(eps, axis=0) > 0) and np.all(np.diff(eps, axis=1) < 0)


@pytest.mark.parametrize("z", [0.5, 1.1, 4.0])
def test_q_one_is_the_plain_gaussian_and_bounds_every_q(z):
    orders = np.array(DEFAULT_ORDERS)
    np.testing.assert_array_equal(rdp_subsampled_gaussian(1.0, z, orders), orders / (2 * z * z))
    assert np.all(exact_step(0.5, z) < orders / (2 * z * z))  # subsampling never costs privacy
    np.testing.assert_array_equal(rdp_subsampled_gaussian(0.0, z, orders), 0.0)


def test_large_orders_and_small_noise_stay_finite():
    rho = rdp_subsampled_gaussian(0.01, 0.5, [256, 1024, 63.5])
    assert np.all(np.isfinite(rho)) and np.all(rho > 0)
    assert rho[1] == pytest.approx(plain_rdp_log_space(0.01, 0.5, 1024), rel=1e-12)
    assert np.all(rdp_subsampled_gaussian(0.1, 0.0, [2, 2.5]) == np.inf)


def plain_rdp_log_space(q, z, alpha):
    terms = [math.lgamma(alpha + 1) - math.lgamma(k + 1) - math.lgamma(alpha - k + 1) + k * math.log(q)
             + (alpha - k) * math.log1p(-q) + (k * k - k) / (2 * z * z) for k in range(alpha + 1)]
    top = max(terms)
    return (top + math.log(math.fsum(math.exp(t - top) for t in terms))) / (alpha - 1)


def test_rdp_to_epsilon_is_the_stated_formula():
    orders, rho, delta = [2.0, 10.0, 32.0], [0.5, 1.0, 3.0], 1e-5
    by_hand = [r - (math.log(delta) + math.log(a)) / (a - 1) + math.log((a - 1) / a) for a, r in zip(orders, rho)]
    assert rdp_to_epsilon(orders, rho, delta) == (pytest.approx(min(by_hand), rel=1e-15), 10.0)
    assert rdp_to_epsilon([2.0], [1e-11], 1e-5) == (0.0, 2.0)  # 1 - exp(-rho) < delta^2
    a, r, d = 1e4, 1e-4, 1e-3  # the formula is negative here, and 1 - exp(-r) > d^2
    assert r - (math.log(d) + math.log(a)) / (a - 1) + math.log((a - 1) / a) < 0
    assert rdp_to_epsilon([a], [r], d) == (0.0, a)  # floored at 0
    assert rdp_to_epsilon([2.0, 3.0], [np.inf, 1.0], 1e-5)[1] == 3.0


def test_log_erfc_is_exact_on_both_sides_of_its_switch():
    # the module's own helper (math.erfc to 12, the asymptotic series beyond), not part of the API
    x = np.linspace(0.0, 26.0, 261)
    expected = [math.log(math.erfc(v)) for v in x]
    np.testing.assert_allclose(accountant._log_erfc(x), expected, rtol=1e-14)
    u = 1 / 3200  # 1 / (2 x^2) at x = 40: log erfc(x) = -x^2 - log(x sqrt(pi)) - u + 5u^2/2 - 37u^3/3 + O(u^4)
    expected_40 = -1600 - math.log(40 * math.sqrt(math.pi)) - u + 2.5 * u ** 2 - 37 / 3 * u ** 3
    assert accountant._log_erfc(np.array([40.0]))[0] == pytest.approx(expected_40, rel=1e-14)


@pytest.mark.parametrize("call, message", [
    (lambda: rdp_subsampled_gaussian(2, 1.0, [2]), "The 'q' parameter of rdp_subsampled_gaussian must be a float in [0, 1]. Got 2 instead."),
    (lambda: rdp_subsampled_gaussian(0.1, -1.0, [2]), "The 'noise_multiplier' parameter of rdp_subsampled_gaussian must be a float in [0, inf). Got -1.0 instead."),
    (lambda: rdp_subsampled_gaussian(0.1, 1.0, [1.0, 2]), "The 'orders' parameter of rdp_subsampled_gaussian must be a non-empty 1-D array of finite orders in (1, inf). Got [1.0, 2.0] instead."),
    (lambda: rdp_subsampled_gaussian(0.1, 1.0, []), "'orders' parameter of rdp_subsampled_gaussian must be a non-empty"),
    (lambda: rdp_subsampled_gaussian(0.1, 1.0, [np.inf]), "'orders' parameter of rdp_subsampled_gaussian"),
    (lambda: rdp_to_epsilon([2, 3], [0.1], 1e-5), "The 'rdp' parameter of rdp_to_epsilon must hold one value in [0, inf] per order (shape (2,)). Got [0.1] instead."),
    (lambda: rdp_to_epsilon([2], [-0.1], 1e-5), "The 'rdp' parameter of rdp_to_epsilon"),
    (lambda: rdp_to_epsilon([2], [0.1], 0), "The 'delta' parameter of rdp_to_epsilon must be a float in (0, 1). Got 0 instead."),
    (lambda: epsilon(1.0, 0.1, 0, 1e-5), "The 'steps' parameter of epsilon must be an int in [1, inf). Got 0 instead."),
    (lambda: epsilon(1.0, 0.1, 10, 1.0), "The 'delta' parameter of epsilon must be a float in (0, 1). Got 1.0 instead."),
    (lambda: noise_multiplier_for_epsilon(0, 0.1, 10, 1e-5), "The 'target_epsilon' parameter of noise_multiplier_for_epsilon must be a float in (0, inf). Got 0 instead."),
    (lambda: noise_multiplier_for_epsilon(1.0, 0.0, 10, 1e-5), "The 'q' parameter of noise_multiplier_for_epsilon must be a float in (0, 1]. Got 0.0 instead."),
    (lambda: noise_multiplier_for_epsilon(1.0, 0.1, 10, 1e-5, rtol=0), "The 'rtol' parameter of noise_multiplier_for_epsilon must be a float in (0, 1). Got 0 instead."),
    (lambda: noise_multiplier_for_epsilon(1e-3, 1.0, 1, 1e-10, [1024]), "The 'target_epsilon' parameter of noise_multiplier_for_epsilon must be reachable"),
])
def test_bad_values_raise_value_error_naming_the_parameter(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)


@pytest.mark.parametrize("call, message", [
    (lambda: rdp_subsampled_gaussian("0.1", 1.0, [2]), "The 'q' parameter of rdp_subsampled_gaussian must be a float in [0, 1]. Got '0.1' of type str instead."),
    (lambda: epsilon(1.0, 0.1, 10.0, 1e-5), "The 'steps' parameter of epsilon must be an int in [1, inf). Got 10.0 of type float instead."),
    (lambda: rdp_subsampled_gaussian(0.1, 1.0, [2], exact_fractional=1), "The 'exact_fractional' parameter of rdp_subsampled_gaussian must be a bool"),
    (lambda: rdp_to_epsilon([2 + 1j], [0.1], 1e-5), "The 'orders' parameter of rdp_to_epsilon must be an array of real numbers."),
])
def test_bad_types_raise_type_error_naming_the_parameter(call, message):
    with pytest.raises(TypeError) as error:
        call()
    assert message in str(error.value)
