"""Stragglers on a simulated clock: how long each way of coping takes to reach a target accuracy.

Softmax regression on digits, 100 IID clients, each wanting K = 10 updates per server step, with
the same local work (E = 2, B = 10, lr = 0.1). Client speeds are lognormal with median 10
samples/s and sigma = 1 (heavy-tailed: one client in twenty is over 5x slower than the median),
links lognormal with median 100 kB/s and sigma 0.5 (a 5 kB model: links matter little). Compared:

  sync        FedAvg that waits for all K selected clients;
  deadline    FedAvg that keeps the updates arriving by a deadline (the 75th percentile of the
              clients' full-work times) and drops the late ones;
  overselect  select ceil(1.3 K), keep the first K (Bonawitz et al. 2019);
  fedprox     FedProx's partial work: each selected client runs the epochs that fit before the
              same deadline (mu = 0.01);
  fedbuff     FedBuff, 20 clients training at once, a step every 10 arrivals, staleness-weighted.

Two scenarios: "heavy_tail" (nobody drops out) and "dropouts" (10% of the clients that start a
round drop out; the server notices after a 60 s timeout). Reported per strategy: simulated
seconds to the target test accuracy (the first round at or above it), median and range over
3 seeds (a seed fixes the partition, the speeds and the server), and the final accuracy. Also
the wall time of a 1,000-round simulated study with 100 clients (FedBuff), which sleeps nowhere.
Writes benchmarks/results/stragglers.{json,png}; the last line is
``best_vs_sync_simulated_time_ratio=<x.x> best_strategy=<name> thousand_rounds_wall_seconds=<s>``
(the ratio: sync's median time to the target over the best strategy's, heavy-tail scenario).

    python benchmarks/stragglers.py [--quick] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

RESULTS = Path(__file__).resolve().parent / "results"
STRATEGIES = ("sync", "deadline", "overselect", "fedprox", "fedbuff")
SETTINGS = {"dataset": "digits", "n_clients": 100, "clients_per_step": 10, "local_epochs": 2, "batch_size": 10,
            "lr": 0.1, "target": 0.90, "n_rounds": 300, "seeds": [0, 1, 2], "deadline_quantile": 0.75,
            "over_selection": 1.3, "mu": 0.01, "fedbuff": {"concurrency": 20, "buffer_size": 10},
            "systems": {"speed_median": 10.0, "speed_sigma": 1.0, "bandwidth_median": 1e5, "bandwidth_sigma": 0.5},
            "scenarios": {"heavy_tail": {}, "dropouts": {"dropout": 0.1}}, "timeout": 60.0,
            "study": {"n_rounds": 1000, "n_clients": 100}}


def load():
    import flcourse as fl

    data = fl.load_digits(seed=0)
    return data, fl.SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)


def make_systems(seed: int, scenario: dict):
    from flcourse.federated import SimulatedSystems

    return SimulatedSystems(**SETTINGS["systems"], **scenario, seed=seed)


def full_work_deadline(systems, sizes, n_params: int) -> float:
    """The deadline: a quantile of the clients' times for E full epochs, model both ways."""
    cids = list(range(len(sizes)))
    times = SETTINGS["local_epochs"] * systems.epoch_seconds(cids, sizes) + systems.link_seconds(cids, 8 * n_params)
    return float(np.quantile(times, SETTINGS["deadline_quantile"]))


def make_strategy(name: str, systems, deadline: float):
    from flcourse.federated import FedBuff, TimedFedAvg, TimedFedProx

    local = {key: SETTINGS[key] for key in ("local_epochs", "batch_size", "lr")}
    timed = {"systems": systems, "timeout": SETTINGS["timeout"], **local}
    fraction = SETTINGS["clients_per_step"] / SETTINGS["n_clients"]
    if name == "fedbuff":
        return FedBuff(**SETTINGS["fedbuff"], **timed)
    if name == "fedprox":
        return TimedFedProx(mu=SETTINGS["mu"], deadline=deadline, fraction_fit=fraction, **timed)
    return TimedFedAvg(deadline=deadline if name == "deadline" else None, fraction_fit=fraction,
                       over_selection=SETTINGS["over_selection"] if name == "overselect" else 1.0, **timed)


