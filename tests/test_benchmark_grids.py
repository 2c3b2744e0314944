"""benchmarks/rounds_to_accuracy.py widens a learning-rate grid until its best rate is inside."""
import pytest

pytest.importorskip("matplotlib")
from benchmark_helpers import load_benchmark


def curve_reaching_at(round_):
    """A test-accuracy curve that first reaches 1.0 at ``round_`` (None: never)."""
    return [0.0] * (10 if round_ is None else round_) + ([] if round_ is None else [1.0])


@pytest.mark.parametrize("rounds_at, expected_lr, expected_runs", [
    ({1: 9, 2: 7, 4: 5, 8: 4, 16: 6}, 8, [8, 16]),           # best at the top: widened upwards
    ({0.25: 3, 0.5: 2, 1: 4, 2: 6, 4: 8}, 0.5, [0.5, 0.25]),  # best at the bottom: downwards
    ({1: 4, 2: 3, 4: 5}, 2, []),                               # already inside: nothing more run
])
def test_the_best_rate_ends_inside_its_grid(rounds_at, expected_lr, expected_runs):
    benchmark = load_benchmark("rounds_to_accuracy")
    curves = {lr: [curve_reaching_at(rounds_at[lr])] for lr in (1, 2, 4)}
    ran = []

    def run(lr):
        ran.append(lr)
        return [curve_reaching_at(rounds_at[lr])]

    lr, rounds = benchmark.widened_choice(curves, run, target=1.0, budget=10)

    assert (lr, ran) == (expected_lr, expected_runs)
    assert min(curves) < lr < max(curves) and rounds[lr] == [rounds_at[lr]]


def test_a_grid_that_never_reaches_the_target_stops_widening():
    benchmark = load_benchmark("rounds_to_accuracy")
    curves = {lr: [curve_reaching_at(None)] for lr in (1, 2, 4)}

    lr, _ = benchmark.widened_choice(curves, lambda lr: [curve_reaching_at(None)], target=1.0,
                                     budget=10, max_widenings=3)

    assert lr == min(curves) and len(curves) == 6  # three rates added below, then it gave up
