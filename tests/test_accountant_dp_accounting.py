"""The RDP accountant against dp-accounting itself (the test extra installs it), live, over the
chapter-08 grid: z in {0.5, 0.8, 1.1, 2, 4}, q in {0.001, 0.01, 0.1, 1}, T in {1, 100, 10^4},
delta in {1e-5, 1e-7}. dp-accounting's one-step RDP is computed once per (z, q) and composed
by its own conversion, ``compute_epsilon``, exactly as its RdpAccountant does for T steps."""
import functools
import itertools
import logging
import math

import numpy as np
import pytest

from flcourse.privacy.accountant import DEFAULT_ORDERS, epsilon, rdp_subsampled_gaussian, rdp_to_epsilon

dp_accounting = pytest.importorskip("dp_accounting")
from dp_accounting.rdp import rdp_privacy_accountant  # noqa: E402

ZS, QS, STEPS, DELTAS = (0.5, 0.8, 1.1, 2.0, 4.0), (0.001, 0.01, 0.1, 1.0), (1, 100, 10_000), (1e-5, 1e-7)


@functools.lru_cache(maxsize=None)
def theirs_one_step(z, q):
    """dp-accounting's orders and one-step RDP (inf where its series does not converge)."""
    logging.disable(logging.WARNING)  # it warns for every order it leaves out
    try:
        accountant = dp_accounting.rdp.RdpAccountant()
        accountant.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), 1)
        return tuple(accountant.orders), np.array(accountant.rdp, dtype=np.float64)
    finally:
        logging.disable(logging.NOTSET)


def test_our_default_orders_are_theirs():
    orders, _ = theirs_one_step(1.1, 0.01)
    assert list(DEFAULT_ORDERS) == list(orders)


def test_one_step_for_one_point_is_their_accountants_epsilon():
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(1.1)), 100)
    orders, rho = theirs_one_step(1.1, 0.01)
    assert rdp_privacy_accountant.compute_epsilon(orders, 100 * rho, 1e-5)[0] == pytest.approx(
        accountant.get_epsilon(1e-5), rel=1e-12)


@pytest.mark.parametrize("z, q", list(itertools.product(ZS, QS)))
def test_epsilon_agrees_within_a_thousandth_on_their_orders(z, q):
    orders, rho = theirs_one_step(z, q)
    kept = [a for a, r in zip(orders, rho) if math.isfinite(r)]
    ours_rho = rdp_subsampled_gaussian(q, z, kept)
    for steps, delta in itertools.product(STEPS, DELTAS):
        theirs, _ = rdp_privacy_accountant.compute_epsilon(orders, steps * rho, delta)
        ours, _ = rdp_to_epsilon(kept, steps * ours_rho, delta)
        assert ours == pytest.approx(theirs, rel=1e-7)  # the acceptance asks for 1e-3
        assert epsilon(z, q, steps, delta) <= theirs * (1 + 1e-7)  # every order: never looser
