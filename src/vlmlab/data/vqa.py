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

A Hugging Face copy (parquet, arrow, save_to_disk folder or `hf:` id, as the lmms-lab VQAv2 and
OK-VQA ones) has one row per question instead: `question_id`, `question`, `answers` (ten strings,
or ten `{"answer", ...}` dicts), `image` (embedded, or a path), optional `image_id`,
`answer_type`, `question_type`, `multiple_choice_answer`. `read_vqa(source)` reads it with those
defaults; `columns={"question": "q", ...}` maps other names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from vlmlab.data.images import Image, image_under_root
from vlmlab.data.records import VQARecord
from vlmlab.data.sources import embedded_name, image_from_cell, is_dataset_source, read_rows
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
    columns: Mapping[str, str] | None = None,
) -> list[VQARecord]:
    """Read VQA v2 / OK-VQA questions (and annotations) into `VQARecord`s in question order.

    Args:
        questions: the questions JSON, or a `datasets` source with one row per question (then
            `annotations` must be None; see the module docstring).
        annotations: the annotations JSON of the same split; None for a test split without answers.
        images: the image root; defaults to the questions file's folder.
        image_pattern: file name pattern with `{image_id}` (e.g. `COCO_val2014_{image_id:012d}.jpg`).
        image_files: explicit image id -> file name mapping (wins over the pattern).
        columns: for a `datasets` source, role -> column name (roles: TABLE_ROLES).

    Raises:
        DataError: bad JSON, missing keys, duplicate question ids, questions without annotations
            or annotations without questions, mismatched image ids, empty answer lists, images
            outside the root.
        ConfigError: an image pattern that cannot be filled.
    """
    if is_dataset_source(questions):
        if annotations is not None:
            raise ConfigError(f"{questions}: a datasets source holds the answers in its rows; drop the annotations file")
        return read_vqa_table(questions, images, image_pattern=image_pattern, columns=columns)
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


TABLE_ROLES = ("question_id", "question", "answers", "image", "image_id")
_TABLE_DEFAULTS = {
    "question_id": ("question_id", "qid"),
    "question": ("question",),
    "answers": ("answers",),
    "image": ("image", "file_name", "image_path", "path"),
    "image_id": ("image_id",),
}


def read_vqa_table(
    source: Path | str,
    images: Path | str | None = None,
    *,
    image_pattern: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> list[VQARecord]:
    """Read a one-row-per-question VQA table (lmms-lab VQAv2 / OK-VQA layout) into `VQARecord`s.

    Images come from the image column (embedded bytes or a path under `images`) or, without one,
    from `image_pattern` and the image id. Without an image id column, an embedded image's stored
    file name (or its content hash) is the image id. A table without an answers column is a test
    split (`answers=[]`).

    Raises:
        DataError: a needed column missing (naming the columns found), a bad cell, a duplicate
            question id.
    """
    table = read_rows(source)
    root = Path(images) if images is not None else table.path.parent
    mapped = dict(columns or {})
    unknown = sorted(set(mapped) - set(TABLE_ROLES))
    if unknown:
        raise DataError(f"unknown column role(s) {', '.join(unknown)}; VQA tables map {', '.join(TABLE_ROLES)}")
    col = {role: table.find_column(names, f"the {role.replace('_', ' ')}", mapped=mapped.get(role),
                                   required=role in ("question_id", "question") or (role == "image" and image_pattern is None))
           for role, names in _TABLE_DEFAULTS.items()}
    records: list[VQARecord] = []
    seen: dict[str, int] = {}
    for row in table.rows:
        where = table.where(row)
        values = row.values
        qid = str(values.get(col["question_id"]))
        if qid in seen:
            raise DataError(f"{where}: duplicate question_id {qid} (first on row {seen[qid]}); remove one")
        seen[qid] = row.line
        question = values.get(col["question"])
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{where}: column {col['question']!r} is {type(question).__name__}, expected the question text")
        cell = values.get(col["image"]) if col["image"] else None
        image_id = str(values[col["image_id"]]) if col["image_id"] and values.get(col["image_id"]) is not None else None
        if cell is None:
            if image_pattern is None or image_id is None:
                raise DataError(f"{where}: no image (empty image column, or no image id for --image-pattern)")
            image = image_under_root(root, _format_pattern(image_pattern, image_id), where)
        else:
            image = image_from_cell(cell, root, where)
        if image_id is None:
            name = embedded_name(cell) or (cell if isinstance(cell, str) else None)
            image_id = Path(name).stem if name else image.sha256[:16]
        raw_answers = values.get(col["answers"]) if col["answers"] else None
        answers = _answers({"answers": raw_answers}, table.path, f"row {row.line}") if raw_answers is not None else []
        types = {key: values.get(key) if isinstance(values.get(key), str) else None
                 for key in ("answer_type", "question_type", "multiple_choice_answer")}
        records.append(VQARecord(question_id=qid, image_id=image_id, image=image, question=question,
                                 answers=answers, source=where, **types))
    return records
