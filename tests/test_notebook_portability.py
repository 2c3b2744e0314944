"""The chapters run on Linux, macOS and Windows: no code cell forces a start method or uses
POSIX-only signals, except in a cell that says it is POSIX-only (and skips elsewhere)."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))
POSIX_ONLY = re.compile(r"set_start_method\(|SIGKILL|SIGSTOP|SIGTERM|os\.kill\(|os\.fork\(|signal\.")
MARKER = "# POSIX only"


def code_cells(path):
    cells = json.loads(path.read_text())["cells"]
    return [(k, "".join(c["source"])) for k, c in enumerate(cells) if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_needs_a_posix_only_feature_unless_it_says_so(path):
    offending = [(k, POSIX_ONLY.search(source).group(0)) for k, source in code_cells(path)
                 if POSIX_ONLY.search(source) and not (MARKER in source and "sys.platform" in source)]
    assert not offending, f"{path.name}: cells {offending} need POSIX (mark them '{MARKER}' and skip elsewhere)"


def test_the_check_finds_what_it_forbids(tmp_path):
    notebook = tmp_path / "99_probe.ipynb"
    cell = {"cell_type": "code", "source": ['mp.set_start_method("fork", force=True)\n']}
    notebook.write_text(json.dumps({"cells": [cell]}))
    with pytest.raises(AssertionError, match="set_start_method"):
        test_no_cell_needs_a_posix_only_feature_unless_it_says_so(notebook)
