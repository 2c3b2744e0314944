"""benchmarks/rounds_to_accuracy.py --dataset mnist1d: runs that stop early still choose the rate
an exhaustive sweep would, and the data split gives every client the same number of samples."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")
from benchmark_helpers import load_benchmark


def test_the_resplit_holds_every_sample_once_with_equal_classes():
    benchmark = load_benchmark("rounds_to_accuracy")
    import flcourse as fl

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 7)  # 7 of each class, as MNIST-1D's 7,000 of each digit
    X = np.column_stack([np.arange(21.0), rng.standard_normal(21)])
    data = fl.Dataset("toy", X[:15], y[:15], X[15:], y[15:], 3)

    split = benchmark.stratified_resplit(data, n_test=3)

    assert np.bincount(split.y_train).tolist() == [6, 6, 6] and np.bincount(split.y_test).tolist() == [1, 1, 1]
    ids = np.concatenate([split.X_train[:, 0], split.X_test[:, 0]])
    assert sorted(ids) == list(range(21))
    assert np.array_equal(y[split.X_train[:, 0].astype(int)], split.y_train)


def test_the_leader_cap_is_the_median_rounds_of_the_best_rate():
    benchmark = load_benchmark("rounds_to_accuracy")
    reach = lambda r: [0.0] * r + [1.0]  # a curve reaching the target at round r

    curves = {0.1: [reach(9), reach(8), reach(9)], 0.2: [reach(3), reach(7), reach(4)]}

    assert benchmark.leader_cap(curves, target=1.0, budget=50) == 4
    assert benchmark.leader_cap({}, target=1.0, budget=50) == 50


@pytest.mark.parametrize("rounds_at", [
    {1: [30, 32, 31], 2: [12, 15, 11], 4: [14, 40, 13], 8: [60, 70, 80]},   # best inside at once
    {1: [30, 32, 31], 2: [20, 25, 22], 4: [14, 16, 13], 8: [9, 30, 10], 16: [40, 50, 45]},  # widened up
])
def test_capped_runs_choose_what_the_full_runs_choose(monkeypatch, rounds_at):
    benchmark = load_benchmark("rounds_to_accuracy")
    budget, calls = 100, []

    def fake_run(setting, lr, spec, seed, data, target, limit):
        calls.append((lr, seed, limit))
        reached = rounds_at[lr][seed]
        if reached > limit:  # stopped by its cap: the curve so far, never at the target
            return [0.0] * (limit + 1), "limit"
        return [0.0] * reached + [1.0], "target"

    monkeypatch.setattr(benchmark, "run_to_target", fake_run)
    full = {lr: [[0.0] * r + [1.0] for r in rounds] for lr, rounds in rounds_at.items()}
    expected, _ = benchmark.widened_choice({lr: full[lr] for lr in (1, 2, 4)}, lambda lr: full[lr], 1.0, budget)

    lr, curves, _ = benchmark.tuned_rate("FedSGD", "iid", 1.0, budget, 3, None, (1, 2, 4))

    assert lr == expected
    assert [benchmark.first_round_at(c, 1.0, budget) for c in curves[lr]] == rounds_at[lr]  # exact
    assert calls[0][2] == budget and any(limit < budget for _, _, limit in calls)  # later runs capped
    assert len(calls) < 3 * len(rounds_at)  # and some seeds never run


def test_the_paper_table_marks_a_setting_that_never_reached_the_target(monkeypatch):
    benchmark = load_benchmark("rounds_to_accuracy")
    benchmark.MODEL["dataset"] = "mnist1d"
    settings = {"FedSGD": None, "FedAvg E=5 B=10": (5, 10)}
    monkeypatch.setitem(benchmark.MNIST1D, "settings", settings)
    monkeypatch.setitem(benchmark.MNIST1D, "targets", {"iid": (0.7,)})
    entry = lambda rounds, budget: {"rounds": rounds, "median_rounds": float(np.median(rounds)),
                                    "budget": budget, "lr": 0.5, "grid": [0.25, 0.5, 1.0], "inside_grid": True}
    results = {"iid | 0.7 | FedSGD": entry([300, 280, 320], 1500),
               "iid | 0.7 | FedAvg E=5 B=10": entry([20, 300, 300], 300)}

    table = benchmark.paper_table(results)

    assert "| 1 (FedSGD) | ∞ | 300 (280–320) | 0.5 (0.25–1) | 1.0× |" in table
    assert "| 5 | 10 | >300 (20–300) | 0.5 (0.25–1) | 1.0× |" in table
