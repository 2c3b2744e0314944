"""Attacks against defences: what each robust aggregator keeps of FedAvg's accuracy, on IID
and on label-skewed data, what a backdoor does past them, and what each costs per round.

The table: softmax regression on digits, 25 clients of which 5 attack (drawn per seed), every
client in every round (C = 1), E = 2, B = 10, lr = 0.3, 40 rounds, 3 seeds (a seed fixes the
partition, the attackers and the server). The local settings were chosen in a pilot of
FedAvg without attack (about 0.95 after 40 rounds); no attack or defence was tuned on the
test set. Two partitions: IID, and 2 label shards per client (McMahan et al.'s pathological
split: equal sizes, so counting clients, as robust rules do, and weighting by n_k, as FedAvg
does, agree, and what differs is the labels alone; honest changes then point in very
different directions, the hard case for robust rules).

Attacks (f = 5 of n = 25; with the rule "twice the strength at which the attackers cancel
the honest mean", s = ε = 2 (n - f) / f = 8):
  none; sign_flip -sΔ (s = 8); gaussian N(0, σ² I) in place of Δ (σ = 1, about 14x the rms
  of an honest change's coordinates in round 1); scaling γΔ (γ = n / f = 5: the attackers
  together would replace the model, Bagdasaryan et al.'s n / η shared by f); alie (z from
  alie_z(25, 5) = 0.253) and ipm (ε = 0.1, the small ε aimed at robust rules) and ipm_large
  (ε = 8), all three colluding and omniscient; label_flip (y -> 9 - y); backdoor (half of
  each attacker's samples get the 2 x 2 corner trigger and label 0; the update boosted by
  γ = 5) and backdoor_unboosted (the same, γ = 1: no larger than an honest change).
Defences, all on the clients' changes: mean (RobustFedAvg: FedAvg on deltas), median,
trimmed_mean (β = (f + 1/2) / rows: it trims f per side), krum (f = 5), multi_krum (f = 5,
m = rows - f), bulyan (f = 5), geometric_median (RFA), centered_clipping (τ = M, one
iteration), norm_bounding (bound M), where M is the median norm of the honest changes over a
clean run of the mean on a tuning seed (100), training data only. On the non-IID split every
robust defence also runs with bucketing (s = 2: 13 bucket means, f = 5 of them possibly
Byzantine), except Bulyan, which needs 4f + 3 = 23 rows.

Reported per cell: final test accuracy (mean of the last 5 rounds), mean and std over seeds; a
run that fails (an update the server refuses, a defence that cannot combine its rows) is NaN,
and never the best. The backdoor's success rate (backdoor_success_rate: triggered test images
not of class 0 classified as 0) for every defence, under each backdoor and without attack.
Beside it, each defence's aggregation time at n = 100, d = 10^5 (f = 20), against the mean's
in the same process: the median over repeats of the ratio within each repeat.

The last line, also stored as "summary":

    best_defence_gap_iid_worst_attack=<points> best_defence_gap_noniid_worst_attack=<points>
    bucketing_gain_noniid=<points>

For a split, best(a) is the highest mean final accuracy over its defences under attack a, and
the worst attack is the a != none with the lowest best(a); the gap is the mean's accuracy
without attack minus best(worst attack), in points. bucketing_gain_noniid: under the worst
non-IID attack for the defences without bucketing (mean included), the best bucketed defence's
accuracy minus the best unbucketed one's, in points (positive: bucketing helps).

    python benchmarks/robustness.py [--quick] [--out DIR]
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ATTACKS = ("none", "sign_flip", "gaussian", "scaling", "alie", "ipm", "ipm_large", "label_flip", "backdoor",
           "backdoor_unboosted")
BACKDOORS = ("backdoor", "backdoor_unboosted")
DEFENCES = ("mean", "median", "trimmed_mean", "krum", "multi_krum", "bulyan", "geometric_median",
            "centered_clipping", "norm_bounding")
NO_BUCKETING = ("mean", "bulyan")  # the mean needs none; Bulyan needs 4f + 3 rows
SETTINGS = {"n_clients": 25, "n_attackers": 5, "local_epochs": 2, "batch_size": 10, "lr": 0.3, "n_rounds": 40,
            "seeds": [0, 1, 2], "tuning_seed": 100, "last_rounds": 5, "splits": ["iid", "shards:2"],
            "bucket_size": 2, "strength": 8.0, "sigma": 1.0, "ipm_epsilon": 0.1, "boost": 5.0,
            "backdoor": {"target": 0, "fraction": 0.5},
            "timing": {"n": 100, "d": 100_000, "n_byzantine": 20, "repeats": 5}}
QUICK = {"n_clients": 10, "n_attackers": 2, "n_rounds": 3, "seeds": [0],
         "timing": {"n": 12, "d": 50, "n_byzantine": 2, "repeats": 1}}
S = dict(SETTINGS)  # the settings of this run (QUICK applied by --quick)


# ---- one run ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def load():
    import flcourse as fl

    return fl.load_digits(seed=0)


def model_of(data):
    import flcourse as fl

    return fl.SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)


@functools.lru_cache(maxsize=None)
def partition_of(split: str, seed: int, n_clients: int) -> tuple:
    import flcourse as fl

    return tuple(fl.make_partition(split, load().y_train, n_clients, seed=seed))


def attackers_of(seed: int) -> list[int]:
    """The attackers of a seed: S["n_attackers"] client ids drawn from (seed, 99)."""
    rng = np.random.default_rng([seed, 99])
    return sorted(int(c) for c in rng.choice(S["n_clients"], size=S["n_attackers"], replace=False))


def make_client(attack: str, model, X, y, cid: int, seed: int):
    """Client ``cid`` as ``attack`` makes an attacker of it (ALIE and IPM: honest, the
    server-side adversary replaces its update)."""
    from flcourse.federated import NumpyClient
    from flcourse.federated.attacks import (BackdoorClient, GaussianNoiseClient, LabelFlipClient,
                                            ScalingClient, SignFlipClient)

    if attack == "label_flip":
        return LabelFlipClient(model, X, y, cid=cid)
    if attack in BACKDOORS:
        backdoored = BackdoorClient(model, X, y, cid=cid, seed=seed, **S["backdoor"])
        return ScalingClient(backdoored, gamma=S["boost"]) if attack == "backdoor" else backdoored
    honest = NumpyClient(model, X, y, cid=cid)
    if attack == "sign_flip":
        return SignFlipClient(honest, scale=S["strength"])
    if attack == "gaussian":
        return GaussianNoiseClient(honest, sigma=S["sigma"], seed=seed)
    if attack == "scaling":
        return ScalingClient(honest, gamma=S["boost"])
    return honest


def federation(split: str, attack: str, seed: int, data) -> list:
    model, attackers = model_of(data), set(attackers_of(seed))
    parts = partition_of(split, seed, S["n_clients"])
    return [make_client(attack if cid in attackers else "none", model, data.X_train[part], data.y_train[part],
                        cid, seed) for cid, part in enumerate(parts)]


def n_rows(bucket_size: int) -> int:
    """How many rows a defence combines: the clients, or their ceil(n / s) bucket means."""
    return -(-S["n_clients"] // bucket_size)


def make_defence(name: str, bucket_size: int, reference_norm: float):
    """The strategy of defence ``name`` with the run's local settings."""
    from flcourse.federated.strategies import robust, robust_krum

    common = {"local_epochs": S["local_epochs"], "batch_size": S["batch_size"], "lr": S["lr"],
              "bucket_size": bucket_size}
    f, rows = S["n_attackers"], n_rows(bucket_size)
    makers = {"mean": lambda: robust.RobustFedAvg(**common),
              "median": lambda: robust.FedMedian(**common),
              "trimmed_mean": lambda: robust.FedTrimmedAvg(beta=(f + 0.5) / rows, **common),
              "krum": lambda: robust_krum.Krum(n_byzantine=f, **common),
              "multi_krum": lambda: robust_krum.Krum(n_byzantine=f, n_selected=rows - f, **common),
              "bulyan": lambda: robust_krum.Bulyan(n_byzantine=f, **common),
              "geometric_median": lambda: robust.GeometricMedian(**common),
              "centered_clipping": lambda: robust.CenteredClipping(tau=reference_norm, **common),
              "norm_bounding": lambda: robust.NormBounding(bound=reference_norm, **common)}
    return makers[name]()


