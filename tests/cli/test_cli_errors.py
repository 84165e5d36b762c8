"""CLI-wide error handling: --debug keeps exit 2, disk/permission errors are one line, GPU ids
are checked, `runs list/show` on damaged run folders, files follow the umask."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from vlmlab.cli import main
from vlmlab.runs import Run, atomic_write_json

REPO = Path(__file__).resolve().parents[2]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err.strip()


def _run_folder(root: Path, name: str, config: dict) -> Path:
    run = Run.open(root / name, config, stage="test-stage")
    run.append("a", {"status": "ok"})
    run.finish("complete")
    return root / name


def test_debug_keeps_exit_code_and_shows_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["--debug", "toyworld", "generate", "faces", "--out", str(tmp_path / "f"), "--seed", "-1"], capsys)
    assert code == 2
    assert "Traceback" in err and err.splitlines()[-1] == "error: toyworld --seed must be an integer from 0 to 4294967295, got -1"


def test_read_only_output_folder_in_runs_report_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    _run_folder(tmp_path, "a", {"x": 1})
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(kwargs.get("dir", tmp_path)))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    code, _, err = _cli(["runs", "report", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("error: ") and "Read-only file system; choose a writable output folder" in err
    assert not (tmp_path / "report.md").exists() and not (tmp_path / "report.html").exists()


def test_disk_full_while_writing_the_combined_report_leaves_none_of_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from vlmlab.report.document import Report, write_report
    from vlmlab.report.plots import bar_chart

    run = _run_folder(tmp_path, "a", {"x": 1})
    stage = Report("stage")
    stage.figure(bar_chart(["a"], {"acc": [0.5]}), "acc.png")
    write_report(stage, run)
    import vlmlab.report.document as document

    real = document.atomic_write_text
    calls = []

    def full_after_one(path, text):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, text)

    monkeypatch.setattr(document, "atomic_write_text", full_after_one)
    code, _, err = _cli(["runs", "report", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 0 and "No space left on device; free disk space or write elsewhere" in err
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("combined")]
    assert (run / "report.json").is_file() and (run / "acc.png").is_file()  # the stage's report untouched


def test_unrelated_os_errors_still_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    import vlmlab.cli.runs as runs_cli

    def boom(*a, **k):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(runs_cli, "find_runs", boom)
    with pytest.raises(OSError):
        main(["runs", "list", "."])


def test_gpus_on_a_cpu_only_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "configs/caption/toy.yaml", tmp_path / "toy.yaml")
    code, _, err = _cli(["caption", "run", "toy.yaml", "--gpus", "0,1"], capsys)
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("error: --gpus 0,1: this machine has no GPU (GPU ids [0, 1] do not exist); drop --gpus")
    assert not (tmp_path / "runs").exists()


def test_runs_list_shows_a_broken_run_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run_folder(tmp_path, "good", {"x": 1})
    bad = _run_folder(tmp_path, "bad", {"x": 2})
    (bad / "run.json").write_text("{trunc")
    code, out, err = _cli(["runs", "list", str(tmp_path)], capsys)
    assert code == 0
    assert "broken" in out and "good" in out and "complete" in out and "not valid JSON" in out
    assert err == "1 broken run folder(s); re-run their stage with --overwrite"


def test_runs_show_on_a_malformed_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run_folder(tmp_path, "r", {"x": 1})
    (run / "config.yaml").write_text("x: [1,\n")
    code, out, err = _cli(["runs", "show", str(run)], capsys)
    assert code == 2 and out == "" and err.count("\n") == 0
    assert err.startswith(f"error: {run}/config.yaml: line ") and "re-run its stage with --overwrite" in err


def test_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "m.json", {"a": 1})
        os.umask(0o077)
        atomic_write_json(tmp_path / "private.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
