"""Communication rounds to a target accuracy: FedSGD vs FedAvg, in the style of McMahan et al.
(AISTATS 2017), Table 2, on digits with 100 clients: softmax regression (convex) or a
one-hidden-layer tanh MLP (64 units; the closest we have to the paper's 2NN).

For IID and pathological non-IID partitions (2 label shards per client), C = 0.1, we run FedSGD
and FedAvg with several (E, B) over several seeds, and count the rounds until the global
model's test accuracy first reaches a target; each setting gets, per target, the learning rate
from a grid that needs the fewest rounds (the paper tunes lr per setting too). A grid whose best
rate is at one of its ends is widened, by factors of 2, until the best rate lies inside it. Two
targets per partition: a loose one, and one near what softmax regression can reach on digits
(about 0.96 centrally), as the paper set its targets near its models' best accuracy. A setting
that never reaches a target within the budget counts as the budget (reported as ">"). Writes
benchmarks/results/rounds_to_accuracy_<model>[_<K>clients].{json,png}; the last line is
``fedavg_vs_fedsgd_rounds_ratio_iid=<x.x> fedavg_vs_fedsgd_rounds_ratio_noniid=<y.y>`` for the
best FedAvg setting at the higher target (FedSGD's median rounds / FedAvg's median rounds).

    python benchmarks/rounds_to_accuracy.py [--model softmax|mlp] [--clients 100] [--seeds 3]
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import flcourse as fl
from flcourse.federated import FedAvg, FedSGD, Server, make_clients

RESULTS = Path(__file__).resolve().parent / "results"
N_CLIENTS, FRACTION = 100, 0.1
TARGETS = {"iid": (0.92, 0.95), "shards:2": (0.85, 0.90)}
SETTINGS = {  # name: (E, B) for FedAvg; FedSGD is E = 1, B = inf
    "FedSGD": None, "FedAvg E=1 B=10": (1, 10), "FedAvg E=5 B=10": (5, 10),
    "FedAvg E=20 B=10": (20, 10), "FedAvg E=5 B=inf": (5, math.inf), "FedAvg E=20 B=inf": (20, math.inf),
}
LEARNING_RATES = {"FedSGD": (0.5, 1.0, 2.0, 4.0, 8.0, 16.0), "default": (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)}
BUDGET = {"FedSGD": 1500, "default": 200}


MODEL = {"name": "softmax", "n_clients": N_CLIENTS}


def make_model(data):
    if MODEL["name"] == "mlp":
        return fl.MLP(n_features=data.n_features, n_hidden=64, n_classes=data.n_classes)
    return fl.SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)


def run_history(setting, lr, partition_spec, seed, data):
    """Test accuracy per round of one run (None if this learning rate diverges)."""
    model = make_model(data)
    partition = fl.make_partition(partition_spec, data.y_train, MODEL["n_clients"], seed=seed)
    clients = make_clients(model, data.X_train, data.y_train, partition)
    epochs_batch = SETTINGS[setting]
    strategy = FedSGD(fraction_fit=FRACTION, lr=lr) if epochs_batch is None else \
        FedAvg(fraction_fit=FRACTION, local_epochs=epochs_batch[0], batch_size=epochs_batch[1], lr=lr)
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            return Server(model, strategy, clients, test_set=(data.X_test, data.y_test),
                          seed=seed).run(BUDGET.get(setting, BUDGET["default"]),
                                         params=model.init_params(seed)).history_["test_accuracy"]
        except FloatingPointError:
            return None


def first_round_at(curve, target, budget):
    reached = [] if curve is None else np.flatnonzero(np.asarray(curve) >= target)
    return int(reached[0]) if len(reached) else budget


def sweep(n_seeds):
    data = fl.load_digits(seed=0)
    results = {}
    for spec, targets in TARGETS.items():
        for setting in SETTINGS:
            budget = BUDGET.get(setting, BUDGET["default"])
            run = lambda lr: [run_history(setting, lr, spec, seed, data) for seed in range(n_seeds)]  # noqa: E731
            curves = {lr: run(lr) for lr in LEARNING_RATES.get(setting, LEARNING_RATES["default"])}
            for target in targets:
                lr, rounds = widened_choice(curves, run, target, budget)
                results[f"{spec} | {target} | {setting}"] = {
                    "lr": lr, "grid": sorted(curves), "rounds": rounds[lr],
                    "median_rounds": float(np.median(rounds[lr])), "budget": budget,
                    "inside_grid": min(curves) < lr < max(curves), "curve": curves[lr][0]}
                print(f"{spec:9s} target {target:.2f} {setting:18s} lr={lr:<6} of {min(curves):g}..{max(curves):g}"
                      f" rounds per seed {rounds[lr]}", flush=True)
    return results


def widened_choice(curves, run, target, budget, max_widenings=6):
    """The learning rate that needs the fewest rounds (median over seeds, then mean; the smaller
    rate on a tie), after widening the grid by factors of 2 until that rate lies strictly inside
    it. ``curves`` ({lr: curves per seed}) gains the runs of every rate added."""
    for widened in range(max_widenings + 1):
        rounds = {lr: [first_round_at(c, target, budget) for c in runs] for lr, runs in curves.items()}
        lr = min(rounds, key=lambda r: (np.median(rounds[r]), np.mean(rounds[r]), r))
        if min(curves) < lr < max(curves) or widened == max_widenings:
            break
        edge = min(curves) / 2 if lr == min(curves) else max(curves) * 2
        curves[edge] = run(edge)
    return lr, rounds


def table(results):
    rows, ratios = [], {}
    for spec, targets in TARGETS.items():
        for target in targets:
            base = results[f"{spec} | {target} | FedSGD"]["median_rounds"]
            for setting in SETTINGS:
                entry = results[f"{spec} | {target} | {setting}"]
                censored = entry["median_rounds"] >= entry["budget"]
                entry["speedup_vs_fedsgd"] = base / entry["median_rounds"]
                rows.append(f"| {spec} | {target:.2f} | {setting} | {entry['lr']:g} of "
                            f"{min(entry['grid']):g}..{max(entry['grid']):g} | "
                            f"{'>' if censored else ''}{entry['median_rounds']:.0f} | "
                            f"{entry['speedup_vs_fedsgd']:.1f}x |")
                if setting != "FedSGD" and not censored and target == max(targets):
                    ratios[spec] = max(ratios.get(spec, 0.0), entry["speedup_vs_fedsgd"])
    return rows, ratios


def stem():
    """Results file name: the model, and the number of clients when it is not the default 100."""
    return MODEL["name"] + ("" if MODEL["n_clients"] == N_CLIENTS else f"_{MODEL['n_clients']}clients")


def save(results, rows, ratios, n_seeds, summary):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(exist_ok=True)
    report = {"model": MODEL["name"], "n_clients": MODEL["n_clients"], "fraction_fit": FRACTION, "targets": TARGETS, "seeds": n_seeds,
              "results": results, "best_ratio": ratios, "table": rows, "summary": summary}
    (RESULTS / f"rounds_to_accuracy_{stem()}.json").write_text(json.dumps(report, indent=1))
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    for axis, (spec, targets) in zip(axes, TARGETS.items()):
        for setting in SETTINGS:
            curve = results[f"{spec} | {max(targets)} | {setting}"]["curve"]
            if curve is not None:
                axis.plot(range(1, len(curve)), curve[1:], label=setting, lw=1.2)
        for target in targets:
            axis.axhline(target, color="grey", ls="--", lw=1)
        axis.set(xscale="log", xlabel="communication round", ylabel="test accuracy",
                 title=f"{spec}, {MODEL['n_clients']} clients, C = 0.1 (seed 0, lr tuned for {max(targets)})", ylim=(0.5, 1.0))
    axes[1].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"rounds_to_accuracy_{stem()}.png", dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--model", choices=("softmax", "mlp"), default="mlp")
    parser.add_argument("--clients", type=int, default=N_CLIENTS,
                        help="fewer clients hold more data each: more local steps per round")
    args = parser.parse_args()
    MODEL["name"], MODEL["n_clients"] = args.model, args.clients
    threadpool_limits(1)
    results = sweep(args.seeds)
    rows, ratios = table(results)
    print("| partition | target | setting | lr of grid | median rounds | vs FedSGD |\n|---|---|---|---|---|---|")
    print("\n".join(rows))
    summary = summary_line(ratios, results)
    save(results, rows, ratios, args.seeds, summary)
    print(summary)


def summary_line(ratios, results) -> str:
    """The last line printed, also stored in the JSON as "summary"."""
    inside = sum(entry["inside_grid"] for entry in results.values())
    return (f"fedavg_vs_fedsgd_rounds_ratio_iid={ratios.get('iid', math.nan):.1f} "
            f"fedavg_vs_fedsgd_rounds_ratio_noniid={ratios.get('shards:2', math.nan):.1f} "
            f"rates_inside_grid={inside}/{len(results)}")


if __name__ == "__main__":
    main()
