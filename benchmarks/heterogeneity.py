"""FedAvg, FedAvgM, FedProx and SCAFFOLD under four degrees of data heterogeneity, and what each
costs per round in our engine against FedAvg.

The table: softmax regression on digits, 100 clients, C = 0.1, E = 5, B = 10, 100 rounds, each
strategy on IID, Dirichlet 0.5, Dirichlet 0.1 and 2-label-shard partitions, 3 seeds (a seed
fixes the partition and the server: selection and minibatches). Hyper-parameters are tuned per
partition on a tuning seed (100) that is not reported, by the mean test accuracy over all
rounds (the area under the curve, which rewards both speed and the level reached):

  FedAvg    lr from (0.3, 1, 3);
  FedAvgM   server momentum 0.9; server_lr 1 with lr from (0.03, 0.1, 0.3), or server_lr
            0.1 (= 1 - momentum: FedAvg's step size) with lr from (0.3, 1, 3);
  FedProx   mu from (0.01, 0.1, 1) and lr from (lr/3, lr, 3 lr) around FedAvg's chosen lr, jointly
            (lr mu >= 2 makes the proximal pull itself unstable, so mu is never judged at one lr);
  SCAFFOLD  server_lr 1 (option II), lr from (0.3, 1, 3).

A grid whose best rate is at one of its ends is widened by factors of 3 until the best rate lies
strictly inside it (mu is not widened). The target accuracy is FedAvg's final accuracy on IID
(tuning seed, its chosen rate) rounded down to a whole point, less two points. Reported per cell:
final accuracy (the mean over the last 10 rounds), mean ± std over seeds, and rounds to the
target, median and range over seeds (the budget, shown as ">", when a seed never reaches it).

Beside it: FedProx against FedAvg on the FedProx paper's Synthetic(1,1) with 90% stragglers
(benchmarks/fedprox_synthetic.py; 200 rounds, 3 seeds), and the time of one round of each
strategy in our engine on the same federation with the same (E, B) and the same selected
clients, against FedAvg's and against a plain-numpy floor written here, on the IID federation
(equal clients: one vectorised stack) and on Dirichlet 0.5 (unequal clients: each trains
alone): process CPU time per round, the median over 15 repetitions (after a warm-up) of the
ratio to FedAvg within each repetition (see time_rounds). The reported ratio is the larger of
the two federations'. Writes benchmarks/results/heterogeneity.{json,png}; the last line is
``fedprox_gain_synthetic11_stragglers90=<points> scaffold_vs_fedavg_rounds_ratio_dirichlet0.1=<x.x>
round_time_ratio_fedprox=<x.xx> round_time_ratio_scaffold=<x.xx>``.

    python benchmarks/heterogeneity.py [--quick] [--out DIR]
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import fedprox_synthetic
from numpy_floor import softmax_grad

RESULTS = Path(__file__).resolve().parent / "results"
SPLITS = ("iid", "dirichlet:0.5", "dirichlet:0.1", "shards:2")
STRATEGIES = ("FedAvg", "FedAvgM", "FedProx", "SCAFFOLD")
SETTINGS = {"dataset": "digits", "model": "softmax", "n_clients": 100, "fraction_fit": 0.1, "local_epochs": 5,
            "batch_size": 10, "n_rounds": 100, "seeds": [0, 1, 2], "tuning_seed": 100, "lr_grid": [0.3, 1.0, 3.0],
            "mu_grid": [0.01, 0.1, 1.0], "server_momentum": 0.9, "widen_factor": 3.0, "max_widenings": 3,
            "last_rounds": 10, "timing": {"rounds": 8, "repeats": 15, "lr": 0.1, "mu": 0.1},
            "synthetic": {"dataset": "Synthetic(1,1)", "stragglers": 0.9, "seeds": [0, 1, 2], "n_rounds": 200,
                          "local_epochs": 20}}
QUICK = {"n_clients": 20, "n_rounds": 3, "seeds": [0], "lr_grid": [1.0], "mu_grid": [0.1], "max_widenings": 0,
         "timing": {"rounds": 3, "repeats": 1, "lr": 0.1, "mu": 0.1},
         "synthetic": {"dataset": "Synthetic(1,1)", "stragglers": 0.9, "seeds": [0], "n_rounds": 2,
                       "local_epochs": 2}}
S = dict(SETTINGS)  # the settings of this run (QUICK applied by --quick)


# ---- one run ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def load():
    import flcourse as fl

    return fl.load_digits(seed=0)


def make_strategy(name: str, hyper: dict, fraction_fit=None):
    from flcourse.federated import FedAvg, FedAvgM, FedProx, Scaffold

    common = {"fraction_fit": fraction_fit or S["fraction_fit"], "local_epochs": S["local_epochs"],
              "batch_size": S["batch_size"], "lr": hyper["lr"]}
    if name == "FedAvg":
        return FedAvg(**common)
    if name == "FedAvgM":
        return FedAvgM(server_lr=hyper["server_lr"], server_momentum=S["server_momentum"], **common)
    if name == "FedProx":
        return FedProx(mu=hyper["mu"], **common)
    return Scaffold(server_lr=1.0, **common)


@functools.lru_cache(maxsize=None)
def partition_of(split: str, seed: int, n_clients: int) -> tuple:
    """The digits training set split among ``n_clients`` (cached: Dirichlet 0.1 redraws until
    every client holds a sample, which takes a second)."""
    import flcourse as fl

    return tuple(fl.make_partition(split, load().y_train, n_clients, seed=seed))


def run_curve(name: str, hyper: dict, split: str, seed: int, data) -> list | None:
    """Test accuracy after every round (round 0: the start); None if the run diverged."""
    import flcourse as fl
    from flcourse.federated import ClientFailure, InvalidUpdateError, Server, make_clients

    model = fl.SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)
    partition = list(partition_of(split, seed, S["n_clients"]))
    clients = make_clients(model, data.X_train, data.y_train, partition)
    server = Server(model, make_strategy(name, hyper), clients, test_set=(data.X_test, data.y_test), seed=seed)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            return server.run(S["n_rounds"], params=model.init_params()).history_["test_accuracy"]
        except (ClientFailure, InvalidUpdateError, FloatingPointError):  # diverged: its update refused
            return None


def area(curve) -> float:
    """The tuning score: mean test accuracy over the rounds (0 for a diverged run)."""
    return 0.0 if curve is None else float(np.mean(curve[1:]))


def final(curve) -> float:
    return math.nan if curve is None else float(np.mean(curve[-S["last_rounds"]:]))


def rounds_to(curve, target: float) -> int:
    """The first round whose test accuracy reaches ``target``; the budget if none does."""
    reached = [] if curve is None else np.flatnonzero(np.asarray(curve) >= target)
    return int(reached[0]) if len(reached) else S["n_rounds"]


# ---- tuning -------------------------------------------------------------------------------

class Tuner:
    """Scores hyper-parameters of one partition on the tuning seed, each run once."""

    def __init__(self, split: str, data, progress):
        self.split, self.data, self.progress, self.scores, self.curves = split, data, progress, {}, {}

    def score(self, name: str, hyper: dict) -> float:
        key = (name, tuple(sorted(hyper.items())))
        if key not in self.scores:
            curve = run_curve(name, hyper, self.split, S["tuning_seed"], self.data)
            self.scores[key], self.curves[key] = area(curve), curve
            self.progress.update(1)
        return self.scores[key]

    def widened(self, name: str, fixed: dict, grid) -> dict:
        """The best lr of ``grid`` (others fixed), the grid widened until that lr is inside it."""
        grid = sorted(grid)
        for widened in range(S["max_widenings"] + 1):
            best = max(grid, key=lambda lr: (self.score(name, {**fixed, "lr": lr}), -lr))
            inside = grid[0] < best < grid[-1]
            if inside or widened == S["max_widenings"] or len(grid) == 1:
                break
            self.progress.total += 1
            grid = [grid[0] / S["widen_factor"], *grid] if best == grid[0] else [*grid, grid[-1] * S["widen_factor"]]
        return {"hyper": {**fixed, "lr": best}, "score": self.score(name, {**fixed, "lr": best}),
                "lr_grid": grid, "inside_grid": inside}

    def tune(self, name: str, fedavg_lr: float | None) -> dict:
        grid = S["lr_grid"]
        if name in ("FedAvg", "SCAFFOLD"):
            return self.widened(name, {}, grid)
        if name == "FedAvgM":
            families = [self.widened(name, {"server_lr": 1.0}, [lr / 10 for lr in grid]),
                        self.widened(name, {"server_lr": round(1 - S["server_momentum"], 10)}, grid)]
            return dict(max(families, key=lambda f: f["score"]), families=families)
        lr_grid = [fedavg_lr] if len(grid) == 1 else [fedavg_lr / S["widen_factor"], fedavg_lr, fedavg_lr * S["widen_factor"]]
        scores = {(mu, lr): self.score(name, {"mu": mu, "lr": lr}) for mu in S["mu_grid"] for lr in lr_grid}
        mu = max(scores, key=lambda key: (scores[key], key[0], -key[1]))[0]  # ties: the larger mu
        return dict(self.widened(name, {"mu": mu}, lr_grid),
                    mu_lr_scores={f"mu={m:g} lr={lr:.3g}": s for (m, lr), s in scores.items()})


def n_tuning_runs() -> int:
    n_lr = len(S["lr_grid"])
    return len(SPLITS) * (n_lr + 2 * n_lr + len(S["mu_grid"]) * n_lr + n_lr)


# ---- the table ----------------------------------------------------------------------------

def sweep(data) -> tuple[dict, float]:
    from tqdm.auto import tqdm

    evaluations = len(SPLITS) * len(STRATEGIES) * len(S["seeds"])
    results, target = {}, None
    with tqdm(total=n_tuning_runs() + evaluations, desc="heterogeneity runs", unit="run") as progress:
        for split in SPLITS:
            tuner = Tuner(split, data, progress)
            chosen = {"FedAvg": tuner.tune("FedAvg", None)}
            for name in STRATEGIES[1:]:
                chosen[name] = tuner.tune(name, chosen["FedAvg"]["hyper"]["lr"])
            if target is None:  # IID comes first: the target is set before anything is evaluated
                fedavg_iid = tuner.curves[("FedAvg", tuple(sorted(chosen["FedAvg"]["hyper"].items())))]
                target = round(math.floor(100 * final(fedavg_iid)) / 100 - 0.02, 2)
            for name in STRATEGIES:
                curves = [run_curve(name, chosen[name]["hyper"], split, seed, data) for seed in S["seeds"]]
                progress.update(len(curves))
                results[f"{split} | {name}"] = cell_entry(split, name, chosen[name], curves, target)
    return results, target


def cell_entry(split, name, chosen, curves, target) -> dict:
    finals = [final(c) for c in curves]
    rounds = [rounds_to(c, target) for c in curves]
    return {"split": split, "strategy": name, "hyper": chosen["hyper"], "tuning": chosen,
            "final_accuracy": finals, "final_accuracy_mean": float(np.mean(finals)),
            "final_accuracy_std": float(np.std(finals)), "rounds_to_target": rounds,
            "median_rounds": float(np.median(rounds)), "min_rounds": min(rounds), "max_rounds": max(rounds),
            "censored": [r >= S["n_rounds"] and (c is None or max(c) < target) for r, c in zip(rounds, curves)],
            "curves": curves}


def median_censored(entry) -> bool:
    """Whether the median of the rounds to target is the budget: most seeds never reached it."""
    return 2 * sum(entry["censored"]) > len(entry["censored"])


def rounds_text(entry) -> str:
    median = f"{'>' if median_censored(entry) else ''}{entry['median_rounds']:.0f}"
    high = f"{'>' if any(entry['censored']) else ''}{entry['max_rounds']}"
    return f"{median} ({entry['min_rounds']}–{high})"


def hyper_text(entry) -> str:
    tuning, hyper = entry["tuning"], entry["hyper"]
    text = f"lr={hyper['lr']:.3g} of {min(tuning['lr_grid']):.3g}..{max(tuning['lr_grid']):.3g}"
    extras = [f"{k}={hyper[k]:g}" for k in ("mu", "server_lr") if k in hyper]
    return " ".join([text, *extras]) + ("" if tuning["inside_grid"] else " (edge)")


def table(results) -> list[str]:
    rows = ["| partition | strategy | chosen (tuning seed) | final accuracy | rounds to target |",
            "|---|---|---|---|---|"]
    for entry in results.values():
        rows.append(f"| {entry['split']} | {entry['strategy']} | {hyper_text(entry)} | "
                    f"{entry['final_accuracy_mean']:.3f} ± {entry['final_accuracy_std']:.3f} | {rounds_text(entry)} |")
    return rows


def scaffold_ratio(results) -> dict:
    """FedAvg's median rounds to target / SCAFFOLD's on Dirichlet 0.1, and what bounds it."""
    fedavg, scaffold = results["dirichlet:0.1 | FedAvg"], results["dirichlet:0.1 | SCAFFOLD"]
    fedavg_censored, scaffold_censored = median_censored(fedavg), median_censored(scaffold)
    kind = "unknown (neither reaches the target)" if fedavg_censored and scaffold_censored else \
        "lower bound (FedAvg never reaches the target)" if fedavg_censored else \
        "upper bound (SCAFFOLD never reaches the target)" if scaffold_censored else "exact"
    return {"ratio": fedavg["median_rounds"] / scaffold["median_rounds"], "kind": kind,
            "fedavg_median_rounds": fedavg["median_rounds"], "scaffold_median_rounds": scaffold["median_rounds"]}


# ---- per-round time -----------------------------------------------------------------------

def time_rounds(split: str, data) -> dict:
    """Per strategy: the time of one round, ours and the numpy floor, and its ratio to FedAvg's.

    Each repetition runs every strategy for a few rounds, in an order rotated from one
    repetition to the next; a round's time is the process CPU time between the ends of two
    consecutive rounds (wall time is recorded too: on a shared machine it also counts the other
    processes' turns). A repetition's figure is its median round; a strategy's ratio to FedAvg is
    the median over repetitions of the ratio within each repetition, so that a change of load
    between repetitions cancels out."""
    timing = S["timing"]
    partition = list(partition_of(split, 0, S["n_clients"]))
    hyper = {"lr": timing["lr"], "mu": timing["mu"], "server_lr": 1.0}
    floors = ("FedAvg", "FedProx", "SCAFFOLD")
    runs = {"ours": {name: [] for name in STRATEGIES}, "floor": {name: [] for name in floors}}
    for repeat in range(timing["repeats"] + 1):  # the first pass warms up, and is dropped
        shift = repeat % len(STRATEGIES)
        for name in STRATEGIES[shift:] + STRATEGIES[:shift]:
            times = our_rounds(name, data, partition, hyper, timing["rounds"])
            if repeat:
                runs["ours"][name].append(times)
        for name in floors[shift % 3:] + floors[:shift % 3]:
            times = floor_rounds(name, data, partition, hyper, timing["rounds"])
            if repeat:
                runs["floor"][name].append(times)
    return {"split": split, **{kind: summarise_times(by_name) for kind, by_name in runs.items()},
            "ours_vs_floor_cpu": {name: float(np.median([ours["cpu"] / floor["cpu"] for ours, floor in
                                                          zip(runs["ours"][name], runs["floor"][name])]))
                                  for name in floors},
            "ratio_vs_fedavg": summarise_times(runs["ours"])["ratio_vs_fedavg_cpu"]}


def summarise_times(by_name: dict) -> dict:
    """Median over repetitions of each strategy's round time and of its ratio to FedAvg's."""
    summary = {}
    for clock in ("cpu", "wall"):
        summary[f"seconds_{clock}"] = {name: float(np.median([r[clock] for r in reps])) for name, reps in by_name.items()}
        summary[f"ratio_vs_fedavg_{clock}"] = {
            name: float(np.median([r[clock] / base[clock] for r, base in zip(reps, by_name["FedAvg"])]))
            for name, reps in by_name.items()}
        summary[f"repetitions_{clock}"] = {name: [r[clock] for r in reps] for name, reps in by_name.items()}
    return summary


def our_rounds(name, data, partition, hyper, n_rounds) -> dict:
    """The median round of ``n_rounds`` of our engine (the first dropped), CPU and wall seconds."""
    import flcourse as fl
    from flcourse.federated import Server, make_clients

    model = fl.SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)
    clients = make_clients(model, data.X_train, data.y_train, partition)
    ends = []
    Server(model, make_strategy(name, hyper), clients, seed=0).run(
        n_rounds, callback=lambda server_round, server: ends.append((time.process_time(), time.perf_counter())))
    return median_round(ends)


def median_round(ends) -> dict:
    """Median CPU and wall seconds between consecutive round ends."""
    cpu, wall = np.diff(np.array(ends), axis=0).T
    return {"cpu": float(np.median(cpu)), "wall": float(np.median(wall))}


def floor_rounds(name, data, partition, hyper, n_rounds) -> list:
    """The same rounds as plain numpy loops (FedAvg, FedProx, SCAFFOLD option II): the median round."""
    d, c = data.n_features, data.n_classes
    shards = [(data.X_train[p], data.y_train[p]) for p in partition]
    W, b, rng = np.zeros((d, c)), np.zeros(c), np.random.default_rng(0)
    control, client_controls = (np.zeros((d, c)), np.zeros(c)), {}
    ends, lr, mu, B = [], hyper["lr"], hyper["mu"], S["batch_size"]  # as ours: from the end of round 1
    for _ in range(n_rounds):
        chosen = rng.choice(len(shards), size=max(1, round(S["fraction_fit"] * len(shards))), replace=False)
        results = []
        for k in chosen:
            X_k, y_k = shards[k]
            W_k, b_k, steps = W.copy(), b.copy(), 0
            c_k = client_controls.get(k, (np.zeros((d, c)), np.zeros(c)))
            for _ in range(S["local_epochs"]):
                order = rng.permutation(len(y_k))
                for first in range(0, len(y_k), B):
                    batch = order[first:first + B]
                    g_W, g_b = softmax_grad(W_k, b_k, X_k[batch], y_k[batch])
                    if name == "FedProx":
                        g_W, g_b = g_W + mu * (W_k - W), g_b + mu * (b_k - b)
                    elif name == "SCAFFOLD":
                        g_W, g_b = g_W + control[0] - c_k[0], g_b + control[1] - c_k[1]
                    W_k -= lr * g_W
                    b_k -= lr * g_b
                    steps += 1
            if name == "SCAFFOLD":
                new = tuple(c_k[i] - control[i] + (old - w) / (steps * lr) for i, (old, w) in enumerate(((W, W_k), (b, b_k))))
                results.append((W_k, b_k, len(y_k), (new[0] - c_k[0], new[1] - c_k[1])))
                client_controls[k] = new
            else:
                results.append((W_k, b_k, len(y_k), None))
        if name == "SCAFFOLD":  # x + mean(y_i - x); c + |S|/N mean(delta c_i)
            W, b = W + np.mean([r[0] - W for r in results], 0), b + np.mean([r[1] - b for r in results], 0)
            share = len(results) / len(shards)
            control = (control[0] + share * np.mean([r[3][0] for r in results], 0),
                       control[1] + share * np.mean([r[3][1] for r in results], 0))
        else:
            sizes = [r[2] for r in results]
            W, b = np.average([r[0] for r in results], 0, sizes), np.average([r[1] for r in results], 0, sizes)
        ends.append((time.process_time(), time.perf_counter()))
    return median_round(ends)


# ---- FedProx on Synthetic(1,1) -------------------------------------------------------------

def synthetic_cell() -> dict:
    """FedAvg (drops stragglers), FedProx mu=0 and mu=1 on the paper's setting; the gains."""
    from tqdm.auto import tqdm

    spec = S["synthetic"]
    methods = len(fedprox_synthetic.METHODS)
    with tqdm(total=methods * len(spec["seeds"]), desc=f"{spec['dataset']} {spec['stragglers']:.0%} stragglers",
              unit="run") as progress:
        runs = fedprox_synthetic.cell(spec["dataset"], spec["stragglers"], spec["seeds"], spec["n_rounds"],
                                      spec["local_epochs"], progress)
    return {**spec, "settings": dict(fedprox_synthetic.PAPER, n_rounds=spec["n_rounds"],
                                     local_epochs=spec["local_epochs"]),
            "runs": runs, "gain": fedprox_synthetic.gains(runs), "paper_claim": fedprox_synthetic.PAPER_CLAIM}


# ---- report ---------------------------------------------------------------------------------

def plot(report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = dict(zip(STRATEGIES, ("tab:blue", "tab:purple", "tab:green", "tab:red")))
    results, target = report["results"], report["target_accuracy"]
    fig, axes = plt.subplots(2, 4, figsize=(17, 7.5))
    for axis, split in zip(axes[0], SPLITS):
        for name in STRATEGIES:
            curves = [c for c in results[f"{split} | {name}"]["curves"] if c is not None]
            if curves:
                axis.plot(np.mean(curves, axis=0), color=colours[name], lw=1.1, label=name)
        axis.axhline(target, color="grey", ls="--", lw=0.8)
        axis.set(title=f"{split} (mean over seeds)", xlabel="round", ylabel="test accuracy", ylim=(0.7, 1.0))
    axes[0, 0].legend(frameon=False, fontsize=8)
    width, x = 0.2, np.arange(len(SPLITS))
    for i, name in enumerate(STRATEGIES):
        entries = [results[f"{split} | {name}"] for split in SPLITS]
        axes[1, 0].bar(x + i * width, [e["final_accuracy_mean"] for e in entries], width,
                       yerr=[e["final_accuracy_std"] for e in entries], color=colours[name], label=name)
        axes[1, 1].bar(x + i * width, [e["median_rounds"] for e in entries], width, color=colours[name])
    for axis, title in ((axes[1, 0], "final accuracy (last 10 rounds)"), (axes[1, 1], f"median rounds to {target:.2f}")):
        axis.set_xticks(x + 1.5 * width, SPLITS, fontsize=8)
        axis.set_title(title)
    axes[1, 0].set_ylim(0.8, 1.0)
    axes[1, 1].axhline(S["n_rounds"], color="grey", ls=":", lw=0.8)
    for j, timing in enumerate(report["round_time"].values()):
        ratios = timing["ratio_vs_fedavg"]
        axes[1, 2].bar(np.arange(len(STRATEGIES)) + j * 0.4, [ratios[n] for n in STRATEGIES], 0.4,
                       label=f"{timing['split']}", color=("tab:gray", "tab:olive")[j])
    axes[1, 2].axhline(1.3, color="red", ls="--", lw=0.8)
    axes[1, 2].set_xticks(np.arange(len(STRATEGIES)) + 0.2, STRATEGIES, fontsize=8)
    axes[1, 2].set(title="round CPU time / FedAvg's (our engine)")
    axes[1, 2].legend(frameon=False, fontsize=8)
    synthetic = report["synthetic"]
    for method in fedprox_synthetic.METHODS:
        curves = np.array([r["test_accuracy"] for r in synthetic["runs"][method]])
        axes[1, 3].plot(curves.mean(axis=0), lw=1.1, label=method)
    axes[1, 3].set(title=f"{synthetic['dataset']}, {synthetic['stragglers']:.0%} stragglers", xlabel="round",
                   ylabel="test accuracy")
    axes[1, 3].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def summary_line(report) -> str:
    """The last line printed, also stored in the JSON as "summary"."""
    ratios = report["round_time_ratio"]
    return (f"fedprox_gain_synthetic11_stragglers90={report['synthetic']['gain']['vs_fedavg_points_mean']:.1f} "
            f"scaffold_vs_fedavg_rounds_ratio_dirichlet0.1={report['scaffold_vs_fedavg']['ratio']:.1f} "
            f"round_time_ratio_fedprox={ratios['FedProx']:.2f} round_time_ratio_scaffold={ratios['SCAFFOLD']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds (tiny grids and runs)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and the plot")
    args = parser.parse_args()
    S.update(QUICK if args.quick else {})
    threadpool_limits(1)
    started, data = time.perf_counter(), load()
    results, target = sweep(data)
    scaffold = scaffold_ratio(results)
    round_time = {split: time_rounds(split, data) for split in ("iid", "dirichlet:0.5")}
    worst = {name: max(t["ratio_vs_fedavg"][name] for t in round_time.values()) for name in STRATEGIES}
    synthetic = synthetic_cell()
    report = {"settings": S, "target_accuracy": target, "target_rule": "FedAvg IID final accuracy (tuning seed), rounded down to a point, less two points",
              "results": results, "table": table(results), "scaffold_vs_fedavg": scaffold,
              "round_time": round_time, "round_time_ratio": worst, "synthetic": synthetic,
              "environment": fedprox_synthetic.environment()}
    print("\n".join(report["table"]))
    print(f"target accuracy {target:.2f}; SCAFFOLD vs FedAvg on Dirichlet 0.1: {scaffold['ratio']:.2f}x ({scaffold['kind']})")
    for timing in round_time.values():
        ours, floor = timing["ours"], timing["floor"]
        print(f"round CPU time on {timing['split']}: ours " + ", ".join(
            f"{n} {1e3 * ours['seconds_cpu'][n]:.1f} ms ({ours['ratio_vs_fedavg_cpu'][n]:.2f}x; wall "
            f"{ours['ratio_vs_fedavg_wall'][n]:.2f}x)" for n in STRATEGIES)
            + "; numpy floor " + ", ".join(f"{n} {1e3 * s:.1f} ms" for n, s in floor["seconds_cpu"].items()))
    gain = synthetic["gain"]
    print(f"{synthetic['dataset']} {synthetic['stragglers']:.0%} stragglers, final test accuracy: " + ", ".join(
        f"{m} {gain['final_test_accuracy_mean'][m]:.3f}" for m in fedprox_synthetic.METHODS)
        + f"; the paper: {fedprox_synthetic.PAPER_CLAIM}")
    report["run_seconds"] = time.perf_counter() - started
    report["summary"] = summary_line(report)
    stem = "heterogeneity" + ("_quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    plot(report, args.out / f"{stem}.png")
    print(f"whole run {report['run_seconds']:.0f} s", file=sys.stderr)
    print(report["summary"])


if __name__ == "__main__":
    main()
