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

``--dataset mnist1d`` is the paper's Table 2 at its own scale: MNIST-1D (Greydanus 2020) with
60,000 training samples, 100 clients of 600 (IID, or 2 label shards of 300 each), C = 0.1, an
MLP with 100 tanh units, FedSGD and the paper's grid E in {1, 5, 20} x B in {inf, 50, 10}
(E = 1, B = inf is FedSGD), one target per partition near FedAvg's plateau (see
``MNIST1D``). A run stops at its target, or once it has taken more rounds than the best rate
found so far for that setting needs on the median (see ``tuned_rate``); the chosen rate's
seeds always run to the target or the budget. Writes
benchmarks/results/rounds_to_accuracy_mnist1d.{json,png,md}.

    python benchmarks/rounds_to_accuracy.py [--model softmax|mlp] [--clients 100] [--seeds 3]
    python benchmarks/rounds_to_accuracy.py --dataset mnist1d
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import flcourse as fl
from flcourse.data import stratified_split
from flcourse.federated import ClientFailure, FedAvg, FedSGD, Server, make_clients

RESULTS = Path(__file__).resolve().parent / "results"
N_CLIENTS, FRACTION = 100, 0.1
TARGETS = {"iid": (0.92, 0.95), "shards:2": (0.85, 0.90)}
SETTINGS = {  # name: (E, B) for FedAvg; FedSGD is E = 1, B = inf
    "FedSGD": None, "FedAvg E=1 B=10": (1, 10), "FedAvg E=5 B=10": (5, 10),
    "FedAvg E=20 B=10": (20, 10), "FedAvg E=5 B=inf": (5, math.inf), "FedAvg E=20 B=inf": (20, math.inf),
}
LEARNING_RATES = {"FedSGD": (0.5, 1.0, 2.0, 4.0, 8.0, 16.0), "default": (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)}
BUDGET = {"FedSGD": 1500, "default": 200}


MODEL = {"name": "softmax", "n_clients": N_CLIENTS, "dataset": "digits"}

INF = math.inf
MNIST1D = {  # the paper's Table 2 grid on MNIST-1D; the targets: IID just below FedAvg's plateau in a
    # pilot (0.715 at round 50, 0.736 at 100); two shards 0.50 for compute, not near its plateau
    "n_hidden": 100,
    "targets": {"iid": (0.70,), "shards:2": (0.50,)},
    "settings": {"FedSGD": None, "FedAvg E=5 B=inf": (5, INF), "FedAvg E=20 B=inf": (20, INF),
                 "FedAvg E=1 B=50": (1, 50), "FedAvg E=5 B=50": (5, 50), "FedAvg E=20 B=50": (20, 50),
                 "FedAvg E=1 B=10": (1, 10), "FedAvg E=5 B=10": (5, 10), "FedAvg E=20 B=10": (20, 10)},
    "learning_rates": {"FedSGD": (1.0, 2.0, 4.0), "FedAvg E=5 B=inf": (1.0, 2.0, 4.0),
                       "FedAvg E=20 B=inf": (0.5, 1.0, 2.0), "FedAvg E=1 B=50": (0.1, 0.2, 0.4),
                       "FedAvg E=5 B=50": (0.05, 0.1, 0.2), "FedAvg E=20 B=50": (0.025, 0.05, 0.1),
                       "FedAvg E=1 B=10": (0.05, 0.1, 0.2), "FedAvg E=5 B=10": (0.05, 0.1, 0.2),
                       "FedAvg E=20 B=10": (0.025, 0.05, 0.1)},
    "budget": {"FedSGD": 1000, "FedAvg E=5 B=inf": 250, "FedAvg E=20 B=inf": 80, "FedAvg E=20 B=50": 80,
               "FedAvg E=20 B=10": 80, "FedAvg E=5 B=50": 150, "FedAvg E=5 B=10": 150, "default": 300},
}


class Stop(Exception):
    """Raised by a run's callback to end it: the target is reached, or the run is over its cap."""


