"""`vlmlab models check` on checkpoints written by stock transformers in a process without vlmlab.

#13 asks that folders other tools wrote work as long as they hold a standard config, processor
and chat template: the tiny checkpoints are re-saved by plain `save_pretrained` (no vlmlab code on
the writing side), then checked through the real CLI. Families whose processors load without
torchvision on this machine.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SAVE = textwrap.dedent(
    """
    import sys
    from transformers import AutoModelForImageTextToText, AutoProcessor
    src, dst = sys.argv[1], sys.argv[2]
    AutoProcessor.from_pretrained(src).save_pretrained(dst)
    AutoModelForImageTextToText.from_pretrained(src).save_pretrained(dst)
    assert not any(name.startswith("vlmlab") for name in sys.modules)
    """
)


@pytest.mark.parametrize("family", ["llava", "gemma3", "idefics3"])
def test_models_check_passes_on_a_folder_saved_by_stock_transformers(family: str, tiny_model, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vlmlab.cli import app

    dst = tmp_path / family
    saved = subprocess.run([sys.executable, "-c", SAVE, str(tiny_model(family)), str(dst)], capture_output=True, text=True,
                           env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert saved.returncode == 0, saved.stderr[-2000:]
    assert (tiny_model(family) / "vlmlab_tiny.json").is_file()  # the source carries vlmlab's record ...
    assert (dst / "config.json").is_file() and not (dst / "vlmlab_tiny.json").exists()  # ... the stock save does not
    checked = CliRunner().invoke(app, ["models", "check", str(dst)], env={"COLUMNS": "200"})
    assert checked.exit_code == 0, checked.output
    assert "generate_seconds" in checked.output and "score_target_tokens" in checked.output
