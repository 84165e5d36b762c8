"""No import circles among vlmlab's modules, function-level imports included.

A function-level import that closes a circle works only because of when it runs; the next
refactor that moves it to the top breaks the import. The graph below is read from the source with
`ast` (every `import` anywhere in a module, `if TYPE_CHECKING:` blocks included), so it also sees
the imports a test run never executes. An edge goes to the module named, or to the submodule when
`from package import name` names one; the implicit import of a parent package is not an edge
(every package's `__init__` would otherwise be in a circle with the submodules it re-exports).
"""

from __future__ import annotations

import ast
from pathlib import Path

import vlmlab

SRC = Path(vlmlab.__file__).parent

# Circles allowed for now, each one strongly connected set of modules with the reason; the second
# structure pass broke the last two (data.sources <-> data.tables, models.loading <-> models.registry).
KNOWN_CIRCLES: dict[frozenset[str], str] = {}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The vlmlab modules `path` imports anywhere (top level, functions, classes, TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, path.name == "__init__.py")
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {m for m in found if m in known and m != module}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {m: imports_of(p, m, known) for m, p in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected sets of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.add(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(frozenset(members))
    return found


def one_cycle(graph: dict[str, set[str]], members: frozenset[str]) -> list[str]:
    """A shortest circle through the alphabetically first member, for the failure message."""
    start = min(members)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    return paths[node] + [start]
                if child not in paths:
                    paths[child] = paths[node] + [child]
                    nxt.append(child)
        frontier = nxt
    return sorted(members)


def test_no_import_circles():
    graph = import_graph()
    found = circles(graph)
    new = [" -> ".join(one_cycle(graph, c)) for c in found if c not in KNOWN_CIRCLES]
    gone = [sorted(c) for c in KNOWN_CIRCLES if c not in found]
    assert not new, "import circles:\n" + "\n".join(new)
    assert not gone, f"these circles are broken now; delete them from KNOWN_CIRCLES: {gone}"


def test_the_scan_sees_function_level_relative_and_submodule_imports(tmp_path):
    pkg = tmp_path / "vlmlab" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from vlmlab.pkg import a\n")
    (pkg / "a.py").write_text("def f():\n    from . import b\n    return b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n")
    (pkg / "c.py").write_text("import vlmlab.pkg.a\nfrom vlmlab.pkg.b import thing\n")
    known = {"vlmlab.pkg", "vlmlab.pkg.a", "vlmlab.pkg.b", "vlmlab.pkg.c"}
    assert imports_of(pkg / "__init__.py", "vlmlab.pkg", known) == {"vlmlab.pkg.a"}
    assert imports_of(pkg / "a.py", "vlmlab.pkg.a", known) == {"vlmlab.pkg.b"}
    assert imports_of(pkg / "b.py", "vlmlab.pkg.b", known) == {"vlmlab.pkg.a"}
    assert imports_of(pkg / "c.py", "vlmlab.pkg.c", known) == {"vlmlab.pkg.a", "vlmlab.pkg.b"}
    graph = {m: imports_of(tmp_path / Path(*m.split("."))
                           .with_suffix(".py") if m != "vlmlab.pkg" else pkg / "__init__.py", m, known) for m in known}
    assert circles(graph) == [frozenset({"vlmlab.pkg.a", "vlmlab.pkg.b"})]
    assert one_cycle(graph, frozenset({"vlmlab.pkg.a", "vlmlab.pkg.b"})) == ["vlmlab.pkg.a", "vlmlab.pkg.b", "vlmlab.pkg.a"]
