"""One full demo run per test session, shared by the science checks and the report tests.

The toy models are built into a fixed cache under the pytest base temp folder (never the user's
`~/.cache/vlmlab`), so the run measures a first-time build like a fresh machine does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmlab_test_support import shared_basetemp


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_basetemp(tmp_path_factory) / "vlmlab-home" / "toymodels"


@pytest.fixture(scope="session")
def demo_result(tmp_path_factory: pytest.TempPathFactory, demo_cache: Path):
    """`run_demo` (full plan, seed 0) in a session temp folder."""
    from vlmlab.demo import run_demo

    return run_demo(tmp_path_factory.mktemp("demo") / "demo", quick=False, seed=0, cache_root=demo_cache)