def stratified_resplit(data, n_test: int, seed=0):
    """``data`` with its train and test samples pooled and split again, stratified by label
    (:func:`flcourse.data.stratified_split`, scikit-learn's draw), ``n_test`` for test. MNIST-1D
    makes exactly 7,000 samples of each digit, so a stratified 60,000 / 10,000 split holds 6,000
    of each for training: every label shard of ``make_partition("shards:2", ...)`` is then 300
    samples and every client holds 600, as in the paper (and the engine trains clients of equal
    size in one stack)."""
    X = np.concatenate([data.X_train, data.X_test])
    y = np.concatenate([data.y_train, data.y_test])
    train, test = stratified_split(y, n_test / len(y), seed, "stratified_resplit")
    return dataclasses.replace(data, X_train=X[train], y_train=y[train], X_test=X[test], y_test=y[test])


def load_data():
    if MODEL["dataset"] == "mnist1d":
        from flcourse.data.mnist1d import load_mnist1d

        return stratified_resplit(load_mnist1d(n_train=60_000, n_test=10_000, seed=0, verbose=False), 10_000)
    return fl.load_digits(seed=0)


def experiment():
    """The targets, settings, grids and budgets of the chosen dataset."""
    if MODEL["dataset"] == "mnist1d":
        return MNIST1D["targets"], MNIST1D["settings"], MNIST1D["learning_rates"], MNIST1D["budget"]
    return TARGETS, SETTINGS, LEARNING_RATES, BUDGET


def make_model(data):
    if MODEL["dataset"] == "mnist1d":
        return fl.MLP(n_features=data.n_features, n_hidden=MNIST1D["n_hidden"], n_classes=data.n_classes)
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
        except (FloatingPointError, ClientFailure):  # a diverging rate: its update is refused
            return None


def run_to_target(setting, lr, partition_spec, seed, data, target, limit):
    """(test accuracy per round, how it ended) of one MNIST-1D run that stops at ``target`` or
    after ``limit`` rounds; it ends "target", "limit" or "diverged"."""
    model = make_model(data)
    partition = fl.make_partition(partition_spec, data.y_train, MODEL["n_clients"], seed=seed)
    clients = make_clients(model, data.X_train, data.y_train, partition)
    epochs_batch = MNIST1D["settings"][setting]
    strategy = FedSGD(fraction_fit=FRACTION, lr=lr) if epochs_batch is None else \
        FedAvg(fraction_fit=FRACTION, local_epochs=epochs_batch[0], batch_size=epochs_batch[1], lr=lr)
    params = model.init_params(seed)
    curve = [accuracy(model, params, data)]

    def record(server_round, server):  # test accuracy alone: one forward pass, not two
        curve.append(accuracy(model, server.params_, data))
        if curve[-1] >= target or server_round >= limit:
            raise Stop

    with np.errstate(over="ignore", invalid="ignore"):
        try:
            Server(model, strategy, clients, seed=seed).run(limit, params=params, callback=record)
        except Stop:
            pass
        except ClientFailure:  # a diverging rate: its update is refused
            return curve, "diverged"
    return curve, "target" if curve[-1] >= target else "limit"


def accuracy(model, params, data) -> float:
    return float(np.mean(model.predict_unchecked(params, data.X_test) == data.y_test))


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


def sweep_to_target(n_seeds, partial=None):
    """Every (partition, setting) of MNIST1D: rates tuned with runs that stop early. With
    ``partial`` (a JSON file), the settings done are saved there one by one and a sweep
    started again skips them."""
    data, results = load_data(), {}
    if partial is not None and Path(partial).exists():
        results = json.loads(Path(partial).read_text())
    targets, settings, grids, budgets = experiment()
    for spec, (target,) in targets.items():
        for setting in settings:
            if f"{spec} | {target} | {setting}" in results:
                continue
            started = time.perf_counter()
            budget = budgets.get(setting, budgets["default"])
            lr, curves, ends = tuned_rate(setting, spec, target, budget, n_seeds, data, grids[setting])
            rounds = [first_round_at(c, target, budget) for c in curves[lr]]
            results[f"{spec} | {target} | {setting}"] = {
                "lr": lr, "grid": sorted(curves), "rounds": rounds,
                "median_rounds": float(np.median(rounds)), "budget": budget,
                "inside_grid": min(curves) < lr < max(curves), "curve": curves[lr][0],
                "rounds_per_rate": {str(r): [first_round_at(c, target, budget) for c in cs]
                                    for r, cs in sorted(curves.items())},
                "ends_per_rate": {str(r): e for r, e in sorted(ends.items())},
                "seconds": time.perf_counter() - started}
            if partial is not None:
                Path(partial).write_text(json.dumps(results))
            print(f"{spec:9s} target {target:.2f} {setting:18s} lr={lr:<7g} of {min(curves):g}..{max(curves):g}"
                  f" rounds per seed {rounds}  ({time.perf_counter() - started:.0f} s)", flush=True)
    return results


