"""Reading the files `vlmlab score` takes: caption predictions/references and VQA JSON files.

Caption predictions: JSONL of {"id", "prediction"} or CSV/TSV with those columns.
Caption references: JSONL of {"id", "references": [...]} or one row per reference
({"id", "reference"} in JSONL, or CSV/TSV with `id` and `reference` columns).
VQA: predictions as a JSON list of {"question_id", "answer"}; annotations as the VQA v2 / OK-VQA
annotation JSON ({"annotations": [...]}); questions as the VQA questions JSON ({"questions": [...]}).
Every problem is a DataError naming the file and line.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator

from vlmlab.errors import DataError


def _rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row dict) for a JSONL, CSV or TSV file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            with path.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
                for row in reader:
                    yield reader.line_num, row
            return
        with path.open(encoding="utf-8") as f:
            for num, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{num}: not valid JSON ({exc.msg}); expected one JSON object per line") from exc
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{num}: expected a JSON object per line")
                yield num, row
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _field(path: Path, num: int, row: dict, key: str) -> Any:
    if key not in row or row[key] is None:
        raise DataError(f"{path}:{num}: missing {key!r} (columns/keys present: {', '.join(map(str, row)) or 'none'})")
    return row[key]


def read_caption_predictions(path: str | Path) -> dict[str, str]:
    """{id: prediction} from JSONL or CSV/TSV; a duplicate id is an error."""
    path = Path(path)
    out: dict[str, str] = {}
    for num, row in _rows(path):
        item = str(_field(path, num, row, "id"))
        pred = _field(path, num, row, "prediction")
        if not isinstance(pred, str):
            raise DataError(f"{path}:{num}: 'prediction' must be a string, got {type(pred).__name__}")
        if item in out:
            raise DataError(f"{path}:{num}: duplicate id {item!r}; keep one prediction per id")
        out[item] = pred
    if not out:
        raise DataError(f"{path}: no predictions found")
    return out


def read_caption_references(path: str | Path) -> dict[str, list[str]]:
    """{id: [references]} from rows with a `references` list or one `reference` per row."""
    path = Path(path)
    out: dict[str, list[str]] = {}
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
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from exc


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
    """Annotation dicts from a VQA annotations JSON ({"annotations": [...]}, or a bare list)."""
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
