"""Our RDP accountant against dp-accounting's, side by side: agreement in epsilon and speed.

For each of the 120 points of chapter 08's grid, z in {0.5, 0.8, 1.1, 2, 4}, q in {0.001, 0.01,
0.1, 1}, T in {1, 100, 10^4}, delta in {1e-5, 1e-7}, it computes epsilon for T Poisson-subsampled
Gaussian steps with dp-accounting's RdpAccountant (default orders) and with
``flcourse.privacy.epsilon``, twice: over the orders dp-accounting keeps (it drops the fractional
orders whose series it cannot sum in 1,000 terms, at q = 0.1 and z <= 1.1) and over all 156 default
orders. Timing: the whole grid, no caching, best of 3 runs of each, in this one process.
dp-accounting comes with the test extra (``python course.py test`` installs it):

    python benchmarks/accountant.py

Writes benchmarks/results/accountant.{json,png}; the last line is
``max_rel_err_vs_dp_accounting=<x> max_rel_err_all_orders=<x> speed_vs_dp_accounting=<x.x>``
(the first on dp-accounting's orders; the second is where ours is lower: a tighter valid bound).
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
GRID = list(itertools.product((0.5, 0.8, 1.1, 2.0, 4.0), (0.001, 0.01, 0.1, 1.0), (1, 100, 10_000), (1e-5, 1e-7)))


def relative_error(ours: float, theirs: float) -> float:
    """|ours - theirs| / theirs, 0 where both are 0."""
    if theirs == 0:
        return 0.0 if ours == 0 else math.inf
    return abs(ours - theirs) / theirs


def theirs_epsilon(z: float, q: float, steps: int, delta: float) -> float:
    import dp_accounting

    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), steps)
    return float(accountant.get_epsilon(delta))


def kept_orders(z: float, q: float) -> list:
    """dp-accounting's default orders at which its one-step RDP is finite."""
    import dp_accounting

    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), 1)
    return [float(a) for a, rho in zip(accountant.orders, accountant.rdp) if math.isfinite(rho)]


def best_of(function, repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs of ``function`` over the whole grid, in seconds."""
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        for point in GRID:
            function(*point)
        best = min(best, time.perf_counter() - started)
    return best


def compare() -> list:
    from flcourse.privacy import epsilon

    rows = []
    for z, q, steps, delta in GRID:
        theirs = theirs_epsilon(z, q, steps, delta)
        same_orders = epsilon(z, q, steps, delta, orders=kept_orders(z, q))
        all_orders = epsilon(z, q, steps, delta)
        rows.append({"noise_multiplier": z, "q": q, "steps": steps, "delta": delta, "dp_accounting": theirs,
                     "ours_same_orders": same_orders, "ours_all_orders": all_orders,
                     "rel_err_same_orders": relative_error(same_orders, theirs),
                     "rel_err_all_orders": relative_error(all_orders, theirs)})
    return rows


def summary_line(rows: list, ours_seconds: float, theirs_seconds: float) -> str:
    worst_same = max(r["rel_err_same_orders"] for r in rows)
    worst_all = max(r["rel_err_all_orders"] for r in rows)
    return (f"max_rel_err_vs_dp_accounting={worst_same:.2g} max_rel_err_all_orders={worst_all:.2g} "
            f"speed_vs_dp_accounting={theirs_seconds / ours_seconds:.1f}")


def plot(rows: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for key, label in (("rel_err_same_orders", "dp-accounting's orders"), ("rel_err_all_orders", "all 156 orders")):
        ax.plot([max(r[key], 1e-17) for r in rows], "o", ms=3, label=label)
    ax.axhline(1e-3, color="grey", ls="--", lw=0.8)
    ax.set(yscale="log", xlabel="grid point", ylabel="|ours - dp-accounting| / dp-accounting",
           title="epsilon of the Poisson-subsampled Gaussian")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # dp-accounting warns for each order it leaves out
    from importlib import metadata

    from flcourse.privacy import epsilon

    rows = compare()
    ours_seconds = best_of(lambda z, q, steps, delta: epsilon(z, q, steps, delta))
    theirs_seconds = best_of(theirs_epsilon)
    report = {"grid": GRID, "rows": rows, "ours_seconds": ours_seconds, "dp_accounting_seconds": theirs_seconds,
              "dp_accounting_version": metadata.version("dp-accounting"),
              "summary": summary_line(rows, ours_seconds, theirs_seconds)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accountant.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(rows, args.out / "accountant.png")
    print(f"grid of {len(GRID)}: ours {ours_seconds:.2f} s, dp-accounting {theirs_seconds:.2f} s")
    print(report["summary"])


if __name__ == "__main__":
    main()
