"""The package stays easy to find one's way in: few top-level modules, no module over 400
lines, no function over 50, and no import cycle between modules (imports inside functions
included: they hide cycles, they do not remove them)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.lint

PACKAGE = ROOT / "src" / "eval_firewall"
MAX_TOP_LEVEL_MODULES = 14
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50

# Known excesses, for a module or function that must wait to be split. These lists only
# shrink: an entry that no longer exceeds fails the test until it is taken off. Empty now.
MODULES_ALLOWED_LONGER: set[str] = set()
FUNCTIONS_ALLOWED_LONGER: set[str] = set()
# Imports (importer, imported) that close a known cycle; none today.
IMPORTS_ALLOWED_IN_CYCLES: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _is_type_checking(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if isinstance(node, ast.stmt) and _is_type_checking(node):
            stack.extend(node.orelse)       # type: ignore[attr-defined]
            continue
        stack.extend(ast.iter_child_nodes(node))


def _targets(name: str, path: Path, node: ast.Import | ast.ImportFrom,
             modules: dict[str, Path]) -> set[str]:
    """The package's modules one import statement of module ``name`` (at ``path``) loads."""
    def nearest(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found: set[str | None] = set()
    if isinstance(node, ast.Import):
        found = {nearest(a.name) for a in node.names if a.name.split(".")[0] == "eval_firewall"}
    else:
        if node.level:
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        if base.split(".")[0] != "eval_firewall":
            return set()
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            found.add(sub if sub in modules else nearest(base))
    return {t for t in found if t is not None and t != name}


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in it, outside TYPE_CHECKING)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = set()
        for node in _imports(tree):
            graph[name] |= _targets(name, path, node, modules)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path: list[str] = [start]
        iters = [iter(sorted(graph[start]))]
        state[start] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(sorted(graph.get(nxt, ()))))
    return None


def _functions() -> Iterator[tuple[str, int]]:
    """(``file::qualified.name``, lines from ``def`` to its last line) of every function."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        stack: list[tuple[ast.AST, str]] = [(tree, "")]
        while stack:
            node, prefix = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    qualified = f"{prefix}{child.name}"
                    if not isinstance(child, ast.ClassDef):
                        assert child.end_lineno is not None
                        yield f"{_rel(path)}::{qualified}", child.end_lineno - child.lineno + 1
                    stack.append((child, qualified + "."))
                else:
                    stack.append((child, prefix))


def test_few_modules_at_the_top_level():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, (
        f"{len(top)} modules directly in src/eval_firewall (at most {MAX_TOP_LEVEL_MODULES}): "
        "put new ones in the package of their stage: " + ", ".join(top))


def test_no_module_is_too_long():
    long = {_rel(p): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    over = {k: v for k, v in long.items() if k not in MODULES_ALLOWED_LONGER}
    assert not over, f"modules over {MAX_MODULE_LINES} lines: split them by what they hold: {over}"
    assert MODULES_ALLOWED_LONGER <= set(long), (
        "no longer too long, take them off MODULES_ALLOWED_LONGER: "
        f"{sorted(MODULES_ALLOWED_LONGER - set(long))}")


def test_no_function_is_too_long():
    long = {name: n for name, n in _functions() if n > MAX_FUNCTION_LINES}
    over = {k: v for k, v in long.items() if k not in FUNCTIONS_ALLOWED_LONGER}
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines: extract helpers: {over}"
    assert FUNCTIONS_ALLOWED_LONGER <= set(long), (
        "no longer too long, take them off FUNCTIONS_ALLOWED_LONGER: "
        f"{sorted(FUNCTIONS_ALLOWED_LONGER - set(long))}")


def test_no_import_cycle():
    graph = import_graph()
    for importer, imported in IMPORTS_ALLOWED_IN_CYCLES:
        assert imported in graph.get(importer, ()), (
            f"{importer} no longer imports {imported}: take it off IMPORTS_ALLOWED_IN_CYCLES")
        graph[importer].discard(imported)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_see_what_they_check():
    """The graph follows relative imports, imports inside functions and ``from pkg import
    submodule``, skips TYPE_CHECKING blocks, and the cycle finder finds a cycle."""
    graph = import_graph()
    assert "eval_firewall.safeio.paths" in graph["eval_firewall.config.load"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import x\n"
                     "def f():\n    from .y import z\n")
    assert sorted(n.module or "" for n in _imports(tree) if isinstance(n, ast.ImportFrom)) == [
        "typing", "y"]
