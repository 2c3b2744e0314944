"""The helpers of benchmarks/stragglers.py on constructed curves, and one tiny run."""
import numpy as np
import pytest
from benchmark_helpers import load_benchmark

stragglers = load_benchmark("stragglers")


def curve(seconds, accuracy):
    return {"seconds": seconds, "accuracy": accuracy}


def test_time_to_target_is_the_first_round_at_or_above_it():
    assert stragglers.time_to_target(curve([0, 5, 9, 12], [0.1, 0.89, 0.90, 0.95]), 0.90) == 9
    assert stragglers.time_to_target(curve([0, 5], [0.1, 0.5]), 0.90) is None


def test_a_cell_has_no_median_when_a_seed_never_reaches_the_target():
    reached = stragglers.cell([curve([0, 4], [0, 1]), curve([0, 8], [0, 1])], 0.9)
    assert reached["median_seconds"] == 6.0 and reached["seconds_to_target"] == [4, 8]
    assert stragglers.cell([curve([0, 4], [0, 1]), curve([0, 8], [0, 0.5])], 0.9)["median_seconds"] is None


def test_the_ratio_is_sync_over_the_fastest_other_strategy():
    results = {"heavy_tail": {"sync": {"median_seconds": 100.0}, "fedbuff": {"median_seconds": 25.0},
                              "deadline": {"median_seconds": 50.0}, "fedprox": {"median_seconds": None}}}
    assert stragglers.best_ratio(results) == (4.0, "fedbuff")


def test_the_deadline_is_the_quantile_of_full_work_times():
    from flcourse.federated import SimulatedSystems

    systems = SimulatedSystems(speed_median=10.0, bandwidth_median=1e5, seed=1)
    sizes = [10, 20, 30, 40]
    times = [2 * n / s + 2 * 800 / b for n, s, b in zip(sizes, systems.speeds(range(4)), systems.bandwidths(range(4)))]
    assert stragglers.full_work_deadline(systems, sizes, 100) == pytest.approx(np.quantile(times, 0.75), rel=1e-12)


def test_a_short_run_records_simulated_time_for_every_strategy():
    data_model = stragglers.load()
    for name in stragglers.STRATEGIES:
        run = stragglers.run_curve(name, 0, {"dropout": 0.1}, data_model, 3)
        assert len(run["seconds"]) == 4 and run["seconds"][0] == 0.0 and np.all(np.diff(run["seconds"]) > 0)