def run_curve(name: str, seed: int, scenario: dict, data_model, n_rounds: int) -> dict:
    """(simulated seconds, test accuracy) after every round of one run."""
    import flcourse as fl
    from flcourse.federated import Server, make_clients, simulated_seconds

    data, model = data_model
    partition = fl.make_partition("iid", data.y_train, SETTINGS["n_clients"], seed=seed)
    systems = make_systems(seed, scenario)
    deadline = full_work_deadline(systems, [len(p) for p in partition], model.n_params)
    clients = make_clients(model, data.X_train, data.y_train, partition)
    server = Server(model, make_strategy(name, systems, deadline), clients, test_set=(data.X_test, data.y_test),
                    seed=seed).run(n_rounds)
    return {"seconds": simulated_seconds(server.history_), "accuracy": server.history_["test_accuracy"],
            "deadline": deadline}


def time_to_target(curve: dict, target: float) -> float | None:
    """Simulated seconds of the first round at or above ``target``; None if never."""
    hits = [t for t, a in zip(curve["seconds"], curve["accuracy"]) if a >= target]
    return hits[0] if hits else None


def cell(curves: list, target: float) -> dict:
    times = [time_to_target(c, target) for c in curves]
    reached = [t for t in times if t is not None]
    return {"seconds_to_target": times, "median_seconds": float(np.median(reached)) if len(reached) == len(times)
            else None, "final_accuracy": [c["accuracy"][-1] for c in curves],
            "end_seconds": [c["seconds"][-1] for c in curves]}


def study_wall_seconds(data_model, n_rounds: int) -> float:
    """Wall seconds of an n_rounds FedBuff study with 100 clients on the simulated clock."""
    started = time.perf_counter()
    run_curve("fedbuff", 0, {}, data_model, n_rounds)
    return time.perf_counter() - started


def sweep(data_model, n_rounds: int, seeds, progress) -> dict:
    results = {}
    for scenario, extra in SETTINGS["scenarios"].items():
        for name in STRATEGIES:
            curves = [run_curve(name, seed, extra, data_model, n_rounds) for seed in seeds]
            results.setdefault(scenario, {})[name] = {**cell(curves, SETTINGS["target"]), "curves": curves}
            progress.update(1)
    return results


def best_ratio(results: dict) -> tuple[float, str]:
    """sync's median time to the target over the fastest other strategy's, heavy-tail scenario."""
    cells = results["heavy_tail"]
    others = {n: c["median_seconds"] for n, c in cells.items() if n != "sync" and c["median_seconds"]}
    best = min(others, key=others.get)
    return cells["sync"]["median_seconds"] / others[best], best


def table(results: dict) -> list[str]:
    lines = []
    for scenario, cells in results.items():
        lines.append(f"{scenario}: seconds to {SETTINGS['target']:.2f} (median [range]), final accuracy")
        for name, c in cells.items():
            reached = [t for t in c["seconds_to_target"] if t is not None]
            span = f"[{min(reached):.0f}, {max(reached):.0f}]" if reached else "[never]"
            median = f"{c['median_seconds']:.0f}" if c["median_seconds"] else "> budget"
            lines.append(f"  {name:<11} {median:>9} s {span:<14} {np.mean(c['final_accuracy']):.3f}")
    return lines


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), sharey=True)
    for ax, (scenario, cells) in zip(np.atleast_1d(axes), results.items()):
        for name, c in cells.items():
            curve = c["curves"][0]
            ax.plot(curve["seconds"], curve["accuracy"], label=name)
        ax.axhline(SETTINGS["target"], color="grey", lw=0.8, ls="--")
        ax.set(xscale="symlog", xlabel="simulated seconds", title=f"{scenario} (seed 0)", ylim=(0.5, 1.0))
    np.atleast_1d(axes)[0].set_ylabel("test accuracy")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 60 rounds, a 100-round study")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    threadpool_limits(1)
    from tqdm.auto import tqdm

    seeds = SETTINGS["seeds"][:1] if args.quick else SETTINGS["seeds"]
    n_rounds = 60 if args.quick else SETTINGS["n_rounds"]
    data_model = load()
    with tqdm(total=len(SETTINGS["scenarios"]) * len(STRATEGIES), desc="cells", file=sys.stderr) as progress:
        results = sweep(data_model, n_rounds, seeds, progress)
    study = study_wall_seconds(data_model, 100 if args.quick else SETTINGS["study"]["n_rounds"])
    ratio, best = best_ratio(results)
    report = {"settings": {**SETTINGS, "seeds": seeds, "n_rounds": n_rounds}, "results": results,
              "study_wall_seconds": study, "table": table(results)}
    report["summary"] = (f"best_vs_sync_simulated_time_ratio={ratio:.1f} best_strategy={best} "
                         f"thousand_rounds_wall_seconds={study:.1f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stragglers.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(results, args.out / "stragglers.png")
    print("\n".join(report["table"]))
    print(report["summary"])


if __name__ == "__main__":
    main()
