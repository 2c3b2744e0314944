"""benchmarks/simulation_speed.py: the on-demand federation's data, run and summary line."""
import math

import numpy as np
import pytest

from benchmark_helpers import BENCHMARKS, load_benchmark

pytest.importorskip("matplotlib")


@pytest.fixture
def benchmark(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports numpy_floor beside it
    return load_benchmark("simulation_speed")


def test_the_teacher_data_is_seeded_and_labelled_in_chunks_alike(benchmark):
    X, y = benchmark.teacher_data(2500, 20, 10, seed=0)
    X_chunked, y_chunked = benchmark.teacher_data(2500, 20, 10, seed=0, chunk=1000)

    assert X.shape == (2500, 20) and X.dtype == np.float64 and y.dtype == np.int64
    assert np.array_equal(X, X_chunked) and set(np.unique(y)) <= set(range(10))
    assert np.mean(y == y_chunked) > 0.5  # other noise draws, the same teacher


def test_the_on_demand_run_selects_one_client_in_a_hundred(benchmark):
    report = benchmark.run_on_demand(300, 2)

    assert report["n_clients"] == 300 and report["n_selected"] == [3, 3]
    assert set(report["phase_seconds"]) == {"data", "federation", "rounds"}
    assert len(report["test_accuracy"]) == 3 and report["test_accuracy"][-1] > 0.2


def test_the_summary_line_ends_with_the_million_client_figures_only_when_run(benchmark):
    summary = {"overhead_vs_numpy_floor": 0.6, "speedup_vs_flower_round": 180.0,
               "speedup_vs_flower_run": math.nan}
    plain = benchmark.summary_line(summary)
    summary["on_demand"] = {"n_clients": 10**6, "run_seconds": 41.23, "peak_rss_mb": 2345.6}

    line = benchmark.summary_line(summary)

    assert plain == "overhead_vs_numpy_floor=0.60 speedup_vs_flower_round=180.0 speedup_vs_flower_run=nan"
    assert line == plain + " million_clients_seconds=41.2 million_clients_peak_mb=2346"
    assert benchmark.scale_key(1000) == "clients_1000"
