"""A truncated or empty model.safetensors is one line naming the file, exit 2 (was a bare SafetensorError)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_support import error_line, run_cli


@pytest.mark.parametrize("damage", ["empty", "half", "one byte short"])
def test_damaged_safetensors(damage: str, tiny_qwen2_vl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_qwen2_vl, model)
    weights = model / "model.safetensors"
    raw = weights.read_bytes()
    weights.write_bytes({"empty": b"", "half": raw[: len(raw) // 2], "one byte short": raw[:-1]}[damage])
    before = sorted(p.name for p in model.iterdir())
    code, out, stderr = run_cli(["models", "check", str(model)], capsys)
    err = error_line(stderr)  # exactly one line besides plain progress lines
    assert code == 2 and out == ""
    assert err.startswith(f"error: {weights}: ") and "re-download or rebuild the checkpoint" in err
    assert ("0 bytes" in err) if damage == "empty" else ("truncated or corrupt weights file" in err)
    assert sorted(p.name for p in model.iterdir()) == before
