"""Byte-stable writers for toy-world outputs and the manifest that lists them.

Same seed must give the same bytes, so every file goes through a `DatasetWriter`: PNGs are saved
with fixed settings and no metadata, JSON with sorted keys and fixed separators, CSV/TSV with
`\\n` line endings. The writer records the sha256 of every file it writes; `finish()` writes
`manifest.json` (no timestamps) and returns a `Manifest`.

Call it like::

    writer = DatasetWriter(out_dir, kind="vqa", seed=0, n=3000)
    writer.png("images/train/000000000001.png", pil_image)
    writer.json("train_questions.json", {...})
    manifest = writer.finish(counts={"train": 1800})
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import PIL.Image

from vlmlab.errors import DataError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """What a generator wrote: kind, seed, size, and every file with its sha256.

    `files` maps a path relative to `root` (POSIX separators) to the hex sha256 of its bytes;
    `counts` holds kind-specific sizes (images per split, rows, ...).
    """

    kind: str
    seed: int
    n: int
    root: Path
    files: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "kind": self.kind,
            "seed": self.seed,
            "n": self.n,
            "counts": dict(sorted(self.counts.items())),
            "files": dict(sorted(self.files.items())),
        }

    @property
    def digest(self) -> str:
        """One sha256 over all listed files: equal digests mean byte-identical datasets."""
        return hashlib.sha256(json_bytes(self.to_json()["files"])).hexdigest()

    @classmethod
    def load(cls, root: str | Path) -> "Manifest":
        """Read `root/manifest.json`; a missing or malformed file is a `DataError` naming it."""
        root = Path(root)
        path = root / MANIFEST_NAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                kind=str(raw["kind"]),
                seed=int(raw["seed"]),
                n=int(raw["n"]),
                root=root,
                files={str(k): str(v) for k, v in raw["files"].items()},
                counts={str(k): int(v) for k, v in raw.get("counts", {}).items()},
            )
        except FileNotFoundError:
            raise DataError(f"{path}: no toy-world manifest here; run `vlmlab toyworld generate` first") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{path}: malformed manifest ({type(exc).__name__}: {exc}); regenerate the folder") from None

    def verify(self) -> list[str]:
        """Paths whose current bytes differ from the manifest (missing files included)."""
        bad = []
        for rel, digest in self.files.items():
            path = self.root / rel
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                bad.append(rel)
        return bad


def json_bytes(obj: Any) -> bytes:
    """Deterministic JSON: sorted keys, two-space indent, UTF-8, trailing newline."""
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def png_bytes(image: PIL.Image.Image) -> bytes:
    """Lossless PNG with fixed compression and no metadata chunks, so bytes depend on pixels only."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def table_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str = ",") -> bytes:
    """CSV/TSV with a header row, minimal quoting and `\\n` line endings."""
    buf = io.StringIO()
    out = csv.writer(buf, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    out.writerow(header)
    for row in rows:
        out.writerow(row)
    return buf.getvalue().encode("utf-8")


class DatasetWriter:
    """Writes files under `root`, remembering their hashes for the manifest.

    Args:
        root: output folder. It must be empty, or hold a previous toy-world manifest (whose files
            are then replaced), unless `overwrite` is set.
        kind, seed, n: recorded in the manifest.
        overwrite: allow writing into a non-empty folder that is not a toy-world output.
    """

    def __init__(self, root: str | Path, *, kind: str, seed: int, n: int, overwrite: bool = False) -> None:
        self.root = Path(root)
        self.kind, self.seed, self.n = kind, seed, n
        self.files: dict[str, str] = {}
        self._made_dirs: set[Path] = set()
        self._prepare(overwrite)

    def _prepare(self, overwrite: bool) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise DataError(f"{self.root}: exists and is not a folder; choose another --out")
        if not self.root.exists() or not any(self.root.iterdir()):
            self.root.mkdir(parents=True, exist_ok=True)
            return
        manifest_path = self.root / MANIFEST_NAME
        if manifest_path.is_file():
            old = Manifest.load(self.root)
            for rel in old.files:  # remove only what a previous generation wrote
                (self.root / rel).unlink(missing_ok=True)
            manifest_path.unlink()
            return
        if not overwrite:
            raise DataError(
                f"{self.root}: folder is not empty and is not a toy-world output; choose an empty --out or pass --overwrite"
            )

    def _write(self, rel: str, data: bytes) -> Path:
        path = self.root / rel
        parent = path.parent
        if parent not in self._made_dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(parent)
        path.write_bytes(data)
        self.files[rel] = hashlib.sha256(data).hexdigest()
        return path

    def png(self, rel: str, image: PIL.Image.Image) -> Path:
        return self._write(rel, png_bytes(image))

    def json(self, rel: str, obj: Any) -> Path:
        return self._write(rel, json_bytes(obj))

    def table(self, rel: str, header: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str = ",") -> Path:
        return self._write(rel, table_bytes(header, rows, delimiter))

    def finish(self, counts: dict[str, int] | None = None) -> Manifest:
        """Write `manifest.json` atomically (temp file + rename) and return the manifest."""
        manifest = Manifest(self.kind, self.seed, self.n, self.root, dict(self.files), dict(counts or {}))
        tmp = self.root / (MANIFEST_NAME + ".tmp")
        tmp.write_bytes(json_bytes(manifest.to_json()))
        os.replace(tmp, self.root / MANIFEST_NAME)
        return manifest
