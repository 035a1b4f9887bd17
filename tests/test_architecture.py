"""The import graph stays the one ARCHITECTURE.md draws: acyclic, and the store below feed logic.

Imports are read from the source with `ast`, at any depth (an import inside a
function is still an edge: hiding a cycle there is what this test is for).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("feeds", "store")
# What the store may know of the feed side: the records it stores and the errors it raises.
STORE_MAY_IMPORT = {"feeds", "feeds.model", "feeds.errors"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from feeds.x import y` may name a submodule y, or a name in feeds.x.
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def without_package_faces(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ re-exporting its modules is not a cycle through the package."""
    packages = {m for m in graph if (ROOT / Path(*m.split(".")) / "__init__.py").exists()}
    return {m: {e for e in edges if e not in packages} for m, edges in graph.items()}


def test_no_import_cycle() -> None:
    cycle = find_cycle(without_package_faces(import_graph()))
    assert cycle is None, " -> ".join(cycle or [])


def test_store_imports_only_model_and_errors_from_feeds() -> None:
    graph = import_graph()
    wrong = {
        (m, e)
        for m, edges in graph.items()
        if m.startswith("store")
        for e in edges
        if e.startswith("feeds") and e not in STORE_MAY_IMPORT
    }
    assert not wrong


def test_cycle_finder_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
