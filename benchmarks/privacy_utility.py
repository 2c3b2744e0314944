"""Privacy against utility: DP-FedAvg's test accuracy at a target user-level epsilon for several
numbers of clients per round, beside non-private FedAvg and local DP. How many clients per round
does useful accuracy at epsilon = 1 to 8 need?

Digits (1347 training images) split IID over N = 1000 clients of 1 or 2 images (user-level DP
needs many users); softmax regression; T = 50 rounds; a sampled client trains E = 5 full-batch
epochs at lr = 0.5; server lr 1. Expected clients per round m = q N in {10, 20, 30, 100};
delta = 1e-5 (below 1/N = 1e-3; 1/N^1.1 would be 5e-4).

- Central DP, the package's DPFedAvg (Poisson sampling at q = m / N, clipping to C, N(0, (z C)^2)
  on the sum, over q N): for each target epsilon in {1, 2, 4, 8} and each m, z is the smallest
  with ``epsilon(z, q, T, delta) <= target`` (``noise_multiplier_for_epsilon``). C is the median
  norm of the changes in a non-private, unclipped run (m = 100) on a tuning seed (100), training
  data only; nothing is tuned on the test set. Non-private: FedAvg, m clients drawn per round.
- Local DP at m = 100: each client clips and noises its own change (``LocalDPClient``), the server
  (DPFedAvg without noise or clipping) averages; z gives every client the target epsilon (add/
  remove neighbour, as the central accountant's) for T reports, the only bound known before the
  run (the realised worst client's lower epsilon is in the JSON).

Accuracy: the mean test accuracy of the last 5 rounds, averaged over seeds 0 and 1 (a seed fixes
the partition, the sampling and all noise). The second panel is computed, not run: the noise on
the average per coordinate over C, central z / m against local z / sqrt(m), for m up to N. The
last line, also stored as "summary" (m90: the fewest clients per round of the grid reaching 90%
of the non-private accuracy, the best over m; ">100" if none):

    nonprivate_accuracy=<x> accuracy_eps<e>_m<m>=<x> ... clients_per_round_for_90pct_of_nonprivate_at_eps<e>=<m90>
    ... local_accuracy_eps<e>_m100=<x> ...

    python benchmarks/privacy_utility.py [--quick] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import flcourse as fl
from flcourse.federated import DPFedAvg, FedAvg, NumpyClient, OnDemand, Server
from flcourse.privacy import epsilon, noise_multiplier_for_epsilon
from flcourse.privacy.local_dp import LocalDPClient, local_dp_epsilon, local_dp_noise_multiplier, mean_noise_std

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = {"n_clients": 1000, "n_rounds": 50, "local_epochs": 5, "batch_size": None, "lr": 0.5, "server_lr": 1.0,
            "delta": 1e-5, "clients_per_round": [10, 20, 30, 100], "noise_grid": [10, 20, 30, 100, 300, 1000],
            "targets": [1.0, 2.0, 4.0, 8.0], "local_targets": [1.0, 4.0, 16.0, 64.0], "local_clients_per_round": 100,
            "seeds": [0, 1], "tuning_seed": 100, "tuning_clients_per_round": 100, "last_rounds": 5,
            "useful_fraction": 0.9}
QUICK = {"n_clients": 100, "n_rounds": 3, "clients_per_round": [5, 20], "noise_grid": [5, 20, 100], "targets": [4.0],
         "local_targets": [16.0], "local_clients_per_round": 20, "seeds": [0], "tuning_clients_per_round": 10,
         "last_rounds": 2}
S = dict(SETTINGS)  # the settings of this run (QUICK applied by --quick)


def model_of(data):
    return fl.SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)


def federation(data, seed: int, local_dp: dict | None = None):
    """N clients over an IID partition drawn from ``seed``, built on demand; with ``local_dp``
    ({"clip_norm", "noise_multiplier"}) each is wrapped in a LocalDPClient seeded by ``seed``."""
    model, parts = model_of(data), fl.iid_partition(len(data.y_train), S["n_clients"], seed=seed)
    if local_dp is None:
        return OnDemand.from_partition(model, data.X_train, data.y_train, parts)

    def client_fn(cid):
        inner = NumpyClient(model, data.X_train[parts[cid]], data.y_train[parts[cid]], cid=cid)
        return LocalDPClient(inner, seed=seed, **local_dp)

    return OnDemand(client_fn, S["n_clients"], sizes=[len(part) for part in parts])


def counting(strategy_class):
    """A subclass of ``strategy_class`` that counts, in ``taken_part``, the rounds each client was asked to fit."""

    class Counted(strategy_class):
        def configure_fit(self, server_round, params, cids, rng):
            instructions = super().configure_fit(server_round, params, cids, rng)
            self.taken_part = getattr(self, "taken_part", {})
            for cid in instructions:
                self.taken_part[cid] = self.taken_part.get(cid, 0) + 1
            return instructions

    return Counted


def make_strategy(kind: str, m: int, clip_norm: float, noise_multiplier: float):
    """"central" DPFedAvg, "local" (DPFedAvg that neither clips nor noises) or "nonprivate" FedAvg."""
    local = {"local_epochs": S["local_epochs"], "batch_size": S["batch_size"], "lr": S["lr"]}
    if kind == "nonprivate":
        return counting(FedAvg)(fraction_fit=m / S["n_clients"], **local)
    if kind == "local":
        noise_multiplier, clip_norm = 0.0, 1e300  # the clients have clipped and noised
    return counting(DPFedAvg)(sampling_rate=m / S["n_clients"], clip_norm=clip_norm, noise_multiplier=noise_multiplier,
                              server_lr=S["server_lr"], **local)


def run(kind: str, m: int, clip_norm: float, noise_multiplier: float, seed: int, data) -> dict:
    """One run: the test-accuracy curve and the most rounds any client took part in."""
    model = model_of(data)
    local_dp = {"clip_norm": clip_norm, "noise_multiplier": noise_multiplier} if kind == "local" else None
    strategy = make_strategy(kind, m, clip_norm, noise_multiplier)
    server = Server(model, strategy, federation(data, seed, local_dp), test_set=(data.X_test, data.y_test),
                    seed=seed).run(S["n_rounds"], params=model.init_params())
    taken_part = getattr(strategy, "taken_part", {})
    return {"curve": server.history_["test_accuracy"], "max_rounds_taken_part": max(taken_part.values(), default=0)}


def final_accuracy(curve, last: int) -> float:
    """The mean test accuracy of the ``last`` rounds (round 0, before training, never counts)."""
    return float(np.mean(curve[1:][-last:]))


def reference_norm(data) -> float:
    """C: the median norm of the changes over a non-private, unclipped run on the tuning seed."""
    norms = []

    class Measured(DPFedAvg):
        def aggregate_fit(self, server_round, params, results, failures):
            norms.extend(float(np.linalg.norm(u.params)) for u in results)
            return super().aggregate_fit(server_round, params, results, failures)

    model, m = model_of(data), S["tuning_clients_per_round"]
    strategy = Measured(sampling_rate=m / S["n_clients"], clip_norm=1e300, noise_multiplier=0.0,
                        local_epochs=S["local_epochs"], batch_size=S["batch_size"], lr=S["lr"])
    Server(model, strategy, federation(data, S["tuning_seed"]), seed=S["tuning_seed"]).run(S["n_rounds"])
    return float(np.median(norms))


def noise_tables() -> dict:
    """The planned noise multipliers: {"central": {target: {m: z}}}, the smallest z with
    epsilon(z, m / N, T, delta) <= target over the noise grid (which holds every m run), and
    {"local": {target: z}}, the smallest z giving a client of T reports the target."""
    n, T, delta = S["n_clients"], S["n_rounds"], S["delta"]
    return {"central": {t: {m: noise_multiplier_for_epsilon(t, m / n, T, delta, rtol=1e-4) for m in S["noise_grid"]}
                        for t in S["targets"]},
            "local": {t: local_dp_noise_multiplier(t, T, delta) for t in S["local_targets"]}}


def plan(clip_norm: float, tables: dict) -> list[dict]:
    """Every cell to run: kind, m, target epsilon (None: non-private), z and C; each over the seeds."""
    cells = [{"kind": "nonprivate", "m": m, "target": None, "z": 0.0} for m in S["clients_per_round"]]
    cells += [{"kind": "central", "m": m, "target": t, "z": tables["central"][t][m]} for t in S["targets"]
              for m in S["clients_per_round"]]
    cells += [{"kind": "local", "m": S["local_clients_per_round"], "target": t, "z": z}
              for t, z in tables["local"].items()]
    return [{**cell, "clip_norm": clip_norm} for cell in cells]


def summarise(cell: dict, runs: list[dict]) -> dict:
    """A cell's accuracy over seeds, its epsilon as the accountant gives it, and its curves."""
    finals = [final_accuracy(r["curve"], S["last_rounds"]) for r in runs]
    worst = max(r["max_rounds_taken_part"] for r in runs)
    entry = {**cell, "final_accuracy": finals, "accuracy": float(np.mean(finals)),
             "accuracy_std": float(np.std(finals)), "max_rounds_taken_part": worst,
             "curve_mean": np.mean([r["curve"] for r in runs], axis=0).tolist()}
    if cell["kind"] == "central":
        entry["epsilon"] = epsilon(cell["z"], cell["m"] / S["n_clients"], S["n_rounds"], S["delta"])
    elif cell["kind"] == "local":
        entry["epsilon"] = local_dp_epsilon(cell["z"], S["n_rounds"], S["delta"])
        entry["epsilon_realised_worst_client"] = local_dp_epsilon(cell["z"], worst, S["delta"])
    return entry


