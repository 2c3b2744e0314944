"""What a checkpoint after every round costs a long federated run.

Workload: FedAvg with softmax regression on digits, 10 IID clients, 2 per round (C = 0.2),
E = 1, B = 10, lr = 0.1, 10,000 rounds, run by flcourse's Server without and with
``checkpoint_path=`` (a checkpoint after every round), once with the central evaluation on
the test set after every round and once without it (the cheapest rounds, where a checkpoint
weighs most). The four runs alternate ``--repeats`` times each, in this process with one BLAS
thread; the figures are medians. The overhead is the median whole-run time with checkpoints
over the median without; the headline figure is the one without a test set; the goal is <= 1.5.

Beside the runs, the checkpoint writer alone (:class:`flcourse.federated.checkpoint.CheckpointWriter`,
650 params and a history row per save) is timed over as many saves as the run has rounds, at
the start and at the end, and so is rewriting history.json once the history has that many
rounds (:class:`flcourse.federated.history.HistoryWriter`, as ``python -m flcourse`` does after every
round, and :func:`flcourse.federated.history.save_history` from scratch). Writes
benchmarks/results/checkpoint_cost.{json,png}; the last line is ``checkpoint_overhead=<x.xx>
checkpoint_overhead_with_test_set=<x.xx> save_us=<y> history_json_rewrite_ms=<z>``, also
stored in the JSON as "summary".

    python benchmarks/checkpoint_cost.py              # 10,000 rounds, 3 repeats (a few minutes)
    python benchmarks/checkpoint_cost.py --rounds 500 --repeats 1    # a quick look
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

RESULTS = Path(__file__).resolve().parent / "results"
WORKLOAD = {"n_clients": 10, "fraction": 0.2, "local_epochs": 1, "batch_size": 10, "lr": 0.1,
            "n_rounds": 10_000, "seed": 0}


def build():
    """Model, strategy, clients and test set of the workload."""
    import flcourse as fl
    from flcourse.federated import FedAvg, make_clients

    data = fl.load_digits(seed=WORKLOAD["seed"])
    model = fl.SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)
    partition = fl.iid_partition(len(data.y_train), WORKLOAD["n_clients"], seed=WORKLOAD["seed"])
    clients = make_clients(model, data.X_train, data.y_train, partition)
    strategy = FedAvg(fraction_fit=WORKLOAD["fraction"], local_epochs=WORKLOAD["local_epochs"],
                      batch_size=WORKLOAD["batch_size"], lr=WORKLOAD["lr"])
    return model, strategy, clients, (data.X_test, data.y_test)


def run_server(n_rounds: int, checkpoint: bool, evaluate: bool) -> dict:
    """One whole run; its wall time, and the rounds' own time as the server records it.

    ``evaluate=False`` leaves out the central evaluation on the test set after every round:
    the cheapest rounds, where a checkpoint weighs most.
    """
    from flcourse.federated.server import Server

    model, strategy, clients, test_set = build()
    test_set = test_set if evaluate else None
    with tempfile.TemporaryDirectory(prefix="flcourse-bench-") as folder:
        path = Path(folder) / "checkpoint.flc" if checkpoint else None
        started = time.perf_counter()
        server = Server(model, strategy, clients, test_set=test_set, checkpoint_path=path,
                        seed=WORKLOAD["seed"]).run(n_rounds)
        seconds = time.perf_counter() - started
    rounds_ms = 1e3 * float(np.median(server.history_["wall_seconds"][1:]))
    return {"run_seconds": seconds, "median_round_ms": rounds_ms,
            "final_loss": float(server.model.loss(server.params_, *build()[3]))}


def time_writer(n_saves: int) -> dict:
    """The writer alone: median microseconds of the first and of the last 100 of n_saves saves."""
    from flcourse.federated.checkpoint import CheckpointWriter, run_identity

    model, strategy, clients, _ = build()
    identity = run_identity(model, strategy, [(c.cid, len(c.y)) for c in clients])
    rng, params = np.random.default_rng(0), np.zeros(model.n_params)
    row = {"round": 0, "n_selected": 2, "n_dropped": 0, "dropped": [], "bytes_sent": 10_400,
           "bytes_received": 10_400, "wall_seconds": 0.0004123, "test_loss": 0.2345, "test_accuracy": 0.9556}
    seconds = []
    with tempfile.TemporaryDirectory(prefix="flcourse-bench-") as folder, \
            CheckpointWriter(Path(folder) / "checkpoint.flc", identity) as writer:
        writer.start([row])
        for server_round in range(1, n_saves + 1):
            started = time.perf_counter()
            writer.save(server_round, params, rng.bit_generator.state, [dict(row, round=server_round)])
            seconds.append(time.perf_counter() - started)
        sizes = {"state_bytes": writer.path.stat().st_size,
                 "history_bytes": Path(f"{writer.path}.history.jsonl").stat().st_size}
    return {"first_100_us": 1e6 * float(np.median(seconds[:100])),
            "last_100_us": 1e6 * float(np.median(seconds[-100:])),
            "every_100th_us": [1e6 * s for s in seconds[::100]], **sizes}


def time_history_json(n_rounds: int) -> dict:
    """Rewriting history.json at n_rounds rounds: incrementally, and from scratch."""
    from flcourse.federated.checkpoint import HistoryWriter, save_history

    history = {"round": list(range(n_rounds + 1)), "n_selected": [2] * (n_rounds + 1),
               "dropped": [[]] * (n_rounds + 1), "bytes_sent": [10_400] * (n_rounds + 1),
               "wall_seconds": list(np.random.default_rng(0).random(n_rounds + 1)),
               "test_loss": list(np.random.default_rng(1).random(n_rounds + 1)),
               "test_accuracy": list(np.random.default_rng(2).random(n_rounds + 1))}
    incremental, whole = [], []
    with tempfile.TemporaryDirectory(prefix="flcourse-bench-") as folder:
        writer = HistoryWriter(Path(folder) / "history.json").update(history)
        for _ in range(20):
            for values in history.values():
                values.append(values[-1])
            started = time.perf_counter()
            writer.update(history).write()
            incremental.append(time.perf_counter() - started)
        for _ in range(3):
            started = time.perf_counter()
            save_history(history, Path(folder) / "whole.json")
            whole.append(time.perf_counter() - started)
        size = (Path(folder) / "history.json").stat().st_size
    return {"incremental_ms": 1e3 * float(np.median(incremental)),
            "save_history_ms": 1e3 * float(np.median(whole)), "file_bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=WORKLOAD["n_rounds"])
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs without and with checkpoints, alternated")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    runs = {f"{name} checkpoints{suffix}": [] for suffix in ("", ", no test set") for name in ("without", "with")}
    with threadpool_limits(1):
        for repeat in range(args.repeats):  # alternate, so that a change of load hits all alike
            for name in runs:
                runs[name].append(run_server(args.rounds, checkpoint=name.startswith("with "),
                                             evaluate="no test set" not in name))
                seconds = runs[name][-1]["run_seconds"]
                print(f"repeat {repeat + 1}: {name:32s} {seconds:7.2f} s", flush=True)
        writer, history_json = time_writer(args.rounds), time_history_json(args.rounds)
    medians = {name: {key: float(np.median([r[key] for r in reports])) for key in reports[0]}
               for name, reports in runs.items()}
    overheads = {suffix or "test set": medians[f"with checkpoints{suffix}"]["run_seconds"]
                 / medians[f"without checkpoints{suffix}"]["run_seconds"] for suffix in ("", ", no test set")}
    overhead = overheads[", no test set"]
    print(f"one save: {writer['first_100_us']:.0f} us at the start, {writer['last_100_us']:.0f} us after "
          f"{args.rounds} saves (state file {writer['state_bytes']} bytes)")
    print(f"history.json at {args.rounds} rounds ({history_json['file_bytes'] / 1e6:.2f} MB): rewritten "
          f"incrementally {history_json['incremental_ms']:.2f} ms, save_history from scratch "
          f"{history_json['save_history_ms']:.1f} ms")
    summary = (f"checkpoint_overhead={overhead:.2f} checkpoint_overhead_with_test_set="
               f"{overheads['test set']:.2f} save_us={writer['last_100_us']:.0f} "
               f"history_json_rewrite_ms={history_json['incremental_ms']:.2f}")
    save({"workload": dict(WORKLOAD, n_rounds=args.rounds), "repeats": args.repeats, "runs": runs,
          "medians": medians, "checkpoint_overhead": overhead, "overheads": overheads, "writer": writer,
          "history_json": history_json, "goal": "checkpoint_overhead <= 1.5", "summary": summary,
          "machine": {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}})
    print(summary)


def save(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (RESULTS / "checkpoint_cost.json").write_text(json.dumps(results, indent=1))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), width_ratios=(1.3, 1))
    names = list(results["medians"])
    left.barh(names, [results["medians"][n]["run_seconds"] for n in names],
              color=["tab:blue", "tab:orange"] * 2)
    left.invert_yaxis()
    left.set(xlabel="seconds (median)", title=f"{results['workload']['n_rounds']} rounds: "
             f"overhead {results['checkpoint_overhead']:.2f}x")
    saves = results["writer"]["every_100th_us"]
    right.plot(np.arange(len(saves)) * 100 + 1, saves, ".", color="tab:orange")
    right.set(xlabel="round", ylabel="microseconds", ylim=(0, None), title="one save, writer alone")
    fig.tight_layout()
    fig.savefig(RESULTS / "checkpoint_cost.png", dpi=110)


if __name__ == "__main__":
    main()
