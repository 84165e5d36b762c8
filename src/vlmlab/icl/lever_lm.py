"""Interoperability with upstream Lever-LM beam-search files.

Upstream `generate_data.py` writes one JSON object:
`{anchor_id: {"id_list": [[icd_1, ..., icd_n, anchor_id], ...], "score_list": [s, ...]}}` — each
sequence in prompt order with the anchor appended last, and one score per sequence (the last step's
marginal InfoScore, which upstream ranks by). Ids are whatever the dataset uses (integers there).

`export_lever_lm(beam_records)` writes our `beams.jsonl` records in that form; `import_lever_lm`
turns such a file into our records. Upstream files carry no pool and no per-step scores, so an
imported record's `pool` is the given pool (from a candidates run) or else the ids its beams use,
`step_scores` is empty, `marginal` is upstream's score and `cumulative` is null.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vlmlab.errors import DataError
from vlmlab.runs import atomic_write_text


def _upstream_id(qid: str) -> int | str:
    return int(qid) if qid.lstrip("-").isdigit() else qid


def export_lever_lm(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, list]]:
    """Our beam records (`id`, `beams[].ids`, `beams[].marginal`) -> the upstream mapping."""
    out: dict[str, dict[str, list]] = {}
    for rec in records:
        anchor = str(rec["id"])
        out[anchor] = {
            "id_list": [[*(_upstream_id(str(i)) for i in beam["ids"]), _upstream_id(anchor)] for beam in rec["beams"]],
            "score_list": [float(beam["marginal"]) for beam in rec["beams"]],
        }
    return out


def write_lever_lm(records: Iterable[Mapping[str, Any]], path: Path | str) -> Path:
    """Write `export_lever_lm(records)` to `path` atomically."""
    atomic_write_text(path, json.dumps(export_lever_lm(records)))
    return Path(path)


def import_lever_lm(path: Path | str, pools: Mapping[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
    """Read an upstream file into our beam records (anchors in file order).

    Args:
        path: the upstream JSON.
        pools: optional anchor id -> pool ids (e.g. from our candidates stage); positions then
            refer to that pool, and an ICD outside it is a `DataError`.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected an object mapping anchor ids to {{id_list, score_list}}")
    records = []
    for anchor, entry in data.items():
        if not isinstance(entry, dict) or "id_list" not in entry or "score_list" not in entry:
            raise DataError(f"{path}: anchor {anchor}: needs 'id_list' and 'score_list'")
        seqs, scores = entry["id_list"], entry["score_list"]
        if len(seqs) != len(scores):
            raise DataError(f"{path}: anchor {anchor}: {len(seqs)} sequences but {len(scores)} scores")
        icd_lists = []
        for seq in seqs:
            if not seq or str(seq[-1]) != str(anchor):
                raise DataError(f"{path}: anchor {anchor}: each id_list entry must end with the anchor id")
            icd_lists.append([str(i) for i in seq[:-1]])
        if pools is not None:
            if str(anchor) not in pools:
                raise DataError(f"{path}: anchor {anchor} has no candidate pool; import with the candidates run that produced it")
            pool = [str(p) for p in pools[str(anchor)]]
        else:
            pool = list(dict.fromkeys(i for ids in icd_lists for i in ids))
        where = {q: i for i, q in enumerate(pool)}
        beams = []
        for ids, score in zip(icd_lists, scores):
            missing = [i for i in ids if i not in where]
            if missing:
                raise DataError(f"{path}: anchor {anchor}: ICD ids {missing} are not in its pool")
            beams.append({"ids": ids, "positions": [where[i] for i in ids], "step_scores": [], "marginal": float(score), "cumulative": None})
        records.append({"id": str(anchor), "pool": pool, "beams": beams})
    return records