def sweep(data, cells: list[dict]) -> list[dict]:
    """Run every cell over the seeds, with a progress bar; one summary per cell."""
    from tqdm.auto import tqdm

    entries = []
    with tqdm(total=len(cells) * len(S["seeds"]), desc="privacy-utility runs", unit="run") as progress:
        for cell in cells:
            runs = []
            for seed in S["seeds"]:
                runs.append(run(cell["kind"], cell["m"], cell["clip_norm"], cell["z"], seed, data))
                progress.update(1)
            entries.append(summarise(cell, runs))
            progress.write(f"{cell['kind']} m={cell['m']} target={cell['target']} z={cell['z']:.3f}: accuracy "
                           f"{entries[-1]['accuracy']:.3f} ± {entries[-1]['accuracy_std']:.3f}")
    return entries


def accuracy_table(entries: list[dict], kind: str) -> dict:
    """{target: {m: accuracy}} of one kind of cell (target None for the non-private runs)."""
    table = {}
    for entry in (e for e in entries if e["kind"] == kind):
        table.setdefault(entry["target"], {})[entry["m"]] = entry["accuracy"]
    return table


def fewest_clients(accuracy_by_m: dict, threshold: float) -> int | None:
    """The smallest m whose accuracy is at least ``threshold``, or None."""
    return min((m for m, accuracy in accuracy_by_m.items() if accuracy >= threshold), default=None)


