"""Dataset formats by name: the one place that maps a name a user types to a reader.

Library code can call the readers directly (`read_caption_table`, `read_coco_captions`,
`read_vqa`, `read_image_folder`, `read_ratings`, `read_records`); configs and the CLI name a format
and go through `read_dataset`, which also counts the source rows for summaries. Every table
format also reads a parquet or arrow file, a `datasets` `save_to_disk` folder or an `hf:` hub id
(`vlmlab.data.sources`); `columns` maps a reader's roles to other column names:

    dataset = read_dataset("quic360", "test.tsv", images="panos/")
    dataset.records, dataset.rows

Formats and the options each accepts:

| name | reads | options |
|---|---|---|
| `quic360`, `captions` | caption table, one record per (image, query) pair | images, url_map, columns |
| `quic360-rows`, `captions-rows` | caption table, one record per row | images, url_map, columns |
| `coco` | COCO captions JSON | images |
| `vqa`, `okvqa` | VQA v2 / OK-VQA questions (+ annotations) JSON, or a one-row-per-question table | images, annotations, image_pattern, columns |
| `folder` | every image under a folder | query |
| `ratings` | human ratings table | images |
| `records` | normalised records JSONL written by `vlmlab data check --out` | images |
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from vlmlab.data.captions import read_caption_table, read_coco_captions, read_url_map
from vlmlab.data.folders import read_image_folder
from vlmlab.data.images import Image, resolve_under_root
from vlmlab.data.ratings import read_ratings
from vlmlab.data.records import CaptionRecord, RatingRecord, Record, record_from_dict
from vlmlab.data.tables import read_jsonl
from vlmlab.data.vqa import read_vqa
from vlmlab.errors import ConfigError, DataError
from vlmlab.registry import Registry

__all__ = [
    "FORMATS",
    "Dataset",
    "read_caption_table",
    "read_coco_captions",
    "read_dataset",
    "read_image_folder",
    "read_ratings",
    "read_records",
    "read_url_map",
    "read_vqa",
]


def read_records(path: Path | str, images: Path | str | None = None) -> list[Record]:
    """Read normalised records JSONL (`vlmlab data check --out`) back into records.

    Image paths are used as written; with `images`, each must lie inside that root (relative
    paths are joined to it).

    Raises:
        DataError: bad JSONL, unknown kind or fields, duplicate caption/VQA ids, an image outside
            the root.
    """
    table = read_jsonl(path)
    records: list[Record] = []
    first: dict[str, int] = {}
    for row in table.rows:
        where = table.where(row)
        record = record_from_dict(row.values, where)
        if images is not None:
            assert record.image.path is not None
            resolved = resolve_under_root(images, record.image.path, where)
            record = _with_image(record, Image(path=resolved))
        line = first.setdefault(record.id, row.line)
        if line != row.line and not isinstance(record, RatingRecord):
            raise DataError(f"{where}: duplicate id {record.id!r} (first on line {line}); ids must be unique")
        records.append(record)
    return records


def _with_image(record: Record, image: Image) -> Record:
    return replace(record, image=image)


def _references_rows(records: Sequence[Record]) -> int:
    return sum(len(r.references) for r in records if isinstance(r, CaptionRecord))


@dataclass(frozen=True)
class Format:
    """A named dataset format: its reader, the options it takes, and how to count its source rows."""

    name: str
    read: Callable[..., list[Any]]
    options: frozenset[str]
    count_rows: Callable[[Sequence[Record]], int]
    help: str


FORMATS: Registry[Format] = Registry("dataset format", unknown=lambda name, hint, names: (
    f"unknown dataset format {name!r}; choose one of {', '.join(names)}{'; ' + hint if hint else ''}"))


def register_format(fmt: Format) -> None:
    """Add a format; a name already taken is an error."""
    FORMATS.register(fmt.name, fmt)


def _captions(per_row: bool) -> Callable[..., list[Any]]:
    def read(path: Path, images: Path | None = None, url_map: Path | None = None, columns: dict[str, str] | None = None) -> list[Any]:
        return read_caption_table(path, images, url_map=url_map, per_row=per_row, columns=columns)

    return read


def _vqa(path: Path, images: Path | None = None, annotations: Path | None = None, image_pattern: str | None = None,
         columns: dict[str, str] | None = None) -> list[Any]:
    return read_vqa(path, annotations, images, image_pattern=image_pattern, columns=columns)


for _name, _per_row in (("quic360", False), ("captions", False), ("quic360-rows", True), ("captions-rows", True)):
    register_format(
        Format(
            _name, _captions(_per_row), frozenset({"images", "url_map", "columns"}),
            len if _per_row else _references_rows,
            "caption table (CSV/TSV/JSONL), one record per " + ("row" if _per_row else "image-query pair"),
        )
    )
register_format(Format("coco", read_coco_captions, frozenset({"images"}), _references_rows, "COCO captions JSON"))
for _name in ("vqa", "okvqa"):
    register_format(
        Format(_name, _vqa, frozenset({"images", "annotations", "image_pattern", "columns"}), len,
               "VQA v2 / OK-VQA questions + annotations JSON, or a one-row-per-question table")
    )
register_format(
    Format("folder", lambda path, query="": read_image_folder(path, query=query), frozenset({"query"}), len, "every image under a folder")
)
register_format(Format("ratings", read_ratings, frozenset({"images"}), len, "human ratings table (CSV/TSV/JSONL)"))
register_format(Format("records", read_records, frozenset({"images"}), len, "normalised records JSONL (data check --out)"))

_OPTION_FLAGS = {"images": "--images", "annotations": "--annotations", "url_map": "--url-map", "image_pattern": "--image-pattern",
                 "query": "--query", "columns": "--column"}


def get_format(name: str) -> Format:
    """The format called `name`, or a `ConfigError` with the closest name."""
    return FORMATS.get(name)


@dataclass(frozen=True)
class Dataset:
    """What `read_dataset` returns: the records plus where they came from and how many source rows."""

    format: str
    path: Path
    records: list[Record]
    rows: int


def read_dataset(format: str, path: Path | str, **options: Any) -> Dataset:
    """Read `path` with the named format.

    Args:
        format: a name in `FORMATS`.
        path: the data file (or folder for `folder`).
        **options: `images`, `annotations`, `url_map`, `image_pattern`, `query`, `columns`; None
            (and empty) values are ignored, an option the format does not take is a `ConfigError`.
    """
    fmt = get_format(format)
    given = {k: v for k, v in options.items() if v is not None and v != {}}
    unknown = sorted(set(given) - fmt.options)
    if unknown:
        flags = ", ".join(_OPTION_FLAGS.get(k, k) for k in unknown)
        raise ConfigError(f"format {format!r} does not take {flags}; it takes {', '.join(sorted(_OPTION_FLAGS[k] for k in fmt.options)) or 'no options'}")
    records = fmt.read(Path(path), **given)
    return Dataset(format=format, path=Path(path), records=records, rows=fmt.count_rows(records))
