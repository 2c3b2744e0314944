"""benchmarks/privacy_utility.py's helpers on tiny configurations: the noise multipliers meet their
budgets, the cells planned, who took part, the answer and the summary on hand-made cells, and
tiny runs of each kind (without noise, local and central DP give one model)."""
import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")
from benchmark_helpers import load_benchmark

from flcourse.privacy import epsilon
from flcourse.privacy.local_dp import local_dp_epsilon


@pytest.fixture
def bench():
    module = load_benchmark("privacy_utility")
    module.S.update({"n_clients": 20, "n_rounds": 2, "clients_per_round": [4, 10], "noise_grid": [4, 10],
                     "targets": [2.0], "local_targets": [8.0], "local_clients_per_round": 10, "seeds": [0],
                     "last_rounds": 2})
    return module


def cell(kind, m, target, accuracy):
    return {"kind": kind, "m": m, "target": target, "accuracy": accuracy}


def test_the_final_accuracy_is_the_mean_of_the_last_rounds_never_round_zero(bench):
    assert bench.final_accuracy([0.9, 0.2, 0.4, 0.6], 2) == 0.5
    assert bench.final_accuracy([0.9, 0.2], 5) == 0.2


def test_the_planned_noise_multipliers_just_meet_their_budgets(bench):
    tables = bench.noise_tables()

    for m, z in tables["central"][2.0].items():
        assert epsilon(z, m / 20, 2, 1e-5) <= 2.0 < epsilon(z * 0.999, m / 20, 2, 1e-5)
    z_local = tables["local"][8.0]
    assert local_dp_epsilon(z_local, 2, 1e-5) <= 8.0 < local_dp_epsilon(z_local * 0.999, 2, 1e-5)
    assert tables["central"][2.0][4] < tables["central"][2.0][10]  # a larger q needs more noise


def test_the_plan_has_a_nonprivate_run_per_m_a_central_run_per_m_and_budget_and_the_local_runs(bench):
    tables = {"central": {2.0: {4: 0.7, 10: 0.9}}, "local": {8.0: 3.0}}

    cells = bench.plan(1.5, tables)

    assert [(c["kind"], c["m"], c["target"], c["z"]) for c in cells] == [
        ("nonprivate", 4, None, 0.0), ("nonprivate", 10, None, 0.0), ("central", 4, 2.0, 0.7),
        ("central", 10, 2.0, 0.9), ("local", 10, 8.0, 3.0)]
    assert all(c["clip_norm"] == 1.5 for c in cells)


def test_counting_records_each_clients_rounds_as_sampled(bench):
    strategy = bench.make_strategy("central", 10, 1.0, 1.0)  # q = 10 / 20
    strategy.initialize(np.zeros(3))
    rng, sampled = np.random.default_rng(0), []

    for server_round in (1, 2, 3):
        sampled += list(strategy.configure_fit(server_round, np.zeros(3), list(range(20)), rng))

    assert strategy.taken_part == {cid: sampled.count(cid) for cid in set(sampled)}
    assert max(strategy.taken_part.values()) <= 3 and 0 < len(sampled) < 60


def test_the_local_kind_neither_clips_nor_noises_at_the_server(bench):
    local, central = bench.make_strategy("local", 10, 0.3, 2.0), bench.make_strategy("central", 10, 0.3, 2.0)
    nonprivate = bench.make_strategy("nonprivate", 10, 0.3, 2.0)

    assert local.noise_multiplier == 0.0 and local.clip_norm == 1e300 and local.sampling_rate == 0.5
    assert central.noise_multiplier == 2.0 and central.clip_norm == 0.3
    assert type(nonprivate).__mro__[1].__name__ == "FedAvg" and nonprivate.fraction_fit == 0.5


def test_fewest_clients_is_the_smallest_m_at_the_threshold_or_none(bench):
    assert bench.fewest_clients({10: 0.5, 30: 0.83, 100: 0.9}, 0.83) == 30
    assert bench.fewest_clients({10: 0.5, 30: 0.6}, 0.83) is None


def test_the_answer_and_the_summary_on_hand_made_cells(bench):
    entries = [cell("nonprivate", 4, None, 0.80), cell("nonprivate", 10, None, 0.90),
               cell("central", 4, 2.0, 0.50), cell("central", 10, 2.0, 0.82),
               cell("central", 4, 8.0, 0.85), cell("central", 10, 8.0, 0.89), cell("local", 10, 8.0, 0.2)]

    found = bench.answer(entries)
    line = bench.summary_line(entries, found)

    assert found["nonprivate_accuracy"] == 0.90 and math.isclose(found["threshold"], 0.81)
    assert found["clients_per_round_needed"] == {2.0: 10, 8.0: 4}
    assert line == ("nonprivate_accuracy=0.900 accuracy_eps2_m4=0.500 accuracy_eps2_m10=0.820 accuracy_eps8_m4=0.850 "
                    "accuracy_eps8_m10=0.890 clients_per_round_for_90pct_of_nonprivate_at_eps2=10 "
                    "clients_per_round_for_90pct_of_nonprivate_at_eps8=4 local_accuracy_eps8_m10=0.200")
    entries[3]["accuracy"] = 0.80
    assert "clients_per_round_for_90pct_of_nonprivate_at_eps2=>10" in bench.summary_line(entries, bench.answer(entries))


def test_the_noise_on_the_mean_is_z_over_m_centrally_and_z_over_sqrt_m_locally(bench):
    noise = bench.noise_on_mean({"central": {2.0: {4: 0.8, 10: 1.0}}, "local": {8.0: 3.0}})

    assert noise["central"][2.0] == {4: 0.2, 10: 0.1}
    assert noise["local"][8.0] == {4: 1.5, 10: 3.0 / math.sqrt(10)}


def test_a_cell_reports_the_accountants_epsilon_and_the_worst_clients(bench):
    runs = [{"curve": [0.1, 0.5, 0.75], "max_rounds_taken_part": 1},
            {"curve": [0.1, 0.5, 1.0], "max_rounds_taken_part": 2}]

    central = bench.summarise({"kind": "central", "m": 10, "target": 2.0, "z": 1.1}, runs)
    local = bench.summarise({"kind": "local", "m": 10, "target": 8.0, "z": 3.0}, runs[:1])

    assert central["final_accuracy"] == [0.625, 0.75] and central["accuracy"] == 0.6875
    assert central["epsilon"] == epsilon(1.1, 0.5, 2, 1e-5) and central["max_rounds_taken_part"] == 2
    assert local["epsilon"] == local_dp_epsilon(3.0, 2, 1e-5)
    assert local["epsilon_realised_worst_client"] == local_dp_epsilon(3.0, 1, 1e-5) < local["epsilon"]


def test_without_noise_local_and_central_dp_give_one_model_and_each_kind_runs(bench, digits):
    bench.S["n_clients"] = 40  # digits' first 1347 images over 40 clients

    local = bench.run("local", 10, 0.5, 0.0, 0, digits)
    central = bench.run("central", 10, 0.5, 0.0, 0, digits)
    noised = bench.run("local", 10, 0.5, 5.0, 0, digits)
    nonprivate = bench.run("nonprivate", 10, 0.5, 0.0, 0, digits)

    np.testing.assert_allclose(local["curve"], central["curve"], rtol=0, atol=1e-12)
    assert noised["curve"] != central["curve"] and len(nonprivate["curve"]) == 3
    assert 1 <= central["max_rounds_taken_part"] <= 2 and nonprivate["curve"][-1] > 0.5