def tuned_rate(setting, spec, target, budget, n_seeds, data, grid):
    """(chosen rate, {lr: curves per seed}, {lr: ends per seed}): the grid's middle rate run
    first, each later run capped at the median rounds of the best rate so far, and a rate's
    remaining seeds skipped once too many are capped for its median to win (an odd number of
    seeds); the grid widened until the best rate is inside it; the chosen rate's capped or
    skipped seeds then run to the target or the budget. Capping changes no choice made on the
    median; on a tie of medians, a capped seed counts as the budget in the mean."""
    curves, ends = {}, {}

    def run(lr, seeds=range(n_seeds), cap=None):
        cap = leader_cap(curves, target, budget) if cap is None else cap
        curves.setdefault(lr, [None] * n_seeds), ends.setdefault(lr, ["skipped"] * n_seeds)
        for seed in seeds:
            curves[lr][seed], ends[lr][seed] = run_to_target(setting, lr, spec, seed, data, target, cap)
            if cap < budget and ends[lr].count("limit") > (n_seeds - 1) // 2:
                break  # its median is over the cap: it cannot win
        return curves[lr]

    middle = sorted(grid)[len(grid) // 2]
    for lr in [middle] + [r for r in sorted(grid) if r != middle]:
        run(lr)
    lr, _ = widened_choice(curves, run, target, budget)
    unfinished = [seed for seed, (curve, end) in enumerate(zip(curves[lr], ends[lr]))
                  if end == "skipped" or (end == "limit" and len(curve) - 1 < budget)]
    run(lr, unfinished, cap=budget)
    return lr, curves, ends


def leader_cap(curves, target, budget) -> int:
    """The median rounds of the best rate so far (the budget before any)."""
    if not curves:
        return budget
    rounds = {lr: [first_round_at(c, target, budget) for c in runs] for lr, runs in curves.items()}
    best = min(rounds, key=lambda r: (np.median(rounds[r]), np.mean(rounds[r]), r))
    return int(np.ceil(np.median(rounds[best])))


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
    all_targets, settings, _, _ = experiment()
    for spec, targets in all_targets.items():
        for target in targets:
            base = results[f"{spec} | {target} | FedSGD"]["median_rounds"]
            for setting in settings:
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
    """Results file name: the model (or mnist1d), and the number of clients when not 100."""
    name = "mnist1d" if MODEL["dataset"] == "mnist1d" else MODEL["name"]
    return name + ("" if MODEL["n_clients"] == N_CLIENTS else f"_{MODEL['n_clients']}clients")


def save(results, rows, ratios, n_seeds, summary, extra=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(exist_ok=True)
    all_targets, settings, _, _ = experiment()
    report = {"model": MODEL["name"], "n_clients": MODEL["n_clients"], "fraction_fit": FRACTION, "targets": all_targets, "seeds": n_seeds,
              "results": results, "best_ratio": ratios, "table": rows, "summary": summary}
    if MODEL["dataset"] == "mnist1d":
        report.update(dataset="mnist1d", model="mlp", n_hidden=MNIST1D["n_hidden"], **(extra or {}))
    (RESULTS / f"rounds_to_accuracy_{stem()}.json").write_text(json.dumps(report, indent=1))
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    for axis, (spec, targets) in zip(axes, all_targets.items()):
        for setting in settings:
            curve = results[f"{spec} | {max(targets)} | {setting}"]["curve"]
            if curve is not None:
                axis.plot(range(1, len(curve)), curve[1:], label=setting, lw=1.2)
        for target in targets:
            axis.axhline(target, color="grey", ls="--", lw=1)
        low = 0.3 if MODEL["dataset"] == "mnist1d" else 0.5
        axis.set(xscale="log", xlabel="communication round", ylabel="test accuracy",
                 title=f"{spec}, {MODEL['n_clients']} clients, C = 0.1 (seed 0, lr tuned for {max(targets)})",
                 ylim=(low, 1.0))
    axes[1].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"rounds_to_accuracy_{stem()}.png", dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--model", choices=("softmax", "mlp"), default="mlp")
    parser.add_argument("--clients", type=int, default=N_CLIENTS,
                        help="fewer clients hold more data each: more local steps per round")
    parser.add_argument("--dataset", choices=("digits", "mnist1d"), default="digits",
                        help="mnist1d: the paper's Table 2 grid at its scale (the MLP, 100 clients)")
    parser.add_argument("--partial", help="mnist1d: save each setting's result to this JSON file, "
                                          "and skip those it holds (a sweep resumed)")
    args = parser.parse_args()
    MODEL["name"], MODEL["n_clients"], MODEL["dataset"] = args.model, args.clients, args.dataset
    threadpool_limits(1)
    started = time.perf_counter()
    results = sweep_to_target(args.seeds, args.partial) if args.dataset == "mnist1d" else sweep(args.seeds)
    rows, ratios = table(results)
    print("| partition | target | setting | lr of grid | median rounds | vs FedSGD |\n|---|---|---|---|---|---|")
    print("\n".join(rows))
    summary = summary_line(ratios, results)
    extra = None
    if args.dataset == "mnist1d":
        markdown = paper_table(results)
        (RESULTS / f"rounds_to_accuracy_{stem()}.md").write_text(markdown + "\n")
        print(markdown)
        extra = {"paper_table": paper_rows(results), "markdown": markdown,
                 "run_seconds": time.perf_counter() - started}
    save(results, rows, ratios, args.seeds, summary, extra)
    print(summary)


def paper_rows(results) -> list[dict]:
    """One row per setting, IID and non-IID side by side: median rounds to the target over the
    seeds, their range, the chosen rate and the speed-up over FedSGD."""
    targets, settings, _, _ = experiment()
    rows = []
    for setting, epochs_batch in settings.items():
        row = {"setting": setting, "E": 1 if epochs_batch is None else epochs_batch[0],
               "B": "inf" if epochs_batch is None or epochs_batch[1] == INF else epochs_batch[1]}
        for spec, (target,) in targets.items():
            entry = results[f"{spec} | {target} | {setting}"]
            base = results[f"{spec} | {target} | FedSGD"]["median_rounds"]
            row[spec] = {"target": target, "median_rounds": entry["median_rounds"], "rounds": entry["rounds"],
                         "censored": entry["median_rounds"] >= entry["budget"], "lr": entry["lr"],
                         "grid": entry["grid"], "inside_grid": entry["inside_grid"],
                         "speedup_vs_fedsgd": base / entry["median_rounds"]}
        rows.append(row)
    return rows


def paper_table(results) -> str:
    """The markdown form of :func:`paper_rows`."""
    targets = experiment()[0]
    head = " | ".join(f"{spec} to {target:.2f}: rounds (range) | lr (grid) | vs FedSGD"
                      for spec, (target,) in targets.items())
    lines = [f"| E | B | {head} |", "|---|---|" + "---|---|---|" * len(targets)]
    for row in paper_rows(results):
        cells = []
        for spec in targets:
            cell = row[spec]
            more = ">" if cell["censored"] else ""
            cells.append(f"{more}{cell['median_rounds']:.0f} ({min(cell['rounds'])}–{max(cell['rounds'])}) | "
                         f"{cell['lr']:g} ({min(cell['grid']):g}–{max(cell['grid']):g}) | "
                         f"{cell['speedup_vs_fedsgd']:.1f}×")
        name = "FedSGD" if row["setting"] == "FedSGD" else ""
        lines.append(f"| {row['E']}{' (' + name + ')' if name else ''} | {'∞' if row['B'] == 'inf' else row['B']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_line(ratios, results) -> str:
    """The last line printed, also stored in the JSON as "summary"."""
    inside = sum(entry["inside_grid"] for entry in results.values())
    return (f"fedavg_vs_fedsgd_rounds_ratio_iid={ratios.get('iid', math.nan):.1f} "
            f"fedavg_vs_fedsgd_rounds_ratio_noniid={ratios.get('shards:2', math.nan):.1f} "
            f"rates_inside_grid={inside}/{len(results)}")


if __name__ == "__main__":
    main()
