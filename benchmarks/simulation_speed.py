"""How fast flcourse simulates federated learning, against a plain numpy loop and Flower.

Workload (McMahan et al.'s setting, scaled to digits): FedAvg with softmax regression on
digits, 100 IID clients, 10 per round (C = 0.1), E = 5, B = 10, lr = 0.1, 50 rounds.

  numpy   the floor: the same work as a plain numpy loop written here, no framework
  ours    flcourse's Server with in-process clients (the simulation engine)
  flower  Flower's simulation engine (Ray) running the same clients, if flwr is installed
          (pip install "flwr[simulation]")

Each engine runs in a subprocess of its own; this script measures that process's whole wall
time (start-up included) and the peak memory of its process tree (RSS summed over the
process and its children, sampled every 20 ms); the subprocess reports per-round times and
the test-accuracy curve. The numpy floor and ours run ``--repeats`` times each, alternated;
their figures are medians (peak memory: the largest). Flower runs once (it takes a while);
its accuracy curve is compared with ours against the noise of client sampling: our own curve
with three other server seeds. Our engine also runs 1,000 and 10,000 clients (synthetic data,
10 samples per client, C = 0.1, 10 rounds). Writes benchmarks/results/simulation_speed.{json,png};
the last line is ``overhead_vs_numpy_floor=<x.xx> speedup_vs_flower_round=<y.y>
speedup_vs_flower_run=<z.z>`` (nan where Flower is not installed).

    python benchmarks/simulation_speed.py
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from numpy_floor import softmax_grad

RESULTS = Path(__file__).resolve().parent / "results"
WORKLOAD = {"n_clients": 100, "fraction": 0.1, "local_epochs": 5, "batch_size": 10, "lr": 0.1,
            "n_rounds": 50, "seed": 0}


# ---- the engines (each runs inside its own subprocess) -------------------------------------

def load_workload(n_clients, seed):
    import flcourse as fl

    if n_clients <= 1000:
        data = fl.load_digits(seed=seed)
        X, y, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    else:  # more clients than digits has samples: 10 synthetic samples per client
        from sklearn.datasets import make_classification

        X, y = make_classification(n_samples=10 * n_clients + 1000, n_features=64, n_informative=20,
                                   n_classes=10, random_state=seed)
        X, y, X_test, y_test = X[1000:], y[1000:], X[:1000], y[:1000]
    partition = fl.iid_partition(len(y), n_clients, seed=seed)
    return X, y, X_test, y_test, partition


def run_ours(n_clients, n_rounds, server_seed=WORKLOAD["seed"]):
    import flcourse as fl
    from flcourse.federated import FedAvg, make_clients
    from flcourse.federated import Server

    X, y, X_test, y_test, partition = load_workload(n_clients, WORKLOAD["seed"])
    model = fl.SoftmaxRegression(n_features=X.shape[1], n_classes=10)
    strategy = FedAvg(fraction_fit=WORKLOAD["fraction"], local_epochs=WORKLOAD["local_epochs"],
                      batch_size=WORKLOAD["batch_size"], lr=WORKLOAD["lr"])
    server = Server(model, strategy, make_clients(model, X, y, partition),
                    test_set=(X_test, y_test), seed=server_seed).run(n_rounds)
    return {"round_seconds": server.history_["wall_seconds"][1:],
            "test_accuracy": server.history_["test_accuracy"]}


def run_numpy(n_clients, n_rounds):
    X, y, X_test, y_test, partition = load_workload(n_clients, WORKLOAD["seed"])
    shards = [(X[p], y[p]) for p in partition]
    W, b = np.zeros((X.shape[1], 10)), np.zeros(10)
    rng, B, lr = np.random.default_rng(WORKLOAD["seed"]), WORKLOAD["batch_size"], WORKLOAD["lr"]
    round_seconds, accuracy = [], [float(np.mean(np.argmax(X_test @ W + b, 1) == y_test))]
    for _ in range(n_rounds):
        started = time.perf_counter()
        chosen = rng.choice(n_clients, size=max(1, round(WORKLOAD["fraction"] * n_clients)), replace=False)
        new_W, new_b, sizes = [], [], []
        for k in chosen:
            X_k, y_k = shards[k]
            W_k, b_k = W.copy(), b.copy()
            for _ in range(WORKLOAD["local_epochs"]):
                order = rng.permutation(len(y_k))
                for start in range(0, len(y_k), B):
                    batch = order[start:start + B]
                    g_W, g_b = softmax_grad(W_k, b_k, X_k[batch], y_k[batch])
                    W_k -= lr * g_W
                    b_k -= lr * g_b
            new_W.append(W_k), new_b.append(b_k), sizes.append(len(y_k))
        W, b = np.average(new_W, axis=0, weights=sizes), np.average(new_b, axis=0, weights=sizes)
        round_seconds.append(time.perf_counter() - started)
        accuracy.append(float(np.mean(np.argmax(X_test @ W + b, 1) == y_test)))
    return {"round_seconds": round_seconds, "test_accuracy": accuracy}


def run_flower(n_clients, n_rounds):
    """The same clients and strategy settings on Flower's simulation engine (Ray back end)."""
    import logging

    from flwr.client import ClientApp, NumPyClient
    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg as FlowerFedAvg
    from flwr.simulation import run_simulation

    import flcourse as fl
    from flcourse.federated import make_clients

    X, y, X_test, y_test, partition = load_workload(n_clients, WORKLOAD["seed"])
    model = fl.SoftmaxRegression(n_features=X.shape[1], n_classes=10)
    clients = make_clients(model, X, y, partition)

    class FlowerAdapter(NumPyClient):  # Flower passes a list of arrays; ours is one flat vector
        def __init__(self, client):
            self.client = client

        def fit(self, parameters, config):
            params, n_examples, metrics = self.client.fit(parameters[0], config)
            return [params], n_examples, metrics

    def client_fn(context):
        return FlowerAdapter(clients[int(context.node_config["partition-id"])]).to_client()

    accuracy, round_started, round_seconds = [], [time.perf_counter()], []

    def evaluate(server_round, parameters, config):
        if server_round > 0:
            round_seconds.append(time.perf_counter() - round_started[0])
        accuracy.append(model.score(parameters[0], X_test, y_test))
        round_started[0] = time.perf_counter()
        return float(model.loss(parameters[0], X_test, y_test)), {}

    def server_fn(context):
        strategy = FlowerFedAvg(
            fraction_fit=WORKLOAD["fraction"], fraction_evaluate=0.0, min_fit_clients=1,
            min_evaluate_clients=0, min_available_clients=n_clients, evaluate_fn=evaluate,
            initial_parameters=ndarrays_to_parameters([model.init_params()]),
            on_fit_config_fn=lambda r: {"server_round": r, "local_epochs": WORKLOAD["local_epochs"],
                                        "batch_size": WORKLOAD["batch_size"], "lr": WORKLOAD["lr"],
                                        "seed": r})
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=n_rounds))

    logging.getLogger("flwr").setLevel(logging.ERROR)
    run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
                   num_supernodes=n_clients,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}})
    return {"round_seconds": round_seconds, "test_accuracy": accuracy}


