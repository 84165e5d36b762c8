"""VQA v2 and OK-VQA: a questions JSON joined to an annotations JSON by question id.

Both datasets ship the same two files (OK-VQA reuses the VQA v2 format and COCO images):

    {"data_subtype": "val2014", "questions": [{"question_id": 1, "image_id": 42, "question": "..."}]}
    {"annotations": [{"question_id": 1, "image_id": 42, "answers": [{"answer": "..."}, ...],
                      "answer_type": "other", "question_type": "what is", "multiple_choice_answer": "..."}]}

The join is strict: a question without an annotation (or the reverse), or the two files
disagreeing on a question's image, is an error — a silent inner join would evaluate on a
shifting subset. Without an annotations file (a test split) every record has `answers=[]`.

Image files are found, in order, from: an explicit `image_files` mapping (image id -> file), the
`image_pattern` (`"COCO_val2014_{image_id:012d}.jpg"`), a `file_name` on each question, or the
COCO pattern built from the questions file's `data_subtype`.

    records = read_vqa("OpenEnded_mscoco_val2014_questions.json",
                       "mscoco_val2014_annotations.json", images="coco/val2014")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from vlmlab.data.images import Image, image_under_root
from vlmlab.data.records import VQARecord
from vlmlab.data.tables import read_json, require_key
from vlmlab.errors import ConfigError, DataError


def _id(entry: Any, key: str, path: Path, where: str) -> str:
    return str(require_key(entry, key, path, where, (int, str)))


def _optional_text(entry: dict[str, Any], key: str, path: Path, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise DataError(f"{path}: {where} key {key!r} is {type(value).__name__}, expected text")
    return value


def _format_pattern(pattern: str, image_id: str) -> str:
    value: int | str = int(image_id) if image_id.isdigit() else image_id
    try:
        return pattern.format(image_id=value)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"image pattern {pattern!r} cannot be filled for image_id {image_id} ({type(exc).__name__}: {exc}); "
            f"use a pattern like 'COCO_val2014_{{image_id:012d}}.jpg'"
        ) from None


def _image_namer(data: dict[str, Any], path: Path, image_pattern: str | None, image_files: Mapping[str, str] | None):
    """A function (entry, image_id, where) -> file name, chosen once for the whole file."""
    if image_files is not None:
        files = {str(k): v for k, v in image_files.items()}

        def from_mapping(entry: dict[str, Any], image_id: str, where: str) -> str:
            if image_id not in files:
                raise DataError(f"{path}: {where} image_id {image_id} is not in the image file mapping; add it")
            return files[image_id]

        return from_mapping
    if image_pattern is not None:
        return lambda entry, image_id, where: _format_pattern(image_pattern, image_id)
    questions = data["questions"]
    if questions and all(isinstance(q, dict) and isinstance(q.get("file_name"), str) for q in questions):
        return lambda entry, image_id, where: entry["file_name"]
    subtype = data.get("data_subtype")
    if isinstance(subtype, str) and subtype:
        pattern = f"COCO_{subtype}_{{image_id:012d}}.jpg"
        return lambda entry, image_id, where: _format_pattern(pattern, image_id)
    raise DataError(
        f"{path}: cannot tell the image file names (no 'data_subtype', no 'file_name' on questions); "
        f"pass an image pattern like 'COCO_val2014_{{image_id:012d}}.jpg'"
    )


def _read_annotations(path: Path) -> dict[str, tuple[int, dict[str, Any]]]:
    data = read_json(path)
    annotations = require_key(data, "annotations", path, "the top level", list)
    if not annotations:
        raise DataError(f"{path}: 'annotations' is empty; expected one per question")
    by_qid: dict[str, tuple[int, dict[str, Any]]] = {}
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        qid = _id(ann, "question_id", path, where)
        if qid in by_qid:
            raise DataError(f"{path}: {where} duplicate question_id {qid} (first at annotations[{by_qid[qid][0]}]); remove one")
        by_qid[qid] = (i, ann)
    return by_qid


def _answers(ann: dict[str, Any], path: Path, where: str) -> list[str]:
    answers = require_key(ann, "answers", path, where, list)
    if not answers:
        raise DataError(f"{path}: {where} has an empty 'answers' list; VQA accuracy needs the human answers")
    out: list[str] = []
    for j, answer in enumerate(answers):
        text = answer if isinstance(answer, str) else require_key(answer, "answer", path, f"{where} answers[{j}]", str)
        out.append(text)
    return out


def _preview(ids: list[str]) -> str:
    shown = ", ".join(ids[:5])
    return f"{shown} (+{len(ids) - 5} more)" if len(ids) > 5 else shown


def read_vqa(
    questions: Path | str,
    annotations: Path | str | None = None,
    images: Path | str | None = None,
    *,
    image_pattern: str | None = None,
    image_files: Mapping[str, str] | None = None,
) -> list[VQARecord]:
    """Read VQA v2 / OK-VQA questions (and annotations) into `VQARecord`s in question order.

    Args:
        questions: the questions JSON.
        annotations: the annotations JSON of the same split; None for a test split without answers.
        images: the image root; defaults to the questions file's folder.
        image_pattern: file name pattern with `{image_id}` (e.g. `COCO_val2014_{image_id:012d}.jpg`).
        image_files: explicit image id -> file name mapping (wins over the pattern).

    Raises:
        DataError: bad JSON, missing keys, duplicate question ids, questions without annotations
            or annotations without questions, mismatched image ids, empty answer lists, images
            outside the root.
        ConfigError: an image pattern that cannot be filled.
    """
    qpath = Path(questions)
    root = Path(images) if images is not None else qpath.parent
    data = read_json(qpath)
    entries = require_key(data, "questions", qpath, "the top level", list)
    if not entries:
        raise DataError(f"{qpath}: 'questions' is empty; expected at least one question")
    name_of = _image_namer(data, qpath, image_pattern, image_files)
    apath = Path(annotations) if annotations is not None else None
    by_qid = _read_annotations(apath) if apath is not None else None

    records: list[VQARecord] = []
    seen: dict[str, int] = {}
    image_cache: dict[str, Image] = {}
    for i, entry in enumerate(entries):
        where = f"questions[{i}]"
        qid = _id(entry, "question_id", qpath, where)
        image_id = _id(entry, "image_id", qpath, where)
        question = require_key(entry, "question", qpath, where, str)
        if qid in seen:
            raise DataError(f"{qpath}: {where} duplicate question_id {qid} (first at questions[{seen[qid]}]); remove one")
        seen[qid] = i
        if image_id not in image_cache:
            image_cache[image_id] = image_under_root(root, name_of(entry, image_id, where), f"{qpath}:{where}")
        answers: list[str] = []
        types: dict[str, str | None] = {"answer_type": None, "question_type": None, "multiple_choice_answer": None}
        if by_qid is not None and apath is not None and qid in by_qid:
            j, ann = by_qid[qid]
            awhere = f"annotations[{j}]"
            ann_image = ann.get("image_id")
            if ann_image is not None and str(ann_image) != image_id:
                raise DataError(
                    f"{apath}: {awhere} question_id {qid} has image_id {ann_image} but the questions file says {image_id}; "
                    f"use files of the same split"
                )
            answers = _answers(ann, apath, awhere)
            types = {key: _optional_text(ann, key, apath, awhere) for key in types}
        records.append(
            VQARecord(
                question_id=qid, image_id=image_id, image=image_cache[image_id], question=question, answers=answers,
                source=f"{qpath}:{where}", **types,
            )
        )

    if by_qid is not None:
        missing = [qid for qid in seen if qid not in by_qid]
        if missing:
            raise DataError(
                f"{apath}: {len(missing)} question ids have no annotation ({_preview(missing)}); "
                f"pass the annotations file of the same split as {qpath.name}"
            )
        orphans = [qid for qid in by_qid if qid not in seen]
        if orphans:
            raise DataError(
                f"{apath}: {len(orphans)} annotations have no question in {qpath.name} ({_preview(orphans)}); "
                f"pass the questions file of the same split"
            )
    return records
