"""`vlmlab demo` through the real CLI: help, and a folder holding another demo is a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmlab.cli import main
from vlmlab.runs import Run


def test_help_lists_the_options(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--quick", "--seed", "--overwrite"):
        assert option in text


def test_folder_with_another_demo_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    Run.open(out / "demo", {"plan": {"quick": True, "seed": 7}, "toy_models": {}}, stage="demo")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(out), "--quick"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--overwrite" in err and str(out) in err
    assert not (out / "data").exists()  # refused before any work


def test_scripts_demo_runs_the_demo_command() -> None:
    script = (Path(__file__).parents[2] / "scripts" / "demo.sh").read_text()
    assert ".venv/bin/vlmlab demo" in script
