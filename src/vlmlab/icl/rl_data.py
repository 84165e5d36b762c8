"""RL data: candidate demonstration sequences per anchor, with the scorer's answer and its VQA accuracy.

For each anchor: the beams from the beam stage (`source="beam"`, `beam_score` = cumulative InfoScore
when known, else the marginal) plus `n_sampled` random ordered sequences from the same pool
(`source="sampled"`, `beam_score=None`), none repeated. The scorer VLM answers the anchor after
each sequence (greedy, batched); `vqa_acc_score` is the official VQA accuracy against the anchor's
human answers and `vqa_correct` is `vqa_acc_score >= correct_threshold`.

`balance` keeps, per anchor, the top-P positives (by accuracy, then beam score) and the top-N hard
negatives (wrong answers the search ranked highest), and drops anchors with fewer than M positives.
`rl_statistics` gives the before/after table.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np

from vlmlab.data.records import VQARecord
from vlmlab.icl.prompts import generation_request
from vlmlab.models.base import Backend


def anchor_seed(seed: int, anchor_id: str) -> list[int]:
    """A generator seed for one anchor that does not depend on processing order or rank."""
    return [seed, int(hashlib.sha256(anchor_id.encode()).hexdigest()[:8], 16)]


def candidate_sequences(beam_record: dict[str, Any], n_sampled: int, shots: int, seed: int) -> list[dict[str, Any]]:
    """The beams of one anchor plus `n_sampled` distinct random sequences of `shots` pool positions."""
    pool = [str(p) for p in beam_record["pool"]]
    out: list[dict[str, Any]] = []
    seen: set[tuple[int, ...]] = set()
    for beam in beam_record["beams"]:
        positions = [int(p) for p in beam["positions"]]
        if tuple(positions) in seen:
            continue
        seen.add(tuple(positions))
        score = beam.get("cumulative")
        score = beam.get("marginal") if score is None else score
        out.append({"ids": [pool[p] for p in positions], "positions": positions, "beam_score": None if score is None else float(score), "source": "beam"})
    if n_sampled > 0:
        if shots > len(pool):
            from vlmlab.errors import DataError

            raise DataError(f"anchor {beam_record['id']}: shots={shots} is larger than its pool ({len(pool)})")
        rng = np.random.default_rng(anchor_seed(seed, str(beam_record["id"])))
        added, attempts = 0, 0
        while added < n_sampled and attempts < 20 * n_sampled:
            attempts += 1
            positions = [int(p) for p in rng.choice(len(pool), size=shots, replace=False)]
            if tuple(positions) in seen:
                continue
            seen.add(tuple(positions))
            out.append({"ids": [pool[p] for p in positions], "positions": positions, "beam_score": None, "source": "sampled"})
            added += 1
    return out


def answer_candidates(
    backend: Backend,
    anchor: VQARecord,
    pool: Sequence[VQARecord],
    candidates: list[dict[str, Any]],
    *,
    max_new_tokens: int = 10,
    batch_size: int = 16,
    vqa_mode: str = "official",
    correct_threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """Fill `answer`, `status`, `vqa_acc_score`, `vqa_correct` of each candidate (a new list)."""
    from vlmlab.metrics.vqa import question_accuracy

    requests = [generation_request(f"{anchor.question_id}/c{i}", [pool[p] for p in c["positions"]], anchor, max_new_tokens) for i, c in enumerate(candidates)]
    results = []
    for start in range(0, len(requests), batch_size):
        results.extend(backend.generate(requests[start : start + batch_size]))
    out = []
    for cand, res in zip(candidates, results):
        row = dict(cand)
        if res.status == "error":
            row.update(answer=None, status="error", error=res.error, vqa_acc_score=0.0, vqa_correct=False)
        else:
            acc = float(question_accuracy(res.text, list(anchor.answers), mode=vqa_mode)) if res.status == "ok" else 0.0
            row.update(answer=res.text, status=res.status, vqa_acc_score=acc, vqa_correct=bool(acc >= correct_threshold))
        out.append(row)
    return out


def _beam_key(c: dict[str, Any]) -> float:
    return -np.inf if c.get("beam_score") is None else float(c["beam_score"])


def balance(candidates: list[dict[str, Any]], top_positives: int, top_negatives: int) -> list[dict[str, Any]]:
    """Top-P positives (accuracy, then beam score) and top-N hard negatives (beam score, then accuracy)."""
    usable = [(i, c) for i, c in enumerate(candidates) if c.get("status", "ok") != "error"]
    pos = [ic for ic in usable if ic[1]["vqa_correct"]]
    neg = [ic for ic in usable if not ic[1]["vqa_correct"]]
    pos.sort(key=lambda ic: (-ic[1]["vqa_acc_score"], -_beam_key(ic[1]), ic[0]))
    neg.sort(key=lambda ic: (-_beam_key(ic[1]), -ic[1]["vqa_acc_score"], ic[0]))
    return [c for _, c in pos[:top_positives]] + [c for _, c in neg[:top_negatives]]


def rl_statistics(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Queries, candidates, positives and positive ratio over per-anchor records."""
    cands = [c for r in records for c in r["candidates"]]
    positives = sum(bool(c["vqa_correct"]) for c in cands)
    return {
        "queries": len(records),
        "candidates": len(cands),
        "positives": positives,
        "positive_ratio": positives / len(cands) if cands else 0.0,
        "candidates_per_query": len(cands) / len(records) if records else 0.0,
        "mean_vqa_acc": float(np.mean([c["vqa_acc_score"] for c in cands])) if cands else 0.0,
    }


def balance_records(records: Sequence[dict[str, Any]], top_positives: int, top_negatives: int, min_positives: int) -> list[dict[str, Any]]:
    """Balance each anchor's candidates and drop anchors with fewer than `min_positives` positives."""
    out = []
    for rec in records:
        n_pos = sum(bool(c["vqa_correct"]) for c in rec["candidates"] if c.get("status", "ok") != "error")
        if n_pos < min_positives:
            continue
        out.append({**rec, "candidates": balance(rec["candidates"], top_positives, top_negatives)})
    return out
