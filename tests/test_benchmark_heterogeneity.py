"""benchmarks/heterogeneity.py, in its smallest mode, ends with the summary line it saves."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "heterogeneity.py"
KEYS = ("fedprox_gain_synthetic11_stragglers90", "scaffold_vs_fedavg_rounds_ratio_dirichlet0.1",
        "round_time_ratio_fedprox", "round_time_ratio_scaffold")


def test_the_quick_run_prints_and_saves_the_summary_line_with_the_four_figures(tmp_path):
    completed = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
                               capture_output=True, text=True, timeout=120, check=True)

    report = json.loads((tmp_path / "heterogeneity_quick.json").read_text())
    last_line = completed.stdout.strip().splitlines()[-1]
    figures = dict(pair.split("=") for pair in report["summary"].split())
    assert last_line == report["summary"]
    assert tuple(figures) == KEYS
    assert all(float(value) == float(value) for value in figures.values())  # numbers, not NaN
    assert (tmp_path / "heterogeneity_quick.png").stat().st_size > 0
