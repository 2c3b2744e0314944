"""Every notebook, top to bottom under nbval strict, several times on a loaded machine.

    python benchmarks/notebooks_under_load.py [--runs 10] [--burners N]

A workshop laptop is rarely idle, and a notebook that fails one run in ten breaks a class. This
check keeps every core busy with a CPU burner (one spinning process per core, by default, at
normal priority) and meanwhile runs ``pytest notebooks/`` (nbval strict, exactly as the suite
does) ``--runs`` times in a row. Saves ``benchmarks/results/notebooks_under_load.{json,png}``
with each run's outcome, duration and, for a failed run, pytest's short summary; the last line
printed is ``runs=<n> passed=<k> burners=<b> ...``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def burn(stop) -> None:
    """Spin until ``stop`` is set: one core's worth of load."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def run_notebooks() -> dict:
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pytest", "notebooks", "-q", "-p", "no:cacheprovider"],
                         cwd=ROOT, capture_output=True, text=True)
    lines = run.stdout.strip().splitlines()
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return {"passed": run.returncode == 0, "seconds": time.perf_counter() - started,
            "last_line": lines[-1] if lines else "", "failures": failures}


def plot(runs: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    colours = ["tab:green" if r["passed"] else "tab:red" for r in runs]
    ax.bar(range(1, len(runs) + 1), [r["seconds"] for r in runs], color=colours)
    ax.set(xlabel="run (green: passed, red: failed)", ylabel="seconds",
           title="all notebooks under nbval strict, every core busy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--burners", type=int, default=os.cpu_count())
    args = parser.parse_args()
    stop = mp.Event()
    burners = [mp.Process(target=burn, args=(stop,), daemon=True) for _ in range(args.burners)]
    for burner in burners:
        burner.start()
    runs = []
    try:
        for k in range(1, args.runs + 1):
            runs.append(run_notebooks())
            print(f"run {k}: {'passed' if runs[-1]['passed'] else 'FAILED'} in "
                  f"{runs[-1]['seconds']:.0f} s: {runs[-1]['last_line']}", flush=True)
    finally:
        stop.set()
        for burner in burners:
            burner.join(timeout=5)
    passed = sum(r["passed"] for r in runs)
    seconds = [r["seconds"] for r in runs]
    summary = (f"runs={len(runs)} passed={passed} burners={args.burners} cores={os.cpu_count()} "
               f"slowest_run_s={max(seconds):.0f} fastest_run_s={min(seconds):.0f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "notebooks_under_load.json").write_text(json.dumps(
        {"burners": args.burners, "runs": runs, "summary": summary}, indent=1))
    plot(runs, RESULTS / "notebooks_under_load.png")
    print(summary)


if __name__ == "__main__":
    main()
