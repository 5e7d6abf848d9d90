"""The package's shape: no import cycles and shallow import chains between reviewflow modules.

Every import counts, the ones inside functions too (they still run). A package's __init__ is
not a dependency of its modules here: Python runs it, but it holds only a docstring.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "plugins"
PACKAGE = ROOT / "reviewflow"
MAX_CHAIN = 6  # modules in the longest import chain, the importer included


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found.update(t for t in targets if t in MODULES and t != name and not MODULES[t].name == "__init__.py")
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def test_no_import_cycles():
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(GRAPH[node]):
            if state.get(dep) == "open":
                cycles.append(" -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@cache
def chain(name: str) -> tuple[str, ...]:
    longest = max((chain(dep) for dep in GRAPH[name]), key=len, default=())
    return (name, *longest)


def test_import_chains_are_shallow():
    deepest = max((chain(name) for name in GRAPH), key=len)
    assert len(deepest) <= MAX_CHAIN, " -> ".join(deepest)


def test_every_folder_says_what_lives_there():
    for init in PACKAGE.rglob("__init__.py"):
        if init.parent == PACKAGE:
            continue
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} has no module docstring"
