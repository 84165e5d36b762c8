"""Helpers shared by test folders (a unique module name: test folders have no __init__.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_basetemp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's base temp folder, the same for every pytest-xdist worker of one run.

    Under xdist each worker has its own `popen-gwN` base folder; caches that should be built once
    per run (the toy models, guarded by a file lock) live in their common parent.
    """
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
