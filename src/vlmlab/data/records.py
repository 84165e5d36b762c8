"""The records every study consumes: one caption item, one VQA question, one human rating.

Readers (`vlmlab.data.readers`) turn files of many layouts into these plain dataclasses; studies
never see a file format. Each record keeps `source` (`file:line`, or `file:key` for JSON) so that
a problem found later — an image that does not decode, a row that fails to score — can still
name where it came from.

`record_to_dict` / `record_from_dict` give the normalised JSON form written by
`vlmlab data check --out` and read back by the `records` format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from vlmlab.data.images import Image
from vlmlab.errors import DataError


@dataclass(frozen=True)
class CaptionRecord:
    """One image (+ optional query) with its reference captions.

    Attributes:
        id: unique within a dataset.
        image: the image value (lazy; nothing is decoded by readers).
        query: the text query (QuIC-360's scene query); "" for plain captioning.
        references: all reference captions for this item ([] for generation-only data).
        group_id: for the per-row view, the id of the grouped (image, query) record this row
            belongs to; None otherwise.
        source: where it came from (`file:line[,line...]`).
    """

    id: str
    image: Image
    query: str
    references: list[str]
    group_id: str | None = None
    source: str = ""


@dataclass(frozen=True)
class VQARecord:
    """One VQA v2 / OK-VQA question with its (usually 10) human answers."""

    question_id: str
    image_id: str
    image: Image
    question: str
    answers: list[str]
    answer_type: str | None = None
    question_type: str | None = None
    multiple_choice_answer: str | None = None
    source: str = ""

    @property
    def id(self) -> str:
        return self.question_id


@dataclass(frozen=True)
class RatingRecord:
    """One human rating of one image: emotion category, valence and arousal (1-9), rater groups."""

    image_id: str
    image: Image
    rater_id: str | None
    emotion: str | None
    valence: float | None
    arousal: float | None
    groups: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def id(self) -> str:
        """Unique per (image, rater) when a rater id is present."""
        return self.image_id if self.rater_id is None else f"{self.image_id}@{self.rater_id}"


Record = Union[CaptionRecord, VQARecord, RatingRecord]

_KINDS: dict[str, type] = {"caption": CaptionRecord, "vqa": VQARecord, "rating": RatingRecord}


def record_kind(record: Record) -> str:
    """`caption`, `vqa` or `rating`."""
    for kind, cls in _KINDS.items():
        if isinstance(record, cls):
            return kind
    raise TypeError(f"not a record: {type(record).__name__}")


def record_to_dict(record: Record) -> dict[str, Any]:
    """A JSON-able dict: `kind`, the fields in order, `image` as a path string.

    Images made from bytes (not from a file) cannot be written as a path and raise `DataError`.
    """
    out: dict[str, Any] = {"kind": record_kind(record)}
    for name in record.__dataclass_fields__:
        value = getattr(record, name)
        if isinstance(value, Image):
            if value.path is None:
                raise DataError(f"record {record.id}: image is in-memory bytes; save it to a file before exporting")
            value = str(value.path)
        out[name] = value
    return out


def record_from_dict(data: dict[str, Any], where: str = "") -> Record:
    """Inverse of `record_to_dict`; unknown `kind`, missing or extra fields are `DataError`s."""
    prefix = f"{where}: " if where else ""
    kind = data.get("kind")
    if kind not in _KINDS:
        raise DataError(f"{prefix}unknown record kind {kind!r}; expected one of {', '.join(_KINDS)}")
    cls = _KINDS[kind]
    fields = dict(data)
    fields.pop("kind")
    names = set(cls.__dataclass_fields__)
    extra = sorted(set(fields) - names)
    if extra:
        raise DataError(f"{prefix}unexpected fields {', '.join(extra)} for a {kind} record")
    if not isinstance(fields.get("image"), str):
        raise DataError(f"{prefix}{kind} record needs 'image' as a path string")
    fields["image"] = Image(path=Path(fields["image"]))
    try:
        return cls(**fields)
    except TypeError as exc:
        raise DataError(f"{prefix}bad {kind} record ({exc})") from None