ENGINES = {"ours": run_ours, "numpy": run_numpy, "flower": run_flower}


# ---- the harness -------------------------------------------------------------------------

def measure(engine, n_clients, n_rounds):
    """Run one engine in a subprocess; return its report, wall time and peak tree memory."""
    import psutil

    command = [sys.executable, __file__, "--engine", engine, "--clients", str(n_clients),
               "--rounds", str(n_rounds)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    peak, done = [0], threading.Event()

    def sample():
        process = psutil.Process(child.pid)
        while not done.is_set():
            try:
                tree = [process] + process.children(recursive=True)
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise RuntimeError(f"engine {engine} failed with exit code {child.returncode}")
    report = json.loads(output.strip().splitlines()[-1])
    report.update(run_seconds=wall, peak_memory_mb=peak[0] / 2**20,
                  median_round_ms=1e3 * float(np.median(report["round_seconds"])))
    return report


def median_run(reports):
    """The run with the median per-round time, its whole-run time replaced by the runs' median."""
    chosen = sorted(reports, key=lambda r: r["median_round_ms"])[len(reports) // 2]
    return dict(chosen, run_seconds=float(np.median([r["run_seconds"] for r in reports])),
                peak_memory_mb=max(r["peak_memory_mb"] for r in reports), repeats=len(reports))


def flower_available() -> bool:
    try:
        import flwr  # noqa: F401
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=ENGINES)
    parser.add_argument("--clients", type=int, default=WORKLOAD["n_clients"])
    parser.add_argument("--rounds", type=int, default=WORKLOAD["n_rounds"])
    parser.add_argument("--repeats", type=int, default=3, help="runs of numpy and ours, alternated")
    args = parser.parse_args()
    if args.engine:  # inside the subprocess: run one engine, report as JSON on the last line
        print(json.dumps(ENGINES[args.engine](args.clients, args.rounds)))
        return
    runs = {"numpy": [], "ours": []}
    for _ in range(args.repeats):  # alternate, so that a change of load hits both alike
        for name in runs:
            runs[name].append(measure(name, WORKLOAD["n_clients"], WORKLOAD["n_rounds"]))
    results = {name: median_run(reports) for name, reports in runs.items()}
    if flower_available():
        results["flower"] = measure("flower", WORKLOAD["n_clients"], WORKLOAD["n_rounds"])
    for name, result in results.items():
        print(f"{name:7s} median round {result['median_round_ms']:8.2f} ms   whole run "
              f"{result['run_seconds']:6.2f} s   peak memory {result['peak_memory_mb']:7.1f} MB   "
              f"final accuracy {result['test_accuracy'][-1]:.3f}", flush=True)
    scale = {n: measure("ours", n, 10) for n in (1000, 10_000)}
    for n, result in scale.items():
        print(f"ours with {n:6d} clients: 10 rounds, whole run {result['run_seconds']:.2f} s, "
              f"median round {result['median_round_ms']:.1f} ms, peak {result['peak_memory_mb']:.0f} MB")
    summary = summarise(results, scale)
    summary["summary"] = summary_line(summary)
    save(summary)
    if "flower" in results:
        print(f"test-accuracy gap, mean over the last 10 rounds: ours vs Flower "
              f"{summary['accuracy_gap_ours_vs_flower']['last_10_rounds_mean_abs']:.3f}, ours vs ours "
              f"with other server seeds {summary['accuracy_gap_ours_vs_ours_other_seeds']['last_10_rounds_mean_abs']:.3f}")
    print(summary["summary"])


def summary_line(summary) -> str:
    """The last line printed, also stored in the JSON as "summary"."""
    return (f"overhead_vs_numpy_floor={summary['overhead_vs_numpy_floor']:.2f} "
            f"speedup_vs_flower_round={summary.get('speedup_vs_flower_round', float('nan')):.1f} "
            f"speedup_vs_flower_run={summary.get('speedup_vs_flower_run', float('nan')):.1f}")


def summarise(results, scale) -> dict:
    ours, floor, flower = results["ours"], results["numpy"], results.get("flower")
    summary = {
        "workload": WORKLOAD, "engines": results, "scale": {str(n): r for n, r in scale.items()},
        "overhead_vs_numpy_floor": ours["median_round_ms"] / floor["median_round_ms"],
        "speedup_vs_flower_round": math.nan, "speedup_vs_flower_run": math.nan,
        "machine": {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]},
    }
    if flower:
        summary.update(speedup_vs_flower_round=flower["median_round_ms"] / ours["median_round_ms"],
                       speedup_vs_flower_run=flower["run_seconds"] / ours["run_seconds"],
                       accuracy_gap_ours_vs_flower=curve_gap(ours, flower),
                       accuracy_gap_ours_vs_ours_other_seeds=seed_noise(ours))
    return summary


