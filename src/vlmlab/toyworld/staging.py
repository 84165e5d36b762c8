"""Generate a toy dataset into a hidden staging folder, then move it into place.

A full disk, a read-only folder or an interrupt mid-generation must not leave half an `images/`
folder behind, and an existing dataset of another kind (or an unrelated folder) must never be
replaced without `--overwrite`. So `staged_generate` checks the target first, lets the generator
write into `.<name>.partial-<pid>` beside it, and only when that finished moves the files in
(the whole folder in one rename when the target does not exist yet). Any `OSError` becomes one `DataError`
line naming the folder; the staging folder is removed on every failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from vlmlab.errors import DataError
from vlmlab.toyworld.writers import MANIFEST_NAME, Manifest


def check_target(out: Path, kind: str, overwrite: bool) -> Manifest | None:
    """Refuse a target that holds something we must not replace; return its old manifest if any.

    A previous toy-world output of the same kind is regenerated in place (its files replaced,
    nothing else touched); a dataset of another kind, or a non-empty folder that is not a
    toy-world output, needs `overwrite`.
    """
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder; choose another --out")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    if not (out / MANIFEST_NAME).is_file():
        if not overwrite:
            raise DataError(f"{out}: folder is not empty and is not a toy-world output; choose an empty --out or pass --overwrite")
        return None
    old = Manifest.load(out)
    if old.kind != kind and not overwrite:
        raise DataError(
            f"{out}: holds a toy-world {old.kind!r} dataset; choose another --out for {kind!r} "
            "or pass --overwrite to replace it"
        )
    return old


def _probe_writable(folder: Path) -> None:
    """Create and remove a file in `folder` (os.access ignores read-only mounts and is wrong as root)."""
    probe = folder / f".vlmlab-write-probe-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


def _os_message(out: Path, exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    return f"{out}: cannot write the toy dataset ({reason}); free space or choose a writable --out (nothing was written)"


def staged_generate(out: str | Path, kind: str, overwrite: bool, write: Callable[[Path], Manifest]) -> Manifest:
    """Run `write(staging_folder)` and move its files into `out`; see the module docstring."""
    given = Path(out)
    out = Path(os.path.abspath(given))  # `--out .` has no name to stage beside
    old = check_target(out, kind, overwrite)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_dir():
            _probe_writable(out)
        shutil.rmtree(staging, ignore_errors=True)
        manifest = write(staging)
        _move_into_place(staging, out, old, manifest)
    except OSError as exc:
        raise DataError(_os_message(given, exc)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Manifest(manifest.kind, manifest.seed, manifest.n, given, manifest.files, manifest.counts)


def _move_into_place(staging: Path, out: Path, old: Manifest | None, manifest: Manifest) -> None:
    if not out.exists():  # a new folder: one rename (an existing one is kept: it may be a cwd)
        os.replace(staging, out)
        return
    if old is not None:  # remove only what the previous generation wrote
        (out / MANIFEST_NAME).unlink(missing_ok=True)
        for rel in old.files:
            (out / rel).unlink(missing_ok=True)
    for rel in manifest.files:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, target)
    os.replace(staging / MANIFEST_NAME, out / MANIFEST_NAME)  # last: its presence means complete