def answer(entries: list[dict]) -> dict:
    """The non-private accuracy (the best over m), and per target epsilon the fewest clients
    per round reaching ``useful_fraction`` of it."""
    nonprivate = max(accuracy_table(entries, "nonprivate")[None].values())
    threshold = S["useful_fraction"] * nonprivate
    central = accuracy_table(entries, "central")
    return {"nonprivate_accuracy": nonprivate, "threshold": threshold,
            "clients_per_round_needed": {t: fewest_clients(central[t], threshold) for t in central}}


def summary_line(entries: list[dict], found: dict) -> str:
    """The last line printed, also stored in the JSON as "summary"."""
    central, local = accuracy_table(entries, "central"), accuracy_table(entries, "local")
    top = max(S["clients_per_round"])
    parts = [f"nonprivate_accuracy={found['nonprivate_accuracy']:.3f}"]
    parts += [f"accuracy_eps{t:g}_m{m}={a:.3f}" for t, row in central.items() for m, a in row.items()]
    parts += [f"clients_per_round_for_{100 * S['useful_fraction']:.0f}pct_of_nonprivate_at_eps{t:g}="
              + (str(m) if m is not None else f">{top}") for t, m in found["clients_per_round_needed"].items()]
    parts += [f"local_accuracy_eps{t:g}_m{m}={a:.3f}" for t, row in local.items() for m, a in row.items()]
    return " ".join(parts)


