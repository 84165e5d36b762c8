"""Checking and exporting a dataset: decode every image, summarise, write normalised records.

These are the library halves of `vlmlab data check`:

    dataset = read_dataset("quic360", "test.tsv", images="panos/")
    check_images(dataset.records)              # DataError naming the first bad image and its row
    summary = summarize(dataset)               # {"rows": 6246, "records": 1212, ...}
    write_records_jsonl(dataset.records, "records.jsonl")   # atomic: all or nothing
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from vlmlab.data.images import Image
from vlmlab.data.readers import Dataset
from vlmlab.data.sources import parse_source
from vlmlab.data.records import CaptionRecord, RatingRecord, Record, VQARecord, record_to_dict
from vlmlab.errors import DataError
from vlmlab.progress import track
from vlmlab.runs import atomic_write_text


@dataclass(frozen=True)
class ImageCheck:
    """Result of `check_images`: how many distinct image files decoded, and their size range."""

    images: int
    min_size: tuple[int, int]
    max_size: tuple[int, int]


def unique_images(records: Sequence[Record]) -> dict[str, tuple[Image, str]]:
    """Distinct images by file (or content hash for in-memory images) -> (image, first record's source)."""
    found: dict[str, tuple[Image, str]] = {}
    for record in records:
        image = record.image
        key = str(image.path) if image.path is not None else f"sha256:{image.sha256}"
        found.setdefault(key, (image, record.source))
    return found


def check_images(records: Sequence[Record], *, description: str = "decoding images") -> ImageCheck:
    """Decode every distinct image once (with a progress bar).

    All images are tried so that the message can say how many are bad; the error names the first
    bad file and the data row that uses it.

    Raises:
        DataError: `"<row>: <image>: <problem> (and N more bad images)"`.
    """
    images = unique_images(records)
    failures: list[str] = []
    sizes: list[tuple[int, int]] = []
    for image, source in track(list(images.values()), description):
        try:
            pil = image.load()
        except DataError as exc:
            failures.append(f"{source}: {exc}" if source else str(exc))
            continue
        sizes.append(pil.size)
    if failures:
        more = f" (and {len(failures) - 1} more bad images)" if len(failures) > 1 else ""
        raise DataError(failures[0] + more)
    if not sizes:
        return ImageCheck(images=0, min_size=(0, 0), max_size=(0, 0))
    return ImageCheck(
        images=len(sizes),
        min_size=min(sizes, key=lambda s: s[0] * s[1]),
        max_size=max(sizes, key=lambda s: s[0] * s[1]),
    )


def missing_image_files(records: Sequence[Record]) -> list[Path]:
    """Image files the records name that do not exist (in-memory images are never missing)."""
    return [image.path for image, _ in unique_images(records).values()
            if image.path is not None and not image.path.is_file()]


def _spread(values: Sequence[int]) -> str:
    if not values:
        return "-"
    return f"{min(values)} / {statistics.fmean(values):.2f} / {max(values)}"


def summarize(dataset: Dataset) -> dict[str, Any]:
    """Counts for a summary table: rows, records, distinct images (and how many exist on disk),
    references / answers / ratings per record (min / mean / max)."""
    records = dataset.records
    images = unique_images(records)
    on_disk = sum(1 for image, _ in images.values() if image.path is None or image.path.is_file())
    summary: dict[str, Any] = {
        "format": dataset.format,
        "path": str(dataset.path),
        "source": parse_source(dataset.path).describe(),
        "rows": dataset.rows,
        "records": len(records),
        "images": len(images),
        "image files found": f"{on_disk} / {len(images)}",
    }
    captions = [r for r in records if isinstance(r, CaptionRecord)]
    questions = [r for r in records if isinstance(r, VQARecord)]
    ratings = [r for r in records if isinstance(r, RatingRecord)]
    if captions:
        summary["references per item (min / mean / max)"] = _spread([len(r.references) for r in captions])
        queries = {r.query for r in captions if r.query}
        if queries:
            summary["queries"] = len(queries)
    if questions:
        summary["answers per question (min / mean / max)"] = _spread([len(r.answers) for r in questions])
    if ratings:
        per_image = Counter(r.image_id for r in ratings)
        summary["ratings per image (min / mean / max)"] = _spread(list(per_image.values()))
        summary["raters"] = len({r.rater_id for r in ratings if r.rater_id is not None})
        summary["emotions"] = len({r.emotion for r in ratings if r.emotion is not None})
    return summary


def records_jsonl(records: Sequence[Record]) -> str:
    """The normalised JSONL text of `records` (one `record_to_dict` object per line)."""
    return "".join(json.dumps(record_to_dict(r), ensure_ascii=False) + "\n" for r in records)


def write_records_jsonl(records: Sequence[Record], out: Path | str) -> Path:
    """Write normalised records atomically (temp file + rename): the file is complete or absent."""
    out = Path(out)
    text = records_jsonl(records)  # everything is serialised before the file is touched
    if not out.parent.exists():
        raise DataError(f"{out}: output folder {out.parent} does not exist; create it first")
    atomic_write_text(out, text)
    return out
