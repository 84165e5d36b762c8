"""Shared data preparation for a caption study, and the prompts built from it.

Every model of a study trains on the same rows and is tested on the same (image, query) pairs, so
data is read once into `<study>/_shared_data/`:

- `train.csv`: one training row per reference (`id, image, query, reference, group_id`) — each
  reference caption is its own fine-tuning target, as the QuIC-360 baseline trains;
- `test.csv`: one row per (image, query) pair (`id, image, query, references` as a JSON list);
- `data.json`: the sources, counts and a fingerprint (sha256 of both CSVs) that every model's
  generation run records, so a changed dataset can never be mixed with old predictions.

    shared = prepare_shared_data(Path("test.tsv"), Path("runs/caption/x/_shared_data"), train=Path("train.tsv"))
    conversation = build_conversation(images, record.query, template="{query}")
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from vlmlab.data.captions import read_caption_table
from vlmlab.data.sources import materialize_images
from vlmlab.data.images import Image
from vlmlab.data.records import CaptionRecord
from vlmlab.errors import DataError
from vlmlab.models.base import Turn
from vlmlab.runs import atomic_write_json, atomic_write_text


@dataclass
class SharedData:
    """The prepared data: training rows (per reference), test pairs (grouped) and a fingerprint."""

    folder: Path
    train: list[CaptionRecord]
    test: list[CaptionRecord]
    fingerprint: str


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _check_images_once(folder: Path, fingerprint: str, records: Sequence[CaptionRecord]) -> None:
    """Decode every image before any model loads (a corrupt, empty or decompression-bomb image
    used to surface only at generation, after fine-tuning). Skipped when `data.json` says this
    exact data (same fingerprint) was already checked.

    Raises:
        DataError: naming the first bad image and its row, and how many more are bad.
    """
    from vlmlab.data.check import check_images

    try:
        previous = json.loads((folder / "data.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    if previous.get("fingerprint") == fingerprint and previous.get("images_checked"):
        return
    check_images(records, description="checking images")


def prepare_shared_data(
    test: Path,
    folder: Path,
    *,
    train: Path | None = None,
    images: Path | None = None,
    url_map: Path | None = None,
    max_train_rows: int | None = None,
    max_test_pairs: int | None = None,
) -> SharedData:
    """Read the caption tables, take the requested subsets and write `train.csv`, `test.csv`, `data.json`.

    Deterministic: the same inputs write the same bytes, so processes preparing the same study at
    once (one per GPU) agree. Files are written atomically.

    Raises:
        DataError: any problem of the tables (from `read_caption_table`), or an empty split.
    """
    folder = Path(folder)
    test_records = materialize_images(read_caption_table(test, images, url_map=url_map), folder / "images")
    if max_test_pairs is not None:
        test_records = test_records[:max_test_pairs]
    if not test_records:
        raise DataError(f"{test}: no test rows; the caption study needs at least one (image, query) pair")
    train_records: list[CaptionRecord] = []
    if train is not None:
        train_records = materialize_images(read_caption_table(train, images, url_map=url_map, per_row=True), folder / "images")
        if max_train_rows is not None:
            train_records = train_records[:max_train_rows]
        if not train_records:
            raise DataError(f"{train}: no training rows; add rows or disable fine-tuning")
    train_text = _csv_text(
        ("id", "image", "query", "reference", "group_id"),
        [(r.id, str(r.image.path), r.query, r.references[0], r.group_id) for r in train_records],
    )
    test_text = _csv_text(
        ("id", "image", "query", "references"),
        [(r.id, str(r.image.path), r.query, json.dumps(r.references, ensure_ascii=False)) for r in test_records],
    )
    fingerprint = hashlib.sha256((train_text + "\0" + test_text).encode()).hexdigest()[:16]
    _check_images_once(folder, fingerprint, train_records + test_records)
    atomic_write_text(folder / "train.csv", train_text)
    atomic_write_text(folder / "test.csv", test_text)
    atomic_write_json(folder / "data.json", {
        "train": str(train) if train is not None else None, "test": str(test),
        "images": str(images) if images is not None else None, "url_map": str(url_map) if url_map is not None else None,
        "train_rows": len(train_records), "test_pairs": len(test_records),
        "test_references": sum(len(r.references) for r in test_records), "fingerprint": fingerprint,
        "images_checked": True,
    })
    return SharedData(folder=folder, train=train_records, test=test_records, fingerprint=fingerprint)


def build_conversation(images: Sequence[Image], query: str, *, template: str = "{query}",
                       empty_query: str = "Describe the image.") -> list[Turn]:
    """One user turn: the image(s) first, then the prompt text (`template` with `{query}` filled)."""
    text = template.replace("{query}", query if query.strip() else empty_query)
    return [Turn("user", [*images, text])]