def noise_on_mean(tables: dict) -> dict:
    """The noise std on the average per coordinate over C: {"central"/"local": {target: {m: z/m or z/sqrt(m)}}}."""
    return {"central": {t: {m: mean_noise_std(z, 1.0, m) for m, z in row.items()}
                        for t, row in tables["central"].items()},
            "local": {t: {m: mean_noise_std(z, 1.0, m, where="local") for m in S["noise_grid"]}
                      for t, z in tables["local"].items()}}


def accuracy_panel(axis, report: dict) -> None:
    """Accuracy against epsilon: a line per m (central), local DP dashed, the non-private level."""
    entries, found = report["cells"], report["answer"]
    for m in S["clients_per_round"]:
        points = sorted((e["epsilon"], e["accuracy"]) for e in entries if e["kind"] == "central" and e["m"] == m)
        axis.plot(*zip(*points), "o-", label=f"central DP, m = {m} (q = {m / S['n_clients']:g})")
    local = sorted((e["epsilon"], e["accuracy"]) for e in entries if e["kind"] == "local")
    axis.plot(*zip(*local), "s--", color="black", label=f"local DP, m = {S['local_clients_per_round']}")
    axis.axhline(found["nonprivate_accuracy"], color="gray", label="non-private FedAvg (best m)")
    axis.axhline(found["threshold"], color="gray", ls=":", label=f"{100 * S['useful_fraction']:.0f}% of it")
    axis.set_xscale("log", base=2)
    axis.set(xlabel=f"epsilon (user level, delta = {S['delta']:g}, T = {S['n_rounds']})", ylabel="test accuracy",
             title=f"digits over N = {S['n_clients']} clients: accuracy at a privacy budget", ylim=(0, 1))
    axis.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(0.0, 0.33))


def noise_panel(axis, noise: dict, colours) -> None:
    """The noise std on the average over C against m: central solid, local dashed, a colour per epsilon."""
    targets = sorted(set(noise["central"]) | set(noise["local"]))
    for k, target in enumerate(targets):
        for where, style in (("central", "o-"), ("local", "s--")):
            if target in noise[where]:
                axis.plot(*zip(*sorted(noise[where][target].items())), style, label=f"{where}, epsilon = {target:g}",
                          color=colours(k / max(1, len(targets) - 1)))
    axis.set(xscale="log", yscale="log", xlabel="expected clients per round m = qN",
             ylabel="noise std on the average, per coordinate, / C",
             title="central z/m against local z/sqrt(m), z set by the budget")
    axis.legend(frameon=False, fontsize=7, ncol=2)


def plot(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    accuracy_panel(left, report)
    noise_panel(right, report["noise_on_mean"], plt.get_cmap("viridis"))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds (tiny federation)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and the plot")
    args = parser.parse_args(argv)
    S.update(QUICK if args.quick else {})
    threadpool_limits(1)
    started, data = time.perf_counter(), fl.load_digits(seed=0)
    clip_norm, tables = reference_norm(data), noise_tables()
    entries = sweep(data, plan(clip_norm, tables))
    found = answer(entries)
    report = {"settings": S, "clip_norm": clip_norm, "noise_multipliers": tables, "cells": entries, "answer": found,
              "noise_on_mean": noise_on_mean(tables), "environment": {
                  "python": platform.python_version(), "numpy": np.__version__, "cpu_count": os.cpu_count(),
                  "platform": platform.platform(), "blas_threads": 1}}
    report["summary"] = summary_line(entries, found)
    report["run_seconds"] = time.perf_counter() - started
    stem = "privacy_utility" + ("_quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    plot(report, args.out / f"{stem}.png")
    print(f"clip norm C = {clip_norm:.3f}; whole run {report['run_seconds']:.0f} s", file=sys.stderr)
    print(report["summary"])


if __name__ == "__main__":
    main()
