"""Write tests/data/accountant_reference.json: dp-accounting's RDP epsilon over the chapter-08 grid.

dp-accounting comes with the test extra; the table keeps its values at hand for the notebook and
for a test that needs no dp-accounting. Run:

    python benchmarks/accountant_reference.py

For each z in {0.5, 0.8, 1.1, 2, 4}, q in {0.001, 0.01, 0.1, 1}, T in {1, 100, 10^4} and delta in
{1e-5, 1e-7} it composes T PoissonSampledDpEvent(q, GaussianDpEvent(z)) in an RdpAccountant with
its default orders (DEFAULT_RDP_ORDERS) and records epsilon and the optimal order. It also records,
per (z, q), the orders where dp-accounting's one-step RDP is inf: its fractional-order series gives
up after 1000 terms (at q = 0.1, z <= 1.1, orders 1.1 to 1.6) and it leaves those orders out.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
import pathlib
import sys
from importlib import metadata

import dp_accounting
from dp_accounting.rdp import rdp_privacy_accountant

NOISE_MULTIPLIERS = (0.5, 0.8, 1.1, 2.0, 4.0)
SAMPLING_RATES = (0.001, 0.01, 0.1, 1.0)
STEPS = (1, 100, 10_000)
DELTAS = (1e-5, 1e-7)
OUT = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "accountant_reference.json"


def reference_epsilon(z: float, q: float, steps: int, delta: float) -> tuple[float, float]:
    """dp-accounting's RdpAccountant epsilon and optimal order for T subsampled Gaussian steps."""
    accountant = dp_accounting.rdp.RdpAccountant()  # orders=None: DEFAULT_RDP_ORDERS
    event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z))
    accountant.compose(event, steps)
    eps, order = accountant.get_epsilon_and_optimal_order(delta)
    return float(eps), float(order)


def dropped_orders(z: float, q: float) -> list[float]:
    """The default orders at which dp-accounting's one-step RDP is inf (excluded from the minimum)."""
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), 1)
    return [float(a) for a, rho in zip(accountant.orders, accountant.rdp) if not math.isfinite(rho)]


def main() -> None:
    logging.disable(logging.WARNING)  # dp-accounting warns once per order it leaves out
    points = []
    for z, q, steps, delta in itertools.product(NOISE_MULTIPLIERS, SAMPLING_RATES, STEPS, DELTAS):
        eps, order = reference_epsilon(z, q, steps, delta)
        points.append({"noise_multiplier": z, "q": q, "steps": steps, "delta": delta,
                       "epsilon": eps, "order": order})
    dropped = [{"noise_multiplier": z, "q": q, "orders": dropped_orders(z, q)}
               for z, q in itertools.product(NOISE_MULTIPLIERS, SAMPLING_RATES) if dropped_orders(z, q)]
    table = {"source": "dp_accounting.rdp.RdpAccountant, default orders, ADD_OR_REMOVE_ONE",
             "dp_accounting_version": metadata.version("dp-accounting"),
             "python": sys.version.split()[0],
             "orders": [float(a) for a in rdp_privacy_accountant.DEFAULT_RDP_ORDERS],
             "dropped_orders": dropped, "points": points}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = [f" {json.dumps(key)}: {json.dumps(value)}" for key, value in table.items() if key != "points"]
    lines.append(' "points": [\n' + ",\n".join(f"  {json.dumps(point)}" for point in points) + "\n ]")
    OUT.write_text("{\n" + ",\n".join(lines) + "\n}\n")  # one point a line, for readable diffs
    print(f"wrote {len(points)} points to {OUT}")


if __name__ == "__main__":
    main()
