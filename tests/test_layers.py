"""Imports run one way: cli -> demo -> studies (caption, icl, rating) -> core. Every module imports."""

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
    return found


@pytest.mark.parametrize("module", modules())
def test_module_imports(module):
    importlib.import_module(module)


def test_imports_run_one_way():
    problems = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
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


def test_test_file_names_are_unique():
    """Test folders have no __init__.py, so two test files with one name break collection."""
    tests = Path(__file__).parent
    names = [p.name for p in tests.rglob("*.py") if p.name != "conftest.py"]
    assert sorted({n for n in names if names.count(n) > 1}) == []
