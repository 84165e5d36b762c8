"""Progress off a terminal: periodic plain lines with n/N, rate and ETA; wide tables."""

from __future__ import annotations

import io

import pytest

import vlmlab.progress as progress
from vlmlab.progress import PlainProgress, make_console, progress_bar


def test_plain_lines_have_stage_count_rate_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 0.0, 5.0, 20.0, 40.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    bar = PlainProgress(stream=out, interval=10)
    task = bar.add_task("fine-tune", total=8)           # t=0 (start and last line)
    bar.advance(task, 1)                                # t=0: within the interval, quiet
    bar.advance(task, 1)                                # t=5: quiet
    bar.advance(task, 2)                                # t=20: a line
    bar.advance(task, 4)                                # t=40: complete, a line
    assert out.getvalue().splitlines() == [
        "fine-tune: 4/8 (50%) 0.20 it/s, elapsed 20s, eta 20s",
        "fine-tune: 8/8 (100%) 0.20 it/s, elapsed 40s",
    ]


def test_disabled_plain_progress_is_silent() -> None:
    out = io.StringIO()
    bar = PlainProgress(stream=out, interval=0)
    bar.disable = True
    bar.advance(bar.add_task("x", total=1))
    assert out.getvalue() == ""


def test_off_a_terminal_progress_bar_is_plain_and_tables_do_not_wrap_paths(capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(progress_bar(), PlainProgress)  # pytest captures: not a terminal
    from rich.table import Table

    path = "runs/caption/toy-panorama/tiny-qwen2-vl-zero-shot_img56_tok32/generate/generation.jsonl"
    table = Table("run", "status")
    table.add_row(path, "complete")
    make_console().print(table)
    assert path in capsys.readouterr().out
