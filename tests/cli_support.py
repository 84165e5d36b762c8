"""Helpers for tests that run the real CLI and check what a user sees (a unique module name: test
folders have no __init__.py).

    code, out, err = run_cli(["data", "check", ...], capsys)
    assert code == 2 and error_line(err).startswith("error: data.tsv:3: ")

Off a terminal (pytest's capture) a loop that runs over a second prints one plain progress line
when it ends (`vlmlab.progress`); under load that can happen in any test. `error_line` drops those
lines, which have a fixed shape, and asserts that exactly one other line is left: the message.
"""

from __future__ import annotations

import re

import pytest

# `checking images: 20/20 (100%) 14.31 it/s, elapsed 1s` (vlmlab.progress.PlainProgress._format)
PROGRESS_LINE = re.compile(r"^.+: \d+(\.\d+)?(/\d+(\.\d+)? \(\d+%\))? \d+\.\d\d it/s, elapsed \w+(, eta \w+)?$")


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `vlmlab ARGV` run in this process through `vlmlab.cli.main`."""
    from vlmlab.cli import main

    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def error_line(err: str) -> str:
    """The one line of `err` that is not a progress line; fails unless there is exactly one."""
    lines = [line for line in err.strip().splitlines() if not PROGRESS_LINE.match(line)]
    assert len(lines) == 1, f"expected one error line on stderr, got {len(lines)}:\n{err}"
    return lines[0]
