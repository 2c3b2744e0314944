"""The package's shape: no import cycle, no private name borrowed across modules, small modules.

The import graph is read from the source with ``ast``, so a test fails on the line that adds a
cycle even when the import hides inside a function (such an import only moves the cycle from
import time to call time). Modules are named as Python names them: a package by its
``__init__`` (``flcourse.models`` is ``flcourse/models/__init__.py``).

How an import becomes an edge:

- ``import a.b`` and ``from a import b`` where ``a.b`` is a module of ours: an edge to ``a.b``;
- ``from a import name`` where ``name`` is not a module: an edge to ``a``, a package's
  ``__init__`` if ``a`` is a package. So a package's ``__init__`` may import its submodules
  (``from .base import Model``), but a submodule that takes a name from its own package's
  ``__init__`` (``from . import helper``, ``from flcourse import load_digits``) closes a cycle.

Python also runs every parent package's ``__init__`` before a submodule; those implicit imports
are not edges (each parent is already being imported, so they cannot fail on a missing name).
Dynamic imports (``importlib.import_module``) are not seen.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "flcourse"
MAX_LINES = 320

# Modules over MAX_LINES, each named with the reason it may be: nothing else belongs here.
OVER_MAX_LINES = {
    "flcourse/exercises/ch06.py",  # four self-checks with their hints: 322 lines, one concept
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def resolve(name: str, node: ast.ImportFrom) -> str:
    """The absolute module name ``from <node.module> import ...`` refers to, inside ``name``."""
    if node.level == 0:
        return node.module
    package = name if is_package(name) else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports(name: str):
    """Yield (imported module, the names taken from it or None, line) for every import in
    module ``name``, at module level or inside a function."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            yield resolve(name, node), [alias.name for alias in node.names], node.lineno


def edges(name: str) -> dict:
    """{module of ours that ``name`` imports: the first line that imports it}."""
    found = {}
    for target, names, line in imports(name):
        submodules = [f"{target}.{n}" for n in names or () if f"{target}.{n}" in MODULES]
        plain = names is None or len(submodules) < len(names)
        for module in submodules + ([target] if plain else []):
            if module in MODULES:  # a module that imports itself makes a cycle of one
                found.setdefault(module, line)
    return found


def find_cycle(graph: dict) -> list | None:
    """One cycle of ``graph`` ({node: successors}) as a list of nodes, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for successor in graph[node]:
            if state.get(successor) == "open":
                return stack[stack.index(successor):] + [successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def describe(cycle: list, graph_lines: dict) -> str:
    steps = [f"{a} (line {graph_lines[a][b]}) imports {b}" for a, b in zip(cycle, cycle[1:])]
    return "import cycle:\n  " + "\n  ".join(steps)


def test_the_import_graph_of_the_package_has_no_cycle():
    graph_lines = {name: edges(name) for name in MODULES}

    cycle = find_cycle({name: sorted(targets) for name, targets in graph_lines.items()})

    assert cycle is None, describe(cycle, graph_lines)


def test_the_graph_sees_the_imports_that_matter():
    # the layers below import the ones beneath them, and packages import their submodules
    graph = {name: edges(name) for name in MODULES}

    assert "flcourse.models.base" in graph["flcourse.models"]
    assert "flcourse.models" in graph["flcourse.optim.sgd"]
    assert "flcourse.runtime" in graph["flcourse.distributed.backends"]
    assert "flcourse.distributed.backends" in graph["flcourse.distributed.data_parallel"]


@pytest.mark.parametrize("source, expected", [
    ("from .base import Model", {"flcourse.models.base"}),
    ("from . import base", {"flcourse.models.base"}),
    ("from . import Model", {"flcourse.models"}),
    ("from .. import optim, load_digits", {"flcourse.optim", "flcourse"}),
    ("import flcourse.runtime.wire", {"flcourse.runtime.wire"}),
    ("def f():\n    from flcourse import models", {"flcourse.models"}),
])
def test_an_import_becomes_the_edge_the_docstring_says(source, expected, tmp_path, monkeypatch):
    path = tmp_path / "probe.py"
    path.write_text(source)
    monkeypatch.setitem(MODULES, "flcourse.models.probe", path)

    assert set(edges("flcourse.models.probe")) == expected


def test_find_cycle_reports_the_modules_in_order():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": [], "c": ["a"]}) is None


def private_imports(name: str):
    """Yield "module line N: from X import _name" for each private name ``name`` borrows."""
    for target, names, line in imports(name):
        for borrowed in names or ():
            private = borrowed.startswith("_") and not (borrowed.startswith("__") and borrowed.endswith("__"))
            if private and f"{target}.{borrowed}" not in MODULES:  # a private module is fine
                yield f"{name} line {line}: from {target} import {borrowed}"


def test_no_module_imports_another_modules_private_name():
    # a private *module* with public names (flcourse._validation) is how a package shares
    # helpers; a private name (_softmax) is the module's own business
    borrowed = [found for name in MODULES for found in private_imports(name)]

    assert borrowed == [], "private names imported from another module:\n" + "\n".join(borrowed)


def test_every_module_reads_in_one_sitting():
    lengths = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in MODULES.values()}

    offenders = {path: n for path, n in lengths.items() if n > MAX_LINES and path not in OVER_MAX_LINES}

    assert offenders == {}, f"modules over {MAX_LINES} lines: {offenders}"


def test_the_allowlist_names_only_modules_still_over_the_limit():
    lengths = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in MODULES.values()}

    stale = sorted(path for path in OVER_MAX_LINES if lengths.get(path, 0) <= MAX_LINES)

    assert stale == [], f"remove from OVER_MAX_LINES (gone, or now short enough): {stale}"
