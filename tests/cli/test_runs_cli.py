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


def test_runs_report_collects_reports_and_metrics(tmp_path, capsys):
    from vlmlab.report import Report, Table, write_report
    from vlmlab.report.plots import bar_chart

    a = Run.open(tmp_path / "study" / "a", {"a": 1}, stage="caption.score")
    a.append("x", {"status": "ok"})
    a.write_metrics({"CIDEr": 0.42, "BLEU": {"4": 0.1}})
    b = Run.open(tmp_path / "study" / "b", {"b": 1}, stage="icl.eval")
    sub = Report("eval of <b>")
    sub.table(Table(["method", "acc"], [["random", 0.3], ["<script>x</script>", 0.5]], best={"acc": "max"}))
    sub.figure(bar_chart(["random", "selector"], {"acc": [0.3, 0.5]}), "acc")
    write_report(sub, b.dir)
    with pytest.raises(SystemExit):
        main(["runs", "report", str(tmp_path / "study")])
    html = (tmp_path / "study" / "combined-report.html").read_text()
    md = (tmp_path / "study" / "combined-report.md").read_text()
    assert "caption.score" in html and "icl.eval" in html and "0.4200" in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert html.count("data:image/png") == 1
    assert "combined-figures/b__acc.png" in md and (tmp_path / "study" / "combined-figures" / "b__acc.png").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["runs", "report", str(tmp_path / "nothing")])
    assert exit_info.value.code == 2


def test_runs_report_on_a_stage_keeps_its_report_and_shows_record_tables(tmp_path: Path) -> None:
    """`runs report runs/icl/eval-a` used to overwrite the stage's own report.md with a generic page
    and showed no accuracies (metrics lists were dropped)."""
    run = Run.open(tmp_path / "eval-a", {"e": 1}, stage="icl-eval")
    run.append("q1", {"status": "ok"})
    cells = [{"method": "text", "shots": 2, "accuracy": 0.71, "ci_low": 0.6, "ci_high": 0.8, "n": 60},
             {"method": "random", "shots": 2, "accuracy": 0.36, "ci_low": 0.25, "ci_high": 0.47, "n": 60}]
    run.write_metrics({"cells": cells, "n_questions": 60})
    (run.dir / "report.md").write_text("# the stage's own report\n")
    with pytest.raises(SystemExit) as exc:
        main(["runs", "report", str(run.dir)])
    assert exc.value.code == 0
    assert (run.dir / "report.md").read_text() == "# the stage's own report\n"
    md = (run.dir / "combined-report.md").read_text()
    assert "| method | accuracy | ci_high | ci_low | n | shots |" in md
    assert "| text | 0.7100 | 0.8000 | 0.6000 | 60 | 2 |" in md
    assert not (run.dir / "combined-figures").exists()  # no figures, no empty folder
