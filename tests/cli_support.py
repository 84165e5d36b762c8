"""Helpers for tests that run the real CLI on bad input and check what a user sees (a unique module name: test
folders have no __init__.py).

    code, out, err = run_cli(["data", "check", ...], capsys)
    assert code == 2 and error_line(err).startswith("error: data.tsv:3: ")

Off a terminal (pytest's capture) a loop that runs over a second prints one plain progress line
when it ends (`vlmlab.progress`); under load that can happen in any test. `error_line` drops those
lines, which have a fixed shape, and asserts that exactly one other line is left: the message.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any, Callable

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


def read_only(monkeypatch: pytest.MonkeyPatch, folder: Path, err_no: int = errno.EROFS) -> None:
    """Make the OS refuse every change inside `folder` (creating it too), as a read-only mount
    (EROFS) or a folder the user may not write to (EACCES) does.

    A simulation at the `os` / `open` layer, because tests run as root here, and root writes into a
    chmod 555 folder anyway. Every write path Python code takes passes through these calls:
    `open`/`io.open` (pathlib, numpy, json), `os.open` (tempfile), `os.mkdir`, `os.replace`.
    """
    root = os.path.abspath(folder)
    reason = os.strerror(err_no)

    def inside(path: Any, dir_fd: int | None = None) -> bool:
        if isinstance(path, int):
            return False
        text = os.fsdecode(os.fspath(path))
        if dir_fd is not None and not os.path.isabs(text):
            text = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), text)
        text = os.path.abspath(text)
        return text == root or text.startswith(root + os.sep)

    def refuse(path: Any) -> None:
        raise OSError(err_no, reason, os.fsdecode(os.fspath(path)))

    real = {name: getattr(os, name) for name in ("open", "mkdir", "replace", "rename", "unlink", "remove", "rmdir", "chmod")}
    real_open = builtins.open
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & writes and inside(path, dir_fd):
            refuse(path)
        return real["open"](path, flags, mode, dir_fd=dir_fd)

    def mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        if inside(path, dir_fd):
            if os.path.isdir(path):  # what the kernel says first for an existing folder
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(os.fspath(path)))
            refuse(path)
        real["mkdir"](path, mode, dir_fd=dir_fd)

    def two_paths(name: str) -> Callable[..., None]:
        def move(src: Any, dst: Any, **kwargs: Any) -> None:
            if inside(src, kwargs.get("src_dir_fd")) or inside(dst, kwargs.get("dst_dir_fd")):
                refuse(dst)
            real[name](src, dst, **kwargs)
        return move

    def one_path(name: str) -> Callable[..., None]:
        def change(path: Any, *args: Any, **kwargs: Any) -> None:
            if inside(path, kwargs.get("dir_fd")):
                refuse(path)
            real[name](path, *args, **kwargs)
        return change

    def open_file(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and inside(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, two_paths(name))
    for name in ("unlink", "remove", "rmdir", "chmod"):
        monkeypatch.setattr(os, name, one_path(name))
    monkeypatch.setattr(builtins, "open", open_file)
    monkeypatch.setattr(io, "open", open_file)


def tree(root: Path) -> list[str]:
    """Every path under `root`, relative and sorted (hidden temp files included)."""
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*"))
