"""Library progress bars and warnings are hidden unless `vlmlab --library-output` asks for them.

Run as the installed program in a subprocess (logging and warning filters are process-wide state):
loading a tiny checkpoint makes transformers draw its "Loading weights" bar on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def models_check(model: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    # a CLI run earlier in this test process may have set the libraries' switches (quiet_libraries)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSFORMERS_", "DATASETS_", "HF_DATASETS_", "HF_HUB_DISABLE"))}
    return subprocess.run([sys.executable, "-m", "vlmlab", *flags, "models", "check", str(model)], capture_output=True,
                          text=True, env=env | {"HF_HUB_OFFLINE": "1"}, timeout=300)


@pytest.mark.slow  # two CLI subprocesses that each load a model (~12 s each under load)
def test_library_output_is_hidden_by_default_and_shown_on_request(tiny_qwen2_vl: Path) -> None:
    quiet = models_check(tiny_qwen2_vl)
    assert quiet.returncode == 0, quiet.stderr
    assert "generated_text" in quiet.stdout
    assert quiet.stderr == ""  # no bar, no warning, nothing else either
    loud = models_check(tiny_qwen2_vl, "--library-output")
    assert loud.returncode == 0, loud.stderr
    assert "Loading weights" in loud.stderr and "it/s]" in loud.stderr  # transformers' tqdm bar
    assert loud.stdout.count("generated_text") == 1