def curve_gap(a, b) -> dict:
    gap = np.abs(np.subtract(a["test_accuracy"], b["test_accuracy"]))
    return {"mean_abs": float(gap.mean()), "last_10_rounds_mean_abs": float(gap[-10:].mean())}


def seed_noise(ours, seeds=(1, 2, 3)) -> dict:
    """The noise the Flower comparison is held against: Flower samples the clients with its own
    generator, so compare our curve with our own runs whose server seed (client sampling and
    minibatch order) differs; the data and partition stay the same."""
    gaps = [curve_gap(ours, run_ours(WORKLOAD["n_clients"], WORKLOAD["n_rounds"], seed)) for seed in seeds]
    return {key: float(np.mean([gap[key] for gap in gaps])) for key in gaps[0]} | {"seeds": list(seeds)}


def save(summary) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "simulation_speed.json").write_text(json.dumps(summary, indent=1))
    engines = summary["engines"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    names = list(engines)
    axes[0].bar(names, [engines[n]["median_round_ms"] for n in names], color="tab:blue")
    axes[0].set(yscale="log", ylabel="ms per round (median)", title="one round, 10 clients")
    axes[1].bar(names, [engines[n]["peak_memory_mb"] for n in names], color="tab:purple")
    axes[1].set(ylabel="MB", title="peak memory, whole process tree")
    for name in names:
        axes[2].plot(engines[name]["test_accuracy"], label=name)
    axes[2].set(xlabel="round", ylabel="test accuracy", title="same workload, same curve?")
    axes[2].legend(frameon=False)
    fig.tight_layout()
    fig.savefig(RESULTS / "simulation_speed.png", dpi=110)


if __name__ == "__main__":
    main()
