"""The import graph of our own packages: no cycles, and arrows point down the layers of DESIGN.md.

A cycle works until someone imports the modules in the other order (or moves an import from a
function to the top of a file), so the check is over the source, not over what one interpreter
happens to import: every `import` statement counts, the ones inside functions and under
`if TYPE_CHECKING:` too (a type-only import is still a dependency that the next edit may make
real).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("warroom", "connection", "workflows", "activities", "workers", "starters", "bench")

# None: the import graph is acyclic. A cycle is a design question, not a list entry.
KNOWN_CYCLES: list[frozenset[str]] = []

# What each layer must never import (a module of that package, or the package itself).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "warroom": ("temporalio", "connection", "workflows", "activities", "workers", "starters", "bench"),
    "connection": ("workflows", "activities", "workers", "starters", "bench"),
    "workflows": ("connection", "workers", "starters", "bench"),
    "activities": ("connection", "workflows", "workers", "starters", "bench"),
    "workers": ("starters", "bench"),
    "starters": ("bench",),
    # The HTTP API connects to Temporal like any client; running a worker is the dev stack's job.
    "starters.api": ("workers",),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


MODULES = our_modules()


def imported_names(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every dotted name the module imports (with the line), relative imports resolved."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno  # a submodule, or a name in `base`


def resolve(dotted: str) -> str | None:
    """The module of ours that importing `dotted` runs, or None for anything else."""
    parts = dotted.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = {resolve(dotted) for dotted, _ in imported_names(name, path)}
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_every_package():
    assert {name.split(".")[0] for name in MODULES} == set(PACKAGES)
    graph = import_graph()
    assert "starters.api.deps" in graph["starters.api.incidents"]  # a plain top-level import
    assert "warroom.im.lark.checks" in graph["warroom.im.lark.adapter"]  # one inside a function


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph())
    unexpected = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    assert not unexpected, f"import cycles: {unexpected}"


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_downwards_only(layer: str):
    banned = FORBIDDEN[layer]
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {dotted}"
        for name, path in MODULES.items()
        if name == layer or name.startswith(layer + ".")
        for dotted, line in imported_names(name, path)
        if dotted.split(".")[0] in banned
    ]
    assert not offences, "\n".join(offences)
