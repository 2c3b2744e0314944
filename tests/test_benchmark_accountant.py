"""The helpers of benchmarks/accountant.py that need no dp-accounting (the script itself runs
where dp-accounting is installed)."""
import math

from benchmark_helpers import load_benchmark

accountant = load_benchmark("accountant")


def test_relative_error_is_against_dp_accounting_and_zero_where_both_are():
    assert accountant.relative_error(1.001, 1.0) == 1.001 - 1.0
    assert accountant.relative_error(0.0, 0.0) == 0.0 and accountant.relative_error(1.0, 0.0) == math.inf


def test_the_summary_reports_the_worst_errors_and_the_speed_ratio():
    rows = [{"rel_err_same_orders": 1e-9, "rel_err_all_orders": 0.5},
            {"rel_err_same_orders": 3e-9, "rel_err_all_orders": 0.1}]
    assert accountant.summary_line(rows, 2.0, 20.0) == \
        "max_rel_err_vs_dp_accounting=3e-09 max_rel_err_all_orders=0.5 speed_vs_dp_accounting=10.0"


def test_the_grid_is_the_issues():
    assert len(accountant.GRID) == 120 and (0.5, 0.001, 10_000, 1e-7) in accountant.GRID
