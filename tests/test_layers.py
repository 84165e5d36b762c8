"""Imports run one way: cli -> demo -> studies (caption, icl, rating) -> core. Every module imports.

`vlmlab.testing` (fake servers for tests, benchmarks and users) sits at core level: it may import
only core, and no product module imports it.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import vlmlab

SRC = Path(vlmlab.__file__).parent
STUDIES = {"caption", "icl", "rating"}
TOP = {"cli", "demo", "__main__"}


def modules() -> list[str]:
    # __main__ runs the CLI on import; it is covered by the CLI tests.
    return sorted(m.name for m in pkgutil.walk_packages([str(SRC)], prefix="vlmlab.") if m.name != "vlmlab.__main__")


def layer_of(module: str) -> str:
    part = module.split(".")[1] if "." in module else ""
    if part in TOP:
        return part
    if part in STUDIES:
        return f"study:{part}"
    return "core"


def imported_vlmlab_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("vlmlab")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vlmlab"):
            found.add(node.module)
            if node.module == "vlmlab":  # `from vlmlab import testing` names a subpackage
                found |= {f"vlmlab.{a.name}" for a in node.names}
    return found


@pytest.mark.parametrize("module", modules())
def test_module_imports(module):
    importlib.import_module(module)


def test_imports_run_one_way():
    problems = []
    for path in SRC.rglob("*.py"):
        module = module_name(path)
        here = layer_of(module)
        for target in imported_vlmlab_modules(path):
            there = layer_of(target)
            if here == "core" and there != "core":
                problems.append(f"{module} (core) imports {target} ({there})")
            if here.startswith("study:") and there.startswith("study:") and here != there:
                problems.append(f"{module} ({here}) imports another study: {target}")
            if here.startswith("study:") and there in TOP:
                problems.append(f"{module} ({here}) imports {target} ({there})")
    assert not problems, "\n".join(problems)


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")


def test_no_product_module_imports_test_support():
    problems = []
    for path in SRC.rglob("*.py"):
        module = module_name(path)
        if module == "vlmlab.testing" or module.startswith("vlmlab.testing."):
            continue
        problems += [f"{module} imports {t}" for t in imported_vlmlab_modules(path)
                     if t == "vlmlab.testing" or t.startswith("vlmlab.testing.")]
    assert not problems, "\n".join(problems)


def test_import_scan_sees_every_spelling(tmp_path):
    """The scan behind the layer tests finds a test-support import however it is written."""
    path = tmp_path / "m.py"
    path.write_text("import vlmlab.testing\nfrom vlmlab import testing\nfrom vlmlab.testing.wire import Api\n"
                    "def f():\n    from vlmlab.testing import serve\n")
    assert imported_vlmlab_modules(path) == {"vlmlab", "vlmlab.testing", "vlmlab.testing.wire"}


def test_test_file_names_are_unique():
    """Test folders have no __init__.py, so two test files with one name break collection."""
    tests = Path(__file__).parent
    names = [p.name for p in tests.rglob("*.py") if p.name != "conftest.py"]
    assert sorted({n for n in names if names.count(n) > 1}) == []
