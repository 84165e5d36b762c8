"""Reading the files `vlmlab score` takes: caption predictions/references and VQA JSON files.

Caption predictions: JSONL of {"id", "prediction"} or CSV/TSV with those columns, or a COCO result
JSON (`[{"image_id", "caption"}, ...]`, what every captioning paper submits).
Caption references: JSONL of {"id", "references": [...]} or one row per reference
({"id", "reference"} in JSONL, or CSV/TSV with `id` and `reference` columns), or a COCO captions
annotation JSON ({"images": [...], "annotations": [{"image_id", "caption"}, ...]}). A COCO
`image_id` is the item id (as text, so `42` in a result matches `42` in the annotations).
VQA: predictions as a JSON list of {"question_id", "answer"}; annotations as the VQA v2 / OK-VQA
annotation JSON ({"annotations": [...]}); questions as the VQA questions JSON ({"questions": [...]}).
Every problem is a DataError naming the file and line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from vlmlab.data.tables import FileRules, jsonl_objects, read_json
from vlmlab.errors import DataError


# The files `vlmlab score` reads; an empty file has no rows (the caller says what it found none of).
_SCORED_FILE = FileRules(missing="{path}: file not found", directory="{path}: file not found", empty=None,
                         not_utf8="{path}: not UTF-8 text ({reason})",
                         bad_json="{path}:{line}: not valid JSON ({msg}); expected one JSON object per line",
                         not_object="{path}:{line}: expected a JSON object per line")
_SCORED_JSON = replace(_SCORED_FILE, bad_json="{path}: not valid JSON (line {line}: {msg})")


def _rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row dict) for a JSONL, CSV or TSV file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv"):
        yield from jsonl_objects(path, _SCORED_FILE)
        return
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
            for row in reader:
                yield reader.line_num, row
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _field(path: Path, num: int, row: dict, key: str) -> Any:
    if key not in row or row[key] is None:
        raise DataError(f"{path}:{num}: missing {key!r} (columns/keys present: {', '.join(map(str, row)) or 'none'})")
    return row[key]


def _coco_document(path: Path) -> Any:
    """The parsed document of a `.json` file, or None when it is JSONL with a .json name."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None  # several JSON objects, one per line: read as JSONL
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _coco_captions(path: Path, rows: Any, what: str) -> list[tuple[str, str]]:
    """(image id as text, caption) per entry of a COCO result list or annotation list."""
    out: list[tuple[str, str]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "image_id" not in row or "caption" not in row:
            keys = ", ".join(map(str, row)) if isinstance(row, dict) else type(row).__name__
            raise DataError(f"{path}: {what} {i} needs 'image_id' and 'caption' (found: {keys or 'none'})")
        if not isinstance(row["caption"], str):
            raise DataError(f"{path}: {what} {i}: 'caption' must be a string, got {type(row['caption']).__name__}")
        out.append((str(row["image_id"]), row["caption"]))
    return out


def _prediction_rows(path: Path) -> Iterator[tuple[str, str, Any]]:
    """(where, id, prediction) per entry of a COCO result JSON or a JSONL/CSV/TSV prediction file."""
    document = _coco_document(path)
    if document is None:
        for num, row in _rows(path):
            yield f"{path}:{num}", str(_field(path, num, row, "id")), _field(path, num, row, "prediction")
        return
    if not isinstance(document, list):
        raise DataError(f"{path}: a .json prediction file must be a COCO result list "
                        '[{"image_id", "caption"}, ...] (or JSONL, one object per line)')
    for i, (item, caption) in enumerate(_coco_captions(path, document, "result")):
        yield f"{path}: result {i}", item, caption


def read_caption_predictions(path: str | Path) -> dict[str, str]:
    """{id: prediction} from JSONL, CSV/TSV or a COCO result JSON; a duplicate id is an error."""
    path = Path(path)
    out: dict[str, str] = {}
    for where, item, pred in _prediction_rows(path):
        if not isinstance(pred, str):
            raise DataError(f"{where}: 'prediction' must be a string, got {type(pred).__name__}")
        if item in out:
            raise DataError(f"{where}: duplicate id {item!r}; keep one prediction per id")
        out[item] = pred
    if not out:
        raise DataError(f"{path}: no predictions found")
    return out


def read_caption_references(path: str | Path) -> dict[str, list[str]]:
    """{id: [references]} from rows with a `references` list or one `reference` per row, or from
    a COCO captions annotation JSON, or a `datasets` source (a row per image with an `id` and a
    captions list or one caption per row, as `vlmlab.data.captions` names the columns)."""
    from vlmlab.data.sources import is_dataset_source

    if is_dataset_source(path):
        return _references_from_table(path)
    path = Path(path)
    out: dict[str, list[str]] = {}
    document = _coco_document(path)
    if document is not None:
        if not isinstance(document, dict) or not isinstance(document.get("annotations"), list):
            raise DataError(f"{path}: a .json reference file must be a COCO captions annotation file "
                            '{"images": [...], "annotations": [{"image_id", "caption"}, ...]} (or JSONL)')
        for item, caption in _coco_captions(path, document["annotations"], "annotation"):
            out.setdefault(item, []).append(caption)
        if not out:
            raise DataError(f"{path}: no references found")
        return out
    for num, row in _rows(path):
        item = str(_field(path, num, row, "id"))
        if "references" in row:
            refs = row["references"]
            if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
                raise DataError(f"{path}:{num}: 'references' must be a list of strings")
            out.setdefault(item, []).extend(refs)
        elif "reference" in row:
            ref = row["reference"]
            if not isinstance(ref, str):
                raise DataError(f"{path}:{num}: 'reference' must be a string")
            out.setdefault(item, []).append(ref)
        else:
            raise DataError(f"{path}:{num}: missing 'references' (a list) or 'reference' (one per row)")
    if not out:
        raise DataError(f"{path}: no references found")
    return out


def _load_json(path: Path) -> Any:
    return read_json(path, _SCORED_JSON)


def read_vqa_predictions(path: str | Path) -> dict[Any, str]:
    """{question_id: answer} from a JSON list of {"question_id", "answer"}."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of {{'question_id', 'answer'}} objects")
    out: dict[Any, str] = {}
    for i, row in enumerate(data):
        if not isinstance(row, dict) or "question_id" not in row or "answer" not in row:
            raise DataError(f"{path}: entry {i} must be an object with 'question_id' and 'answer'")
        if not isinstance(row["answer"], str):
            raise DataError(f"{path}: entry {i}: 'answer' must be a string")
        if row["question_id"] in out:
            raise DataError(f"{path}: entry {i}: duplicate question_id {row['question_id']!r}")
        out[row["question_id"]] = row["answer"]
    return out


def read_vqa_annotations(path: str | Path) -> list[dict]:
    """Annotation dicts from a VQA annotations JSON ({"annotations": [...]}, or a bare list), or
    from a `datasets` source with one row per question (lmms-lab VQAv2 / OK-VQA layout)."""
    from vlmlab.data.sources import is_dataset_source

    if is_dataset_source(path):
        return _annotations_from_table(path)
    path = Path(path)
    data = _load_json(path)
    anns = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(anns, list):
        raise DataError(f"{path}: expected a VQA annotation file with an 'annotations' list")
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict) or "question_id" not in ann or not isinstance(ann.get("answers"), list):
            raise DataError(f"{path}: annotation {i} needs 'question_id' and an 'answers' list")
    return anns


def read_vqa_question_ids(path: str | Path) -> list[Any]:
    """Question ids from a VQA questions JSON ({"questions": [{"question_id", ...}]})."""
    path = Path(path)
    data = _load_json(path)
    qs = data.get("questions") if isinstance(data, dict) else data
    if not isinstance(qs, list) or not all(isinstance(q, dict) and "question_id" in q for q in qs):
        raise DataError(f"{path}: expected a VQA questions file with a 'questions' list of objects with 'question_id'")
    return [q["question_id"] for q in qs]


def _annotations_from_table(source: str | Path) -> list[dict]:
    """VQA annotation dicts from a one-row-per-question table; answers may be strings or dicts."""
    from vlmlab.data.sources import read_rows

    table = read_rows(source)
    qid_col = table.find_column(("question_id", "qid"), "the question id")
    answers_col = table.find_column(("answers",), "the human answers")
    anns = []
    for row in table.rows:
        answers = row.values.get(answers_col)
        if not isinstance(answers, list) or not answers:
            raise DataError(f"{table.where(row)}: column {answers_col!r} holds no answers list; scoring needs the human answers")
        anns.append({
            **{k: row.values[k] for k in ("answer_type", "question_type") if isinstance(row.values.get(k), str)},
            "question_id": row.values[qid_col],
            "answers": [a if isinstance(a, dict) else {"answer": a, "answer_id": i + 1} for i, a in enumerate(answers)],
        })
    return anns


def _references_from_table(source: str | Path) -> dict[str, list[str]]:
    """{id: [references]} from a parquet/arrow/save_to_disk/hub table (COCO-Caption style copies)."""
    from vlmlab.data.captions import CAPTION_COLUMNS
    from vlmlab.data.sources import read_rows

    table = read_rows(source)
    id_col = table.find_column(("id", "image_id", "question_id"), "the id")
    caption_col = table.find_column(CAPTION_COLUMNS, "the caption")
    out: dict[str, list[str]] = {}
    for row in table.rows:
        value = row.values.get(caption_col)
        refs = value if isinstance(value, list) else [value]
        if not refs or not all(isinstance(r, str) for r in refs):
            raise DataError(f"{table.where(row)}: column {caption_col!r} must hold a caption or a list of captions")
        out.setdefault(str(row.values.get(id_col)), []).extend(refs)
    return out
