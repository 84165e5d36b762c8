"""One full demo run per test run, shared by the science checks and the report tests.

The toy models are built into a fixed cache under the pytest base temp folder (never the user's
`~/.cache/vlmlab`), so the run measures a first-time build like a fresh machine does.

Under pytest-xdist every worker is its own session, so a plain session fixture built the full demo
once per worker (two demos per suite: 1,125 s + 887 s of fixture time under load). The demo now
lives in the workers' common base folder behind a file lock: the first worker to ask runs it, a
later one waits and reads the finished run's `summary.json`/`timings.json` instead of running it
again. Tests that touch the folder after it is built (`demo_folder_lock`) hold the same lock.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from filelock import FileLock

from vlmlab_test_support import shared_basetemp


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_basetemp(tmp_path_factory) / "vlmlab-home" / "toymodels"


def _demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = shared_basetemp(tmp_path_factory) / "demo-full"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def demo_folder_lock(tmp_path_factory: pytest.TempPathFactory):
    """Context manager: hold the demo folder's lock (one writer or checker at a time across workers)."""
    lock = FileLock(str(_demo_root(tmp_path_factory) / "demo.lock"))

    @contextmanager
    def held() -> Iterator[None]:
        with lock:
            yield

    return held


@pytest.fixture(scope="session")
def demo_result(tmp_path_factory: pytest.TempPathFactory, demo_cache: Path, demo_folder_lock):
    """`run_demo` (full plan, seed 0), run once per test run in the workers' shared temp folder."""
    from vlmlab.demo import run_demo
    from vlmlab.demo.run import DemoResult

    root = _demo_root(tmp_path_factory)
    out, done = root / "demo", root / "finished"
    with demo_folder_lock():
        if done.is_file():
            reports = {p.suffix.lstrip("."): p for p in out.glob("report.*")}
            return DemoResult(out=out, summary=json.loads((out / "summary.json").read_text()),
                              timings=json.loads((out / "timings.json").read_text()), report=reports)
        result = run_demo(out, quick=False, seed=0, cache_root=demo_cache)
        done.write_text("ok\n")
        return result
