"""Upstream Lever-Plus RL data (`rl_data` JSON), both ways.

Lever-Plus `generate_rl_data.py` (yunsoft2019/Lever-Plus) writes, with `json.dump(..., indent=2)`:

    {"_meta": {"created_at", "vqa_model", "task_gen_args", "eval", "strict_eval", "save_prompts", "notes"},
     "<query row>": {"query": {"query_id", "question_id", "image_id", "question", "gt_answers_raw", "gt_answers_norm"},
                     "pointer_candidates": [{"pointer", "pointer_pos", "gen_method", "beam_rank", "beam_score",
                                             "logprob_score", "temperature", "vqa_pred_answer", "vqa_correct",
                                             "vqa_acc_score", "eval_failed", ...}, ...]}}

Query keys and `pointer` are dataset ROW POSITIONS (as in Lever-LM beam files; files repaired for
per-query pools carry the rows in `pointer_global` and pool positions in `pointer`). The VLM sees
`pointer[0]`, `pointer[1]`, then the query: `pointer` is prompt order, as our `positions` are.
`vqa_correct` is 0/1, `eval_failed` marks a candidate the evaluator failed on (our `status: error`).

Import maps rows to question ids through `SupportRows` and checks the query block's `question_id`
against the row it names, so a file made on another split is refused, not mismatched. Upstream
fields we do not use are kept under `lever_plus` and written back unchanged by export. Note that
Lever-Plus's `beam_score` is its pointer network's beam score, not an InfoScore. Export writes
`_meta` with upstream's keys plus `vlmlab` (the support rows' sha256, checked on import).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vlmlab.data.records import VQARecord
from vlmlab.errors import DataError
from vlmlab.icl.lever_lm import SupportRows, read_json
from vlmlab.runs import atomic_write_text

MAPPED = ("pointer", "pointer_pos", "pointer_global", "beam_score", "vqa_pred_answer", "vqa_correct", "vqa_acc_score", "eval_failed")


def _rows(cand: Mapping[str, Any], where: str) -> list[Any]:
    rows = cand.get("pointer_global", cand.get("pointer"))
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{where}: needs 'pointer' (a list of rows)")
    return rows


def import_lever_plus(path: Path | str, support: SupportRows, *,
                      pools: Mapping[str, Sequence[str]] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read an upstream `rl_data` JSON into our `rl.jsonl` records (+ its `_meta` and provenance).

    Args:
        path: the upstream file.
        support: the rows its ids refer to.
        pools: anchor id -> pool ids (e.g. the beams these candidates go with); every ICD must be
            in it. Without it, a pool is the ICDs the candidates use, in first-use order.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected Lever-Plus rl_data, an object query row -> {{query, pointer_candidates}}")
    meta = data.get("_meta") if isinstance(data.get("_meta"), dict) else {}
    support.check(meta.get("vlmlab"), str(path))
    records = []
    for key, entry in data.items():
        if key.startswith("_"):
            continue  # `_meta` and other non-row keys, as upstream's reader skips them
        where = f"{path} query {key}"
        anchor = support.qid(key, where)
        if not isinstance(entry, dict) or not isinstance(entry.get("pointer_candidates"), list):
            raise DataError(f"{where}: needs 'pointer_candidates' (a list)")
        query = entry.get("query") if isinstance(entry.get("query"), dict) else {}
        if "question_id" in query and str(query["question_id"]) != anchor:
            raise DataError(f"{where}: its question_id {query['question_id']} is not question {anchor} at row {key} of {support.source}; "
                            "import with the index run of the split upstream used")
        cands = []
        for c, cand in enumerate(entry["pointer_candidates"]):
            cw = f"{where} candidate {c}"
            ids = [support.qid(r, cw) for r in _rows(cand, cw)]
            failed = bool(cand.get("eval_failed")) or cand.get("vqa_eval_mode") == "error"
            cands.append({
                "ids": ids,
                "beam_score": None if cand.get("beam_score") is None else float(cand["beam_score"]),
                "source": "beam" if cand.get("gen_method") == "beam" else "sampled",
                "answer": cand.get("vqa_pred_answer"),
                "status": "error" if failed else "ok",
                "vqa_acc_score": float(cand.get("vqa_acc_score") or 0.0),
                "vqa_correct": bool(cand.get("vqa_correct")),
                "lever_plus": {**{k: v for k, v in cand.items() if k not in MAPPED}, "_order": list(cand)},
            })
        pool = [str(p) for p in pools[anchor]] if pools is not None and anchor in pools else list(dict.fromkeys(i for c in cands for i in c["ids"]))
        if pools is not None and anchor not in pools:
            raise DataError(f"{where}: query {anchor} has no beams/pool; import with the beams these candidates go with")
        at = {q: i for i, q in enumerate(pool)}
        for c, cand in enumerate(cands):
            missing = [i for i in cand["ids"] if i not in at]
            if missing:
                raise DataError(f"{where} candidate {c}: ICD question ids {missing} are not in its pool")
            cand["positions"] = [at[i] for i in cand["ids"]]
        records.append({"id": anchor, "pool": pool, "candidates": cands, "lever_plus_query": query})
    provenance = {"format": "lever-plus", "upstream_file": str(path), "upstream_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                  "_meta": meta, **support.meta(), "index": support.source}
    return records, provenance


def _query_block(row: int, record: VQARecord | None, kept: Mapping[str, Any]) -> dict[str, Any]:
    if kept:
        return {**kept, "query_id": row}
    qid = record.question_id if record is not None else ""
    block: dict[str, Any] = {"query_id": row, "question_id": int(qid) if qid.isdigit() else qid}
    if record is not None:
        block.update(image_id=record.image_id, question=record.question, gt_answers_raw=list(record.answers))
    return block


def _candidate(rows: list[int], cand: Mapping[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """One upstream `pointer_candidates` entry; an imported one keeps its fields and key order."""
    answer = cand.get("answer") or ""
    failed = cand.get("status") == "error"
    order = kept.pop("_order", None)
    out = {"pointer": rows, "gen_method": "random", "beam_rank": None, "beam_score": cand.get("beam_score"), "logprob_score": None,
           "temperature": None, "pointer_pos": rows, "vqa_raw_generation": answer, "vqa_pred_answer": answer,
           "vqa_correct": int(bool(cand.get("vqa_correct"))), "vqa_acc_score": float(cand.get("vqa_acc_score") or 0.0),
           "vqa_eval_mode": "error" if failed else "vqaEval", "eval_split_used": None, "eval_failed": failed}
    tail = {k: out.pop(k) for k in ("vqa_eval_mode", "eval_split_used", "eval_failed")}
    fixed = {k: out[k] for k in ("pointer", "beam_score", "pointer_pos", "vqa_pred_answer", "vqa_correct", "vqa_acc_score")}
    out = {**out, **kept, **fixed, **{k: kept.get(k, v) for k, v in tail.items()}, "eval_failed": failed}
    if order:
        out = {**{k: out[k] for k in order if k in out}, **{k: v for k, v in out.items() if k not in order}}
    return out


def export_lever_plus(records: Iterable[Mapping[str, Any]], support: SupportRows, *, where: str = "rl.jsonl",
                      records_by_id: Mapping[str, VQARecord] | None = None, meta: Mapping[str, Any] | None = None,
                      vqa_model: str = "", gen_args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Our rl-data records -> the upstream object (`_meta` first, then one entry per query row).

    Args:
        records: `rl.jsonl` / `rl_raw.jsonl` records (`id`, `pool`, `candidates`).
        support: the rows ids are written as.
        where: the source's name, for errors.
        records_by_id: support records, to fill each query block (question, image, answers).
        meta: an imported file's `_meta`, kept (its `vlmlab` entry is replaced).
        vqa_model / gen_args: what `_meta` says about the answering model.
    """
    head = dict(meta) if meta else {
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), "vqa_model": vqa_model,
        "task_gen_args": dict(gen_args or {}), "eval": {"train_ques_path": None, "train_ann_path": None, "val_ques_path": None, "val_ann_path": None},
        "strict_eval": True, "save_prompts": False, "notes": "written by vlmlab icl export-lever-plus",
    }
    head["vlmlab"] = {**support.meta(), "source": where}
    out: dict[str, Any] = {"_meta": head}
    for n, rec in enumerate(records, start=1):
        at = f"{where} line {n}"
        row = support.row(str(rec["id"]), at)
        rank = 0
        cands = []
        for cand in rec["candidates"]:
            beam = cand.get("source") == "beam"
            kept = dict(cand.get("lever_plus") or {"gen_method": "beam" if beam else "random", "beam_rank": rank if beam else None})
            rank += beam
            cands.append(_candidate([support.row(str(i), at) for i in cand["ids"]], cand, kept))
        record = records_by_id.get(str(rec["id"])) if records_by_id else None
        out[str(row)] = {"query": _query_block(row, record, rec.get("lever_plus_query") or {}), "pointer_candidates": cands}
    return out


def write_lever_plus(records: Iterable[Mapping[str, Any]], path: Path | str, support: SupportRows, **kwargs: Any) -> Path:
    """Write `export_lever_plus(...)` as upstream does (`indent=2`), atomically."""
    atomic_write_text(path, json.dumps(export_lever_plus(records, support, **kwargs), indent=2))
    return Path(path)
