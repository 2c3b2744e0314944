"""Every file a chapter names is one click away: each relative link in a notebook resolves to a
file of this repository (JupyterLab serves the repository root, see course.py)."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def relative_links(notebook):
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for target in LINK.findall("".join(cell["source"])):
                if not re.match(r"[a-z]+:|#", target):  # not http:, mailto:, nor an anchor
                    yield target.split("#")[0]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_relative_link_resolves_to_a_file_of_the_repository(notebook):
    for target in relative_links(notebook):
        path = (notebook.parent / target).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"{notebook.name} links to {target}"


def test_the_files_the_chapters_name_are_linked():
    linked = {target for notebook in NOTEBOOKS for target in relative_links(notebook)}

    assert {"../flcourse/data/partition.py", "../flcourse/distributed/backends.py", "../README.md",
            "../benchmarks/rounds_to_accuracy.py", "../flcourse/exercises/ch01.py"} <= linked