def make_strategy(defence: str, attack: str, bucket_size: int, reference_norm: float, seed: int):
    """The defence, wrapped in the colluding adversary for ALIE and IPM."""
    from flcourse.federated.attacks import Colluding

    strategy = make_defence(defence, bucket_size, reference_norm)
    if attack == "alie":
        return Colluding(strategy, attackers=attackers_of(seed), attack="alie")
    if attack in ("ipm", "ipm_large"):
        epsilon = S["ipm_epsilon"] if attack == "ipm" else S["strength"]
        return Colluding(strategy, attackers=attackers_of(seed), attack="ipm", epsilon=epsilon)
    return strategy


def run_cell(split: str, attack: str, defence: str, bucket_size: int, seed: int, reference_norm: float,
             data) -> dict:
    """One run: its test-accuracy curve and, at the end, the backdoor's success rate."""
    from flcourse.federated import ClientFailure, InvalidUpdateError, Server
    from flcourse.federated.attacks import backdoor_success_rate

    model = model_of(data)
    strategy = make_strategy(defence, attack, bucket_size, reference_norm, seed)
    server = Server(model, strategy, federation(split, attack, seed, data), test_set=(data.X_test, data.y_test),
                    seed=seed)
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            server.run(S["n_rounds"], params=model.init_params())
    except (ClientFailure, InvalidUpdateError, ValueError) as error:
        return {"curve": getattr(server, "history_", {}).get("test_accuracy"), "failed": str(error)[:300]}
    success = backdoor_success_rate(model, server.params_, data.X_test, data.y_test, target=S["backdoor"]["target"])
    return {"curve": server.history_["test_accuracy"], "backdoor_success": success, "failed": None}


