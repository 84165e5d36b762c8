"""Helpers for tests that run the real CLI on bad input and check what a user sees (a unique module name: test
folders have no __init__.py).

    code, out, err = run_cli(["data", "check", ...], capsys)
    assert code == 2 and error_line(err).startswith("error: data.tsv:3: ")

Off a terminal (pytest's capture) a loop that runs over a second prints one plain progress line
when it ends (`vlmlab.progress`); under load that can happen in any test. `error_line` drops those
lines, which have a fixed shape, and asserts that exactly one other line is left: the message.
"""

from __future__ import annotations

import re
import struct
import zlib

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


def decompression_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG of 400 megapixels (all black) in ~50 kB: more than twice PIL's limit."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    pixels = zlib.compressobj(9)
    body = b"".join(pixels.compress(row) for _ in range(height)) + pixels.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))
