"""Speed-up of synchronous data-parallel SGD on this machine: serial vs K process workers vs Dask.

Softmax regression on synthetic data (100,000 samples, 256 features, 10 classes), global
minibatches of 20,000, the same number of steps everywhere. Every configuration is timed side
by side in one run, with one BLAS thread per process, so the ratios compare like with like:

  serial          the plain-numpy floor: a self-contained softmax gradient in a loop
  in-process K=1  DataParallelSGD with one in-process worker (our overhead over the loop)
  processes K=1,2 DataParallelSGD with OS-process workers and shared memory
  dask K=2        DataParallelSGD on a Dask LocalCluster with two single-threaded workers

Times are the training steps only (start-up is reported apart); each is the median of
``--repeats`` runs. Writes benchmarks/results/distributed_speedup.{json,png}; the last line
printed is ``speedup_processes_k2=<x.xx> speedup_dask_k2=<y.yy>`` (serial time / parallel time).

    python benchmarks/distributed_speedup.py [--steps 40] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from itertools import islice
from pathlib import Path

import numpy as np
from numpy_floor import softmax_grad
from threadpoolctl import threadpool_limits

import flcourse as fl
from flcourse.distributed import DataParallelSGD

RESULTS = Path(__file__).resolve().parent / "results"
N_SAMPLES, N_FEATURES, N_CLASSES, BATCH, LR = 100_000, 256, 10, 20_000, 0.5


def make_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES))
    y = np.argmax(X @ rng.normal(size=(N_FEATURES, N_CLASSES)), axis=1)
    return fl.SoftmaxRegression(n_features=N_FEATURES, n_classes=N_CLASSES), X, y


def time_serial(model, X, y, n_steps):
    W, b = np.zeros((N_FEATURES, N_CLASSES)), np.zeros(N_CLASSES)
    started = time.perf_counter()
    for batch in islice(fl.minibatches(len(y), BATCH, n_epochs=n_steps, seed=0), n_steps):
        grad_W, grad_b = softmax_grad(W, b, X[batch], y[batch])
        W, b = W - LR * grad_W, b - LR * grad_b
    params = np.concatenate([W.ravel(), b])
    return {"steps_seconds": time.perf_counter() - started, "startup_seconds": 0.0,
            "compute_seconds": None, "params": params}


def time_parallel(model, X, y, n_steps, backend, n_workers):
    trainer = DataParallelSGD(model, n_workers=n_workers, lr=LR, batch_size=BATCH,
                              backend=backend, seed=0, timeout=300)
    started = time.perf_counter()
    trainer.fit(X, y, n_steps=n_steps, eval_every=n_steps)
    total = time.perf_counter() - started
    steps = trainer.history_["wall_seconds"][-1]
    return {"steps_seconds": steps, "startup_seconds": total - steps,
            "compute_seconds": trainer.history_["compute_seconds"][-1], "params": trainer.params_}


def median_run(run, repeats):
    runs = [run() for _ in range(repeats)]
    order = np.argsort([r["steps_seconds"] for r in runs])
    return runs[order[len(runs) // 2]]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    threadpool_limits(1)
    model, X, y = make_problem()
    configs = {
        "serial": lambda: time_serial(model, X, y, args.steps),
        "in-process K=1": lambda: time_parallel(model, X, y, args.steps, "in-process", 1),
        "processes K=1": lambda: time_parallel(model, X, y, args.steps, "processes", 1),
        "processes K=2": lambda: time_parallel(model, X, y, args.steps, "processes", 2),
        "dask K=2": lambda: time_parallel(model, X, y, args.steps, "dask", 2),
    }
    results = {}
    for name, run in configs.items():
        result = median_run(run, args.repeats)
        results[name] = result
        print(f"{name:15s} steps {result['steps_seconds']:7.3f} s   start-up "
              f"{result['startup_seconds']:6.2f} s", flush=True)
    report = summarise(results, args)
    report["summary"] = summary_line(report)
    save(report)
    print(report["summary"])
    return report


def summary_line(report) -> str:
    """The last line printed, also stored in the JSON as "summary"."""
    return (f"speedup_processes_k2={report['speedup']['processes K=2']:.2f} "
            f"speedup_dask_k2={report['speedup']['dask K=2']:.2f}")


def summarise(results, args) -> dict:
    serial = results["serial"]
    same = {name: bool(np.allclose(r["params"], serial["params"], rtol=0, atol=1e-10))
            for name, r in results.items()}
    return {
        "problem": {"n_samples": N_SAMPLES, "n_features": N_FEATURES, "n_classes": N_CLASSES,
                    "batch_size": BATCH, "n_steps": args.steps, "repeats": args.repeats,
                    "model": "SoftmaxRegression", "blas_threads_per_process": 1},
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "platform": platform.platform()},
        "seconds": {name: {k: v for k, v in r.items() if k != "params"} for name, r in results.items()},
        "speedup": {name: serial["steps_seconds"] / r["steps_seconds"] for name, r in results.items()},
        "same_params_as_serial": same,
    }


def save(report) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "distributed_speedup.json").write_text(json.dumps(report, indent=2))
    names = list(report["speedup"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.bar(names, [report["speedup"][n] for n in names], color="tab:blue")
    left.axhline(2.0, color="grey", ls="--", lw=1, label="ideal for K=2")
    left.set(ylabel="speed-up over serial (x)", title="time serial / time parallel, same steps")
    left.legend(frameon=False)
    step = {n: report["seconds"][n]["steps_seconds"] / report["problem"]["n_steps"] * 1e3 for n in names}
    compute = {n: (report["seconds"][n]["compute_seconds"] or report["seconds"][n]["steps_seconds"])
               / report["problem"]["n_steps"] * 1e3 for n in names}
    right.bar(names, [compute[n] for n in names], label="compute (slowest worker)", color="tab:green")
    right.bar(names, [step[n] - compute[n] for n in names], bottom=[compute[n] for n in names],
              label="communication + synchronisation", color="tab:orange")
    right.set(ylabel="ms per step", title="where a step's time goes")
    right.legend(frameon=False)
    for axis in (left, right):
        axis.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(RESULTS / "distributed_speedup.png", dpi=110)


if __name__ == "__main__":
    main()