def final(run: dict) -> float:
    """The mean test accuracy of the last rounds; NaN for a failed run."""
    return math.nan if run["failed"] else float(np.mean(run["curve"][-S["last_rounds"]:]))


# ---- calibration -------------------------------------------------------------------------

def reference_norm(split: str, data) -> float:
    """M: the median norm of the honest changes over a clean run of the mean on the tuning
    seed (training data only): the bound of norm bounding and the radius of centered clipping."""
    from flcourse.federated import Server
    from flcourse.federated.strategies.robust import RobustFedAvg

    norms = []

    class Measured(RobustFedAvg):
        def aggregate_fit(self, server_round, params, results, failures):
            norms.extend(float(np.linalg.norm(u.params)) for u in results)
            return super().aggregate_fit(server_round, params, results, failures)

    model, seed = model_of(data), S["tuning_seed"]
    strategy = Measured(local_epochs=S["local_epochs"], batch_size=S["batch_size"], lr=S["lr"])
    Server(model, strategy, federation(split, "none", seed, data), seed=seed).run(S["n_rounds"])
    return float(np.median(norms))


# ---- the table and its summary -----------------------------------------------------------

def cells(split: str) -> list[tuple[str, int]]:
    """(defence, bucket size) pairs of a split: bucketing too on the non-IID one."""
    plain = [(name, 1) for name in DEFENCES]
    if split == "iid":
        return plain
    return plain + [(name, S["bucket_size"]) for name in DEFENCES if name not in NO_BUCKETING]


def cell_name(defence: str, bucket_size: int) -> str:
    return defence if bucket_size == 1 else f"{defence}+bucketing"


def summarise(runs: list[dict]) -> dict:
    finals = [final(run) for run in runs]
    ok = [x for x in finals if not math.isnan(x)]
    rates = [run.get("backdoor_success", math.nan) for run in runs]
    return {"final_accuracy": finals, "final_accuracy_mean": float(np.mean(finals)) if len(ok) == len(finals) else math.nan,
            "final_accuracy_std": float(np.std(finals)) if len(ok) == len(finals) else math.nan,
            "backdoor_success": rates, "backdoor_success_mean": float(np.mean(rates)),
            "failures": [run["failed"] for run in runs if run["failed"]], "curves": [run["curve"] for run in runs]}


def best(table: dict, attack: str, names=None) -> tuple[float, str | None]:
    """The highest mean final accuracy under ``attack`` over the defences ``names`` (all by
    default) and which defence reaches it; (NaN, None) if every run failed."""
    entries = {name: entry["final_accuracy_mean"] for name, entry in table[attack].items()
               if names is None or name in names}
    valid = {name: value for name, value in entries.items() if not math.isnan(value)}
    if not valid:
        return math.nan, None
    name = max(valid, key=lambda key: (valid[key], key))
    return valid[name], name


def worst_attack(table: dict, names=None) -> str:
    """The attack (not "none") under which the best defence of ``names`` does worst."""
    scores = {attack: best(table, attack, names)[0] for attack in table if attack != "none"}
    return min(scores, key=lambda attack: (-math.inf if math.isnan(scores[attack]) else scores[attack], attack))


def gap(table: dict) -> dict:
    """No-attack mean accuracy minus the best defence's under the worst attack, in points."""
    attack = worst_attack(table)
    value, name = best(table, attack)
    return {"worst_attack": attack, "best_defence": name, "best_accuracy": value,
            "no_attack_mean_accuracy": table["none"]["mean"]["final_accuracy_mean"],
            "points": 100 * (table["none"]["mean"]["final_accuracy_mean"] - value)}


