"""`vlmlab runs` through the real entry point: tables, JSON, and one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest

from vlmlab.cli import main
from vlmlab.runs import Run


def test_runs_list_and_show(tmp_path, capsys):
    run = Run.open(tmp_path / "runs" / "one", {"a": 1}, stage="caption.generate")
    run.append("x", {"status": "ok"})
    run.write_metrics({"CIDEr": 0.42})
    with pytest.raises(SystemExit) as exit_info:
        main(["runs", "list", str(tmp_path / "runs")])
    assert exit_info.value.code in (0, None)
    assert "caption.generate" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["runs", "show", str(tmp_path / "runs" / "one"), "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert shown["metrics"] == {"CIDEr": 0.42} and shown["items"] == 1


def test_runs_show_bad_folder_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["runs", "show", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a run folder" in err and "Traceback" not in err
