"""Image folders: every supported image under a folder, as generation-only caption records.

    records = read_image_folder("panoramas/", query="location")

Files are found recursively and sorted by their path relative to the folder (so the order and the
ids are the same on every machine); hidden files and folders (`.DS_Store`, `._x.jpg`, `.cache/`)
and files with other extensions are skipped. The id is the relative path without its extension.
"""

from __future__ import annotations

from pathlib import Path

from vlmlab.data.images import SUPPORTED_EXTENSIONS, Image
from vlmlab.data.records import CaptionRecord
from vlmlab.errors import DataError


def list_images(root: Path | str) -> list[Path]:
    """Supported image files under `root`, recursively, sorted by relative POSIX path."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: image folder not found; check the path")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, expected a folder of images")
    found = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUPPORTED_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def read_image_folder(root: Path | str, *, query: str = "") -> list[CaptionRecord]:
    """One `CaptionRecord` (no references) per image under `root`.

    Raises:
        DataError: the folder is missing, is a file, holds no supported image, or two files
            differ only by extension (their ids would collide).
    """
    root = Path(root)
    paths = list_images(root)
    if not paths:
        raise DataError(f"{root}: no images found (looked for {', '.join(SUPPORTED_EXTENSIONS)}); check the folder")
    records: list[CaptionRecord] = []
    first: dict[str, Path] = {}
    for path in paths:
        relative = path.relative_to(root)
        item_id = relative.with_suffix("").as_posix()
        if item_id in first:
            raise DataError(f"{path}: same name as {first[item_id]} apart from the extension; rename one so ids are unique")
        first[item_id] = path
        records.append(CaptionRecord(id=item_id, image=Image(path=path), query=query, references=[], source=str(path)))
    return records
