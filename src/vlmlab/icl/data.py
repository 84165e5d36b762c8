"""The ICL study's view of a VQA split: `VQARecord`s in file order, looked up by question id.

Demonstrations show one answer per question: the annotators' `multiple_choice_answer` when the file
has it, else the most frequent of the human answers (ties: first seen). That same answer is the
scoring target of InfoScore. A question without any answer cannot be a demonstration or a beam
anchor, and is a `DataError` naming it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from vlmlab.config import StrictModel
from vlmlab.data.records import VQARecord
from vlmlab.errors import DataError


class VQADataConfig(StrictModel):
    """A VQA v2 / OK-VQA split: questions JSON, annotations JSON, image folder; or one `datasets`
    source with a row per question (`questions: hf:lmms-lab/OK-VQA#val2014`, a parquet/arrow file or
    a save_to_disk folder; no annotations, images embedded or under `images`)."""

    questions: Path
    annotations: Path | None = None  # required for JSON questions files; None for a datasets source
    images: Path | None = None  # image root; defaults to the questions file's folder
    image_pattern: str | None = None  # e.g. "COCO_train2014_{image_id:012d}.jpg"


def target_answer(record: VQARecord) -> str:
    """The one answer a demonstration shows (and InfoScore scores) for `record`."""
    if record.multiple_choice_answer:
        return record.multiple_choice_answer
    if not record.answers:
        raise DataError(f"question {record.question_id} ({record.source or 'no source'}) has no answers; it cannot be a demonstration or anchor")
    counts = Counter(record.answers)
    best = max(counts.values())
    return next(a for a in record.answers if counts[a] == best)


@dataclass
class Split:
    """Records of one split in order, with `position(qid)` lookup; ids must be unique."""

    records: list[VQARecord]

    def __post_init__(self) -> None:
        self._pos: dict[str, int] = {}
        for i, r in enumerate(self.records):
            if r.question_id in self._pos:
                raise DataError(f"question id {r.question_id} appears twice ({r.source}); question ids must be unique")
            self._pos[r.question_id] = i

    def __len__(self) -> int:
        return len(self.records)

    @property
    def ids(self) -> list[str]:
        return [r.question_id for r in self.records]

    def position(self, qid: str, where: str = "") -> int:
        try:
            return self._pos[str(qid)]
        except KeyError:
            raise DataError(f"{where + ': ' if where else ''}question id {qid} is not in this split (no question/annotation for it); check that the stage uses the same data") from None

    def get(self, qid: str, where: str = "") -> VQARecord:
        return self.records[self.position(qid, where)]

    def subset(self, qids: Sequence[str]) -> list[VQARecord]:
        return [self.get(q) for q in qids]


def load_split(data: VQADataConfig) -> Split:
    """Read a VQA split (errors name the file and row) and check every image file exists up front."""
    from vlmlab.data.vqa import read_vqa

    from vlmlab.data.sources import is_dataset_source

    if data.annotations is None and not is_dataset_source(data.questions):
        raise DataError(f"{data.questions}: a VQA questions JSON needs its annotations file (data annotations:); "
                        "only a datasets source (parquet, arrow, save_to_disk, hf:) carries the answers itself")
    records = read_vqa(data.questions, data.annotations, data.images, image_pattern=data.image_pattern)
    missing = [r for r in records if r.image.path is not None and not r.image.path.is_file()]
    if missing:
        first = missing[0]
        raise DataError(f"{first.image.path}: image of question {first.question_id} not found ({len(missing)} of {len(records)} images missing); check `images`/`image_pattern`")
    return Split(list(records))
