"""Seconds per notebook cell: the learner's default BLAS threads against one thread.

    python benchmarks/notebook_cells.py [--notebooks notebooks/01_background.ipynb ...]

Executes every chapter top to bottom, each in a fresh kernel, three ways:

- ``default``: as committed, with no environment variable set, which is what a learner's kernel
  gets (every chapter limits BLAS to one thread in its first cell);
- ``one_thread``: as committed, with OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS
  set to 1 before the kernel starts;
- ``no_limit``: default threads with the first cell's ``threadpool_limits(1)`` taken out, to
  show what the limit saves.

Cell times come from the kernel's own timestamps (from the request to the reply). Saves
``benchmarks/results/notebook_cells.{json,png}`` and prints a last line of key=value figures.
"""
from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
LIMIT = "_ = threadpool_limits(1)"
VARIANTS = ("default", "one_thread", "no_limit")


def cell_seconds(cell) -> float:
    stamps = cell.metadata.get("execution", {})
    started, ended = stamps["iopub.execute_input"], stamps["shell.execute_reply"]
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(ended) - parse(started)).total_seconds()


def execute(path: Path, variant: str) -> list[dict]:
    """Run one notebook as ``variant`` says; one row per code cell."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if variant == "no_limit":
        assert LIMIT in code[0].source, f"{path.name}: its first cell does not limit BLAS threads"
        code[0].source = code[0].source.replace(LIMIT, "pass  # (limit taken out)")
    saved = {name: os.environ.pop(name, None) for name in THREAD_VARIABLES}
    if variant == "one_thread":
        os.environ.update({name: "1" for name in THREAD_VARIABLES})
    try:
        NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value
    return [{"notebook": path.stem, "cell": k, "seconds": cell_seconds(cell),
             "source": cell.source.splitlines()[0][:70] if cell.source else ""}
            for k, cell in enumerate(code, 1)]


def plot(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slowest = sorted(rows["default"], key=lambda r: -r["seconds"])[:12]
    labels = [f"{r['notebook'][:2]} cell {r['cell']}" for r in slowest]
    index = {v: {(r["notebook"], r["cell"]): r["seconds"] for r in rows[v]} for v in rows}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(rows)
    for i, variant in enumerate(rows):
        values = [index[variant][(r["notebook"], r["cell"])] for r in slowest]
        ax.barh([k + i * width for k in range(len(slowest))], values, height=width, label=variant)
    ax.set_yticks([k + width for k in range(len(slowest))], labels)
    ax.invert_yaxis()
    ax.axvline(3.0, color="black", linestyle=":", label="3 s")
    ax.set(xlabel="seconds", title="the slowest notebook cells (by default threads)")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", type=Path,
                        default=sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")))
    args = parser.parse_args()
    rows = {variant: [row for path in args.notebooks for row in execute(path, variant)]
            for variant in VARIANTS}
    worst = {variant: max(r["seconds"] for r in rows[variant]) for variant in VARIANTS}
    total = {variant: sum(r["seconds"] for r in rows[variant]) for variant in VARIANTS}
    summary = " ".join([f"slowest_cell_{v}_s={worst[v]:.2f}" for v in VARIANTS]
                       + [f"total_{v}_s={total[v]:.1f}" for v in VARIANTS]
                       + [f"cores={os.cpu_count()}"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    slowest = {v: sorted(rows[v], key=lambda r: -r["seconds"])[:10] for v in VARIANTS}
    (RESULTS / "notebook_cells.json").write_text(json.dumps(
        {"variants": VARIANTS, "slowest": slowest, "cells": rows, "summary": summary}, indent=1))
    plot(rows, RESULTS / "notebook_cells.png")
    for variant in VARIANTS:
        print(f"{variant}: slowest cells")
        for r in slowest[variant][:5]:
            print(f"   {r['seconds']:5.2f} s  {r['notebook']} cell {r['cell']}: {r['source']}")
    print(summary)


if __name__ == "__main__":
    main()
