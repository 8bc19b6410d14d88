"""The import graph points one way: the library never imports the experiments layer, and no two packages import
each other (directly or around a loop). Every import counts, those inside functions included."""

import ast
from pathlib import Path

import starquad

ROOT = Path(starquad.__file__).parent
EXPERIMENTS = {"analysis", "cli", "__main__"}  # the report and its sections, the NAS comparison; the CLI on top
TOP = {"__init__"}  # the package's front door: lazy names for the library's entry points


def _unit(path: Path) -> str:
    """The package (``models``) or top-level module (``errors``) a file belongs to."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[0]


def _imported_units(path: Path) -> set[str]:
    units = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])  # fmt: skip
        for name in names:
            parts = name.split(".")
            if parts[0] == "starquad" and len(parts) > 1:
                units.add(parts[1])
            elif parts[0] == "starquad" and isinstance(node, ast.ImportFrom):  # from starquad import models
                units.update(a.name for a in node.names)
    return units


def import_graph() -> dict[str, set[str]]:
    """unit -> the units it imports (packages and top-level modules of starquad)."""
    files = list(ROOT.rglob("*.py"))
    units = {_unit(p) for p in files}
    graph: dict[str, set[str]] = {u: set() for u in units}
    for path in files:
        graph[_unit(path)] |= (_imported_units(path) & units) - {_unit(path)}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_library_never_imports_the_experiments_layer():
    graph = import_graph()
    library = set(graph) - EXPERIMENTS - TOP
    assert {"ops", "models", "data", "train", "bench", "deploy", "nas"} <= library
    upward = sorted(f"{unit} -> {dep}" for unit in library for dep in graph[unit] if dep in EXPERIMENTS | TOP)
    assert upward == []


def test_no_import_cycles_between_packages():
    graph = import_graph()
    library = {u: deps - TOP for u, deps in graph.items() if u not in TOP}
    assert _cycles(library) == []


def test_the_checks_see_a_cycle_and_read_imports():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _imported_units(Path(starquad.__file__)) >= {"models", "errors", "_lazy"}
