"""benchmarks/robustness.py's helpers on tiny configurations: who attacks, how each attacker is
built, which defences run where, the summary's figures on a hand-made table, one run, the timing."""
import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")
from benchmark_helpers import load_benchmark


@pytest.fixture
def bench():
    return load_benchmark("robustness")


def entry(accuracy, backdoor=0.0):
    return {"final_accuracy_mean": accuracy, "final_accuracy_std": 0.0, "backdoor_success_mean": backdoor}


def test_the_attackers_are_drawn_from_the_seed_as_distinct_ids(bench):
    first, again, other = bench.attackers_of(0), bench.attackers_of(0), bench.attackers_of(1)

    expected = sorted(np.random.default_rng([0, 99]).choice(25, size=5, replace=False).tolist())
    assert first == again == expected and first != other


@pytest.mark.parametrize("attack, kind", [("none", "NumpyClient"), ("sign_flip", "SignFlipClient"),
                                          ("gaussian", "GaussianNoiseClient"), ("scaling", "ScalingClient"),
                                          ("alie", "NumpyClient"), ("label_flip", "LabelFlipClient"),
                                          ("backdoor", "ScalingClient"), ("backdoor_unboosted", "BackdoorClient")])
def test_each_attack_builds_its_attacker(bench, digits, attack, kind):
    model = bench.model_of(digits)

    client = bench.make_client(attack, model, digits.X_train[:20], digits.y_train[:20], 3, 0)

    assert type(client).__name__ == kind and client.cid == 3
    if attack == "backdoor":
        assert type(client.client).__name__ == "BackdoorClient" and client.gamma == bench.S["boost"]


@pytest.mark.parametrize("attack, kind, epsilon", [("alie", "alie", None), ("ipm", "ipm", 0.1),
                                                   ("ipm_large", "ipm", 8.0), ("sign_flip", None, None)])
def test_alie_and_ipm_wrap_the_defence_in_the_colluding_adversary(bench, attack, kind, epsilon):
    strategy = bench.make_strategy("median", attack, 1, 1.0, 0)

    if attack == "sign_flip":
        assert type(strategy).__name__ == "FedMedian"
    else:
        assert type(strategy).__name__ == "Colluding" and type(strategy.strategy).__name__ == "FedMedian"
        assert strategy.attackers == bench.attackers_of(0) and strategy.attack == kind
        assert epsilon is None or strategy.epsilon == epsilon


def test_bucketing_runs_on_the_non_iid_split_for_every_robust_defence_bulyan_aside(bench):
    iid, skewed = bench.cells("iid"), bench.cells("shards:2")

    assert iid == [(name, 1) for name in bench.DEFENCES]
    assert [name for name, s in skewed if s == 2] == [n for n in bench.DEFENCES if n not in ("mean", "bulyan")]


@pytest.mark.parametrize("bucket_size", [1, 2])
def test_the_trimmed_mean_cuts_exactly_the_attackers_per_side(bench, bucket_size):
    rows = bench.n_rows(bucket_size)
    beta = bench.make_defence("trimmed_mean", bucket_size, 1.0).beta

    assert math.floor(beta * rows) == bench.S["n_attackers"] and beta < 0.5


def test_the_summary_figures_on_a_hand_made_table(bench):
    iid = {"none": {"mean": entry(0.95), "median": entry(0.94)},
           "sign_flip": {"mean": entry(0.10), "median": entry(0.93)},   # best 0.93
           "alie": {"mean": entry(0.94), "median": entry(0.90)}}        # best 0.94
    skewed = {"none": {"mean": entry(0.94), "median": entry(0.80), "median+bucketing": entry(0.90)},
              "ipm": {"mean": entry(0.60), "median": entry(math.nan), "median+bucketing": entry(0.75)},
              "label_flip": {"mean": entry(0.70), "median": entry(0.65), "median+bucketing": entry(0.50)}}
    bench.S["splits"] = ["iid", "shards:2"]

    gaps = {"iid": bench.gap(iid), "shards:2": bench.gap(skewed)}
    gain = bench.bucketing_gain(skewed)

    assert gaps["iid"]["worst_attack"] == "sign_flip" and gaps["iid"]["best_defence"] == "median"
    assert abs(gaps["iid"]["points"] - 2.0) < 1e-9                 # 95 - 93
    assert gaps["shards:2"]["worst_attack"] == "label_flip"          # best 0.70 (ipm: 0.75, NaN never best)
    assert abs(gaps["shards:2"]["points"] - 24.0) < 1e-9             # 94 - 70
    assert gain["attack"] == "ipm" and gain["best_without"] == "mean"  # unbucketed: ipm 0.60 < label_flip 0.70
    assert abs(gain["points"] - 15.0) < 1e-9                         # 75 - 60
    line = bench.summary_line({"gaps": gaps, "bucketing_gain": gain})
    assert line == ("best_defence_gap_iid_worst_attack=2.0 best_defence_gap_noniid_worst_attack=24.0 "
                    "bucketing_gain_noniid=15.0")


def test_a_failed_run_makes_its_cell_nan_and_is_listed(bench):
    bench.S["last_rounds"] = 2
    runs = [{"curve": [0.1, 0.5, 0.7], "backdoor_success": 0.2, "failed": None},
            {"curve": [0.1], "failed": "client 3 diverged"}]

    summary = bench.summarise(runs)

    assert summary["final_accuracy"][0] == 0.6 and math.isnan(summary["final_accuracy"][1])
    assert math.isnan(summary["final_accuracy_mean"]) and summary["failures"] == ["client 3 diverged"]
    assert summary["final_accuracy_mean"] != bench.summarise(runs[:1])["final_accuracy_mean"]


def test_one_tiny_run_under_a_colluding_attack_records_its_curve(bench, digits):
    bench.S.update({"n_clients": 6, "n_attackers": 1, "n_rounds": 2, "last_rounds": 1})

    run = bench.run_cell("iid", "alie", "median", 1, 0, 1.0, digits)

    assert run["failed"] is None and len(run["curve"]) == 3 and 0 <= run["backdoor_success"] <= 1
    assert run["curve"][-1] > 0.5


def test_the_timing_compares_every_defence_with_the_mean_in_one_pass(bench):
    bench.S["timing"] = {"n": 12, "d": 30, "n_byzantine": 2, "repeats": 2}

    timing = bench.time_defences()

    assert set(timing["seconds"]) == set(bench.DEFENCES) | {"median+bucketing"}
    assert timing["ratio_vs_mean"]["mean"] == 1.0 and all(len(r) == 2 for r in timing["repetitions"].values())