def bucketing_gain(table: dict) -> dict:
    """Best bucketed minus best unbucketed accuracy under the worst attack for the unbucketed."""
    unbucketed = [name for name in next(iter(table.values())) if not name.endswith("+bucketing")]
    bucketed = [name for name in next(iter(table.values())) if name.endswith("+bucketing")]
    attack = worst_attack(table, unbucketed)
    (without, name_without), (with_, name_with) = best(table, attack, unbucketed), best(table, attack, bucketed)
    return {"attack": attack, "best_without": name_without, "accuracy_without": without, "best_with": name_with,
            "accuracy_with": with_, "points": 100 * (with_ - without)}


def summary_line(report: dict) -> str:
    """The last line printed, also stored in the JSON as "summary"."""
    splits = S["splits"]
    return (f"best_defence_gap_iid_worst_attack={report['gaps'][splits[0]]['points']:.1f} "
            f"best_defence_gap_noniid_worst_attack={report['gaps'][splits[1]]['points']:.1f} "
            f"bucketing_gain_noniid={report['bucketing_gain']['points']:.1f}")


def table_rows(table: dict, split: str) -> list[str]:
    names = list(next(iter(table.values())))
    rows = [f"{split}: final test accuracy, mean ± std over seeds",
            "| attack | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for attack, entries in table.items():
        rows.append(f"| {attack} | " + " | ".join(
            f"{entries[n]['final_accuracy_mean']:.3f} ± {entries[n]['final_accuracy_std']:.3f}" for n in names) + " |")
    for attack in (a for a in BACKDOORS if a in table):
        rows.append(f"| {attack} success | " + " | ".join(
            f"{table[attack][n]['backdoor_success_mean']:.3f}" for n in names) + " |")
    return rows


# ---- the sweep ---------------------------------------------------------------------------

def sweep(data) -> tuple[dict, dict]:
    """{split: {attack: {defence: summary}}} and each split's reference norm M."""
    from tqdm.auto import tqdm

    total = sum(len(cells(split)) for split in S["splits"]) * len(ATTACKS) * len(S["seeds"])
    tables, norms = {}, {}
    with tqdm(total=total, desc="robustness runs", unit="run") as progress:
        for split in S["splits"]:
            norms[split] = reference_norm(split, data)
            tables[split] = {}
            for attack in ATTACKS:
                tables[split][attack] = {}
                for defence, bucket_size in cells(split):
                    runs = []
                    for seed in S["seeds"]:
                        runs.append(run_cell(split, attack, defence, bucket_size, seed, norms[split], data))
                        progress.update(1)
                    tables[split][attack][cell_name(defence, bucket_size)] = summarise(runs)
    return tables, norms


# ---- aggregation time at scale -----------------------------------------------------------

def defence_calls(updates: np.ndarray, f: int) -> dict:
    """{name: a call of that defence on ``updates``}, with the table's settings scaled to n."""
    from flcourse.federated import defences as D

    n, radius = len(updates), float(np.median(np.linalg.norm(updates, axis=1)))
    return {"mean": lambda: D.mean(updates), "median": lambda: D.median(updates),
            "trimmed_mean": lambda: D.trimmed_mean(updates, (f + 0.5) / n),
            "krum": lambda: D.krum(updates, f), "multi_krum": lambda: D.multi_krum(updates, f, n - f),
            "bulyan": lambda: D.bulyan(updates, f), "geometric_median": lambda: D.geometric_median(updates),
            "centered_clipping": lambda: D.centered_clipping(updates, radius),
            "norm_bounding": lambda: D.norm_bounding(updates, radius),
            "median+bucketing": lambda: D.bucketing(updates, 2, D.median, np.random.default_rng(1))}


def time_defences() -> dict:
    """Seconds per aggregation at n x d (Gaussian updates), each defence and the mean timed
    side by side in one process, in an order rotated every repeat (after a warm-up pass): the
    median over repeats of the seconds and of the ratio to the mean within each repeat."""
    timing = S["timing"]
    updates = np.random.default_rng(0).normal(size=(timing["n"], timing["d"]))
    calls = defence_calls(updates, timing["n_byzantine"])
    names, seconds = list(calls), {name: [] for name in calls}
    for repeat in range(timing["repeats"] + 1):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            calls[name]()
            if repeat:
                seconds[name].append(time.perf_counter() - started)
    return {**{key: timing[key] for key in ("n", "d", "n_byzantine", "repeats")},
            "seconds": {name: float(np.median(s)) for name, s in seconds.items()},
            "ratio_vs_mean": {name: float(np.median([a / b for a, b in zip(s, seconds["mean"])]))
                              for name, s in seconds.items()},
            "repetitions": seconds}


# ---- report ------------------------------------------------------------------------------

def heat_map(axis, table: dict, title: str) -> None:
    names, attacks = list(next(iter(table.values()))), list(table)
    values = np.array([[table[a][n]["final_accuracy_mean"] for n in names] for a in attacks])
    axis.imshow(values, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        axis.text(j, i, "–" if math.isnan(value) else f"{100 * value:.0f}", ha="center", va="center", fontsize=7)
    axis.set_xticks(range(len(names)), [n.replace("+bucketing", "+b") for n in names], rotation=60, ha="right",
                    fontsize=8)
    axis.set_yticks(range(len(attacks)), attacks, fontsize=8)
    axis.set_title(title, fontsize=10)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = report["tables"]
    widths = [len(next(iter(tables[split].values()))) for split in S["splits"]]
    fig, axes = plt.subplots(2, 2, figsize=(17, 10), gridspec_kw={"width_ratios": widths, "height_ratios": [3, 2]})
    for axis, split in zip(axes[0], S["splits"]):
        heat_map(axis, tables[split], f"{split}: final test accuracy (%), mean over seeds")
    bars = [(split, attack) for split in S["splits"] for attack in BACKDOORS]
    for k, (split, attack) in enumerate(bars):
        names = list(tables[split][attack])
        axes[1, 0].bar(np.arange(len(names)) + 0.2 * k, [tables[split][attack][n]["backdoor_success_mean"]
                                                          for n in names], 0.2, label=f"{split}, {attack}")
    names = list(tables[S["splits"][-1]]["none"])
    axes[1, 0].set_xticks(np.arange(len(names)) + 0.3, [n.replace("+bucketing", "+b") for n in names],
                          rotation=60, ha="right", fontsize=8)
    axes[1, 0].set(title="backdoor success rate (triggered test images classified 0)", ylim=(0, 1.3))
    axes[1, 0].legend(frameon=False, fontsize=7, ncol=2, loc="upper center")
    timing = report["timing"]
    names = list(timing["ratio_vs_mean"])
    axes[1, 1].bar(names, [timing["ratio_vs_mean"][n] for n in names], color="tab:gray")
    axes[1, 1].set_yscale("log")
    axes[1, 1].set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    axes[1, 1].set(title=f"aggregation time / the mean's, n={timing['n']}, d={timing['d']:.0e}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def environment() -> dict:
    return {"python": platform.python_version(), "numpy": np.__version__, "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "blas_threads": 1}


def report_of(tables: dict, norms: dict, timing: dict) -> dict:
    splits = S["splits"]
    report = {"settings": S, "attacks": list(ATTACKS), "reference_norm": norms, "tables": tables,
              "gaps": {split: gap(tables[split]) for split in splits},
              "bucketing_gain": bucketing_gain(tables[splits[1]]),
              "backdoor": {split: {attack: {name: tables[split][attack][name]["backdoor_success_mean"]
                                            for name in ("mean", "norm_bounding")} for attack in BACKDOORS}
                           for split in splits},
              "timing": timing, "environment": environment()}
    report["table"] = [row for split in splits for row in table_rows(tables[split], split)]
    report["summary"] = summary_line(report)
    return report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds (tiny federation)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and the plot")
    args = parser.parse_args(argv)
    S.update(QUICK if args.quick else {})
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    started, data = time.perf_counter(), load()
    tables, norms = sweep(data)
    timing = time_defences()
    report = report_of(tables, norms, timing)
    print("\n".join(report["table"]))
    for split, entry in report["gaps"].items():
        print(f"{split}: worst attack {entry['worst_attack']}, best defence there {entry['best_defence']} "
              f"{entry['best_accuracy']:.3f} against {entry['no_attack_mean_accuracy']:.3f} without attack")
    gain = report["bucketing_gain"]
    print(f"bucketing under {gain['attack']}: {gain['best_with']} {gain['accuracy_with']:.3f} against "
          f"{gain['best_without']} {gain['accuracy_without']:.3f}")
    print("aggregation time at n={n}, d={d}: ".format(**timing) + ", ".join(
        f"{name} {1e3 * timing['seconds'][name]:.1f} ms ({timing['ratio_vs_mean'][name]:.1f}x)"
        for name in timing["seconds"]))
    report["run_seconds"] = time.perf_counter() - started
    stem = "robustness" + ("_quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    plot(report, args.out / f"{stem}.png")
    print(f"whole run {report['run_seconds']:.0f} s", file=sys.stderr)
    print(report["summary"])


if __name__ == "__main__":
    main()
