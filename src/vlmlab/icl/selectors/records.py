"""Readers and validators for the icl stage files the selectors train on.

- `load_index_embeddings`: `<index run>/embeddings/{text,image}.npy` + `ids.json` (from `vlmlab.icl.index`,
  the one reader of the index folder, re-exported here);
- `read_jsonl`: `beams.jsonl` / `rl.jsonl`, a bad line named by file and line number;
- `anchor_and_pool`, `sequence_positions`: one record's anchor, pool and ICD positions, checked
  (the anchor is not in its own pool, pool ids exist in the index, `pool[position] == id`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from vlmlab.data.tables import FileRules, jsonl_objects
from vlmlab.errors import DataError
from vlmlab.icl.index import MODALITY_PARTS, load_index_embeddings  # noqa: F401  (re-exported: the index folder has one reader)

Modality = Literal["text", "image", "text+image"]


# A stage file is written by an earlier stage: the way out is to run (or re-run) that stage.
STAGE_FILE = FileRules(
    missing="{path} not found; run the stage that writes it first",
    directory="{path} is a folder, not the file a stage writes; check the path",
    empty=None,  # a stage with nothing to write (no anchors) leaves an empty file
    not_utf8="{path} line {line} is not UTF-8 text; re-run the stage that wrote it",
    bad_json="{path} line {line} is not valid JSON ({msg}); re-run the stage that wrote it",
    not_object="{path} line {line} is not a JSON object",
)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a stage's JSONL file; a bad line is a DataError naming the file and line."""
    return [record for _, record in jsonl_objects(path, STAGE_FILE)]


def required(rec: dict[str, Any], key: str, where: str) -> Any:
    if key not in rec:
        raise DataError(f"{where}: missing key {key!r}")
    return rec[key]


def number(rec: dict[str, Any], key: str, where: str) -> float:
    value = required(rec, key, where)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {key!r} must be a number, got {value!r}") from None


def anchor_and_pool(rec: dict[str, Any], where: str, row_of: dict[str, int]) -> tuple[str, list[str]]:
    anchor = str(required(rec, "id", where))
    pool = required(rec, "pool", where)
    if not isinstance(pool, list) or not pool:
        raise DataError(f"{where} (anchor {anchor}): 'pool' must be a non-empty list of support ids")
    pool = [str(q) for q in pool]
    if len(set(pool)) != len(pool):
        raise DataError(f"{where} (anchor {anchor}): the pool repeats an id; re-run the candidates stage")
    if anchor in pool:
        raise DataError(f"{where}: anchor {anchor} is in its own pool; re-run the candidates stage")
    for qid in pool:
        if qid not in row_of:
            raise DataError(
                f"{where} (anchor {anchor}): pool id {qid} is not in the index ids.json; use the index these candidates were built from"
            )
    return anchor, pool


def sequence_positions(entry: dict[str, Any], pool: list[str], where: str) -> list[int]:
    """Validated positions of one ICD sequence: in range, unique, and `pool[p] == ids[j]`."""
    ids = [str(q) for q in required(entry, "ids", where)]
    positions = required(entry, "positions", where)
    if not isinstance(positions, list) or len(positions) != len(ids) or not ids:
        raise DataError(f"{where}: 'ids' and 'positions' must be non-empty lists of the same length")
    out = []
    for qid, pos in zip(ids, positions):
        if not isinstance(pos, int) or not 0 <= pos < len(pool):
            raise DataError(f"{where}: position {pos!r} is outside the pool of {len(pool)}")
        if pool[pos] != qid:
            raise DataError(f"{where}: position {pos} is {pool[pos]} in the pool but the ICD id is {qid}")
        out.append(pos)
    if len(set(out)) != len(out):
        raise DataError(f"{where}: an ICD repeats within one sequence")
    return out
