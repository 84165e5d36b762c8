"""RL data: candidate demonstration sequences per anchor, with the scorer's answer and its VQA accuracy.

For each anchor: the beams from the beam stage (`source="beam"`, `beam_score` = cumulative InfoScore
when known, else the marginal) plus `n_sampled` random ordered sequences from the same pool
(`source="sampled"`), none repeated. The scorer VLM answers the anchor after each sequence (greedy,
batched); `vqa_acc_score` is the VQA accuracy against the anchor's human answers and `vqa_correct`
is `vqa_acc_score >= correct_threshold` (or `>`, upstream's `> 0`). `score_candidates` gives every
candidate `vqa_gt_prob` = P(answer | sequence, query) (upstream Lever-Plus) and each sampled one its
real InfoScore P(y|seq⊕x) − P(y|x) as `beam_score`, scored like the beams (same backend,
`score_eos`, prompt format), so no reward ever imputes a missing InfoScore.

`mined_sequences` (upstream `mine_positive_samples.py`, "mine_old"): the candidates of earlier RL data
(other rl-data runs or imported upstream files, all their queries) for this run's anchors, to be
answered again by this scorer; only those it answers right are kept (source `mined`).

`balance` keeps, per anchor, the top-P positives (by accuracy, then beam score) and the top-N hard
negatives (wrong answers the search ranked highest), and drops anchors with fewer than M positives.
`rl_statistics` gives the before/after table.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from difflib import SequenceMatcher
from typing import Any, Sequence

import numpy as np

from vlmlab.data.records import VQARecord
from vlmlab.icl.infoscore import answer_probabilities
from vlmlab.icl.prompts import AnswerPostprocess, PromptFormat, generation_request, postprocess_answer, score_request
from vlmlab.models.base import Backend


def anchor_seed(seed: int, anchor_id: str) -> list[int]:
    """A generator seed for one anchor that does not depend on processing order or rank."""
    return [seed, int(hashlib.sha256(anchor_id.encode()).hexdigest()[:8], 16)]


def candidate_sequences(
    beam_record: dict[str, Any], n_sampled: int, shots: int, seed: int,
    extra: Sequence[tuple[str, list[int]]] = (), use_beams: bool = True,
) -> list[dict[str, Any]]:
    """The beams of one anchor, then `extra` (source, prompt-order positions) sequences, then
    `n_sampled` distinct random sequences of `shots` pool positions; none repeated."""
    pool = [str(p) for p in beam_record["pool"]]
    out: list[dict[str, Any]] = []
    seen: set[tuple[int, ...]] = set()
    for beam in beam_record["beams"] if use_beams else []:
        positions = [int(p) for p in beam["positions"]]
        if tuple(positions) in seen:
            continue
        seen.add(tuple(positions))
        score = beam.get("cumulative")
        score = beam.get("marginal") if score is None else score
        out.append({"ids": [pool[p] for p in positions], "positions": positions, "beam_score": None if score is None else float(score), "source": "beam"})
    for source, positions in extra:
        if tuple(positions) not in seen:
            seen.add(tuple(positions))
            out.append({"ids": [pool[p] for p in positions], "positions": list(positions), "beam_score": None, "source": source})
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


def policy_candidates(
    beams: Sequence[dict[str, Any]],
    index_dir: Any,
    selector_dir: Any | None,
    sources: Sequence[str],
    *,
    provenance: dict[str, Any],
    shots: int,
    selector_beams: int = 5,
    temperatures: Sequence[float] = (1.0, 1.3),
    samples: int = 2,
    seed: int = 0,
) -> dict[str, list[tuple[str, list[int]]]]:
    """Per anchor id, the (source, prompt-order positions) sequences of the non-beam sources.

    - `retrieval`: the `shots` pool items whose question text is most similar to the anchor's, the most
      similar next to the query;
    - `selector-beams`: the selector checkpoint's own `selector_beams` most probable sequences;
    - `selector-samples`: `samples` sequences per temperature sampled from its policy (upstream 1.0, 1.3).

    The selector must have been trained on this index and these pools (`check_fingerprint`, strict).
    """
    import torch

    from vlmlab.icl.selectors.checkpoint import check_fingerprint, load_selector, read_selector_meta
    from vlmlab.icl.selectors.data import DataFingerprint, selection_order, selector_provenance
    from vlmlab.icl.selectors.records import load_index_embeddings
    from vlmlab.icl.selectors.sampling import selector_beams as policy_beams, selector_samples

    out: dict[str, list[tuple[str, list[int]]]] = {str(b["id"]): [] for b in beams}
    ids, text = load_index_embeddings(index_dir, "text")
    row = {q: i for i, q in enumerate(ids)}
    if "retrieval" in sources:
        for b in beams:
            pool_rows = [row[str(p)] for p in b["pool"]]
            sims = text[pool_rows] @ text[row[str(b["id"])]]
            best = [int(p) for p in np.argsort(-sims, kind="stable")[:shots]]
            out[str(b["id"])].append(("retrieval", best[::-1]))
    if not any(s.startswith("selector") for s in sources):
        return out
    config, saved, meta = read_selector_meta(selector_dir)
    support_ids, support = load_index_embeddings(index_dir, saved.modality, demonstrations=saved.icd_answers)
    query = load_index_embeddings(index_dir, saved.modality)[1]
    here = DataFingerprint.from_ids(saved.dataset, support_ids, support.shape[1], saved.modality, saved.icd_answers,
                                    selector_provenance(provenance["embedders"], support, provenance["pool_sampler"],
                                                        provenance["pool_k"], provenance.get("pool_mix_weights")))
    check_fingerprint(selector_dir, here)
    model = load_selector(selector_dir)
    q = torch.from_numpy(query[[row[str(b["id"])] for b in beams]])
    k = max(len(b["pool"]) for b in beams)
    pools = torch.zeros(len(beams), k, support.shape[1])
    mask = torch.zeros(len(beams), k, dtype=torch.bool)
    for i, b in enumerate(beams):
        rows = [row[str(p)] for p in b["pool"]]
        pools[i, : len(rows)] = torch.from_numpy(support[rows])
        mask[i, : len(rows)] = True
    found: list[tuple[str, torch.Tensor]] = []
    if "selector-beams" in sources:
        found.append(("selector-beam", policy_beams(model, q, pools, mask, shots, selector_beams)[0]))
    if "selector-samples" in sources:
        gen = torch.Generator().manual_seed(seed)
        found += [(f"selector-t{t:g}", selector_samples(model, q, pools, mask, shots, samples, t, gen)) for t in temperatures]
    order = str(meta.get("order", "right"))
    for source, seqs in found:
        for i, b in enumerate(beams):
            for seq in seqs[i].tolist():
                chosen = seq[::-1] if config.reverse_seq else seq  # back to selection order
                out[str(b["id"])].append((source, selection_order(chosen, order)))  # selection -> prompt order
    return out


def mined_sequences(beams: Sequence[dict[str, Any]], earlier: Sequence[tuple[str, Sequence[dict[str, Any]]]],
                    shots: int) -> tuple[dict[str, list[tuple[str, list[int]]]], dict[str, int]]:
    """Per anchor id, ("mined", prompt-order positions) of earlier RL data's candidates for that anchor.

    Args:
        beams: this run's beam records (their pools decide the positions).
        earlier: (file name, records `{"id", "candidates": [{"ids", ...}]}`) of earlier RL data.
        shots: the beams' shots; an earlier file of other shots is refused.

    Returns:
        The sequences and counts: `offered` (candidates of this run's anchors), `outside_pool`
        (an ICD is not in this anchor's pool: skipped), `anchors` (anchors with any).

    Raises:
        DataError: a candidate without `ids`, or with another number of ICDs than `shots`.
    """
    from vlmlab.errors import DataError

    pools = {str(b["id"]): {str(q): i for i, q in enumerate(b["pool"])} for b in beams}
    out: dict[str, list[tuple[str, list[int]]]] = {a: [] for a in pools}
    counts = {"offered": 0, "outside_pool": 0, "anchors": 0}
    for name, records in earlier:
        for line, rec in enumerate(records, start=1):
            anchor = str(rec.get("id"))
            if anchor not in pools:
                continue
            for c, cand in enumerate(rec.get("candidates") or []):
                ids = cand.get("ids")
                if not isinstance(ids, list) or len(ids) != shots:
                    raise DataError(f"{name} line {line} (anchor {anchor}, candidate {c}): needs 'ids' of {shots} ICDs (the beams' shots), "
                                    f"got {ids!r}; mine from RL data of the same shots")
                counts["offered"] += 1
                if not all(str(q) in pools[anchor] for q in ids):
                    counts["outside_pool"] += 1
                    continue
                out[anchor].append(("mined", [pools[anchor][str(q)] for q in ids]))
    counts["anchors"] = sum(bool(v) for v in out.values())
    return out, counts


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
    correct_comparison: str = ">=",
    prompt_format: PromptFormat = "chat",
    postprocess: AnswerPostprocess = "none",
) -> list[dict[str, Any]]:
    """Fill `answer`, `status`, `vqa_acc_score`, `vqa_correct`, `vqa_rel_score` of each candidate (a new list)."""
    from vlmlab.metrics.vqa import question_accuracy

    requests = [generation_request(f"{anchor.question_id}/c{i}", [pool[p] for p in c["positions"]], anchor, max_new_tokens, prompt_format)
                for i, c in enumerate(candidates)]
    results = []
    for start in range(0, len(requests), batch_size):
        results.extend(backend.generate(requests[start : start + batch_size]))
    out = []
    for cand, res in zip(candidates, results):
        row = dict(cand)
        if res.status == "error":
            row.update(answer=None, status="error", error=res.error, vqa_acc_score=0.0, vqa_correct=False)
        else:
            scored = postprocess_answer(res.text, postprocess)
            acc = float(question_accuracy(scored, list(anchor.answers), mode=vqa_mode)) if res.status == "ok" else 0.0
            correct = acc > correct_threshold if correct_comparison == ">" else acc >= correct_threshold
            row.update(answer=res.text, status=res.status, vqa_acc_score=acc, vqa_correct=bool(correct),
                       vqa_rel_score=relevance(scored, list(anchor.answers)))
            if postprocess != "none":
                row["answer_scored"] = scored
        out.append(row)
    return out


def score_candidates(
    backend: Backend,
    anchor: VQARecord,
    pool: Sequence[VQARecord],
    candidates: list[dict[str, Any]],
    *,
    score_eos: bool = True,
    prompt_format: PromptFormat = "chat",
    batch_size: int = 16,
    rescore_beams: bool = False,
) -> list[dict[str, Any]]:
    """Each candidate with `vqa_gt_prob`, and sampled ones with their real InfoScore as `beam_score` (a new list).

    One stream of 1 + C score requests: P(y|x), then P(y|seq⊕x) per candidate, scored as the beam
    search scores (pass the beam run's `score_eos` and `prompt_format`). `rescore_beams`: replace the
    beams' search scores too (when this backend is not the one that searched, so all are comparable).
    """
    def request(rid: str, positions: Sequence[int]):
        return score_request(rid, [pool[p] for p in positions], anchor, score_eos=score_eos, prompt_format=prompt_format)

    reqs = [request(f"{anchor.question_id}/base", [])] + [request(f"{anchor.question_id}/p{i}", c["positions"]) for i, c in enumerate(candidates)]
    probs = answer_probabilities(backend, reqs, batch_size)
    out = []
    for cand, prob in zip(candidates, probs[1:].tolist()):
        row = {**cand, "vqa_gt_prob": float(prob)}
        if row.get("beam_score") is None or rescore_beams:
            row["beam_score"] = float(prob - probs[0])
        out.append(row)
    return out


def relevance(prediction: str | None, answers: Sequence[str]) -> float:
    """Upstream Lever-Plus `vqa_rel_score`: how close a (wrong) answer is to the human answers.

    max over answers of max(token F1 on lower-case alphanumeric tokens, difflib's character ratio).
    """
    pred = (prediction or "").strip().lower()
    golds = [(a or "").strip().lower() for a in answers]
    if not pred or not golds:
        return 0.0

    def tokens(text: str) -> Counter:
        return Counter(re.findall(r"[a-z0-9]+", text))

    def f1(a: Counter, b: Counter) -> float:
        common = sum((a & b).values())
        if not a or not b or not common:
            return 0.0
        prec, rec = common / sum(a.values()), common / sum(b.values())
        return 2 * prec * rec / (prec + rec)

    best_f1 = max(f1(tokens(pred), tokens(g)) for g in golds)
    best_chars = max(SequenceMatcher(None, pred, g).ratio() for g in golds)
    return float(max(best_f1, best_chars))


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


def balance_records(
    records: Sequence[dict[str, Any]], top_positives: int, top_negatives: int, min_positives: int,
    require_negatives: bool = False, positive_ratio: tuple[float, float] | None = None,
) -> list[dict[str, Any]]:
    """Balance each anchor's candidates and drop anchors that do not qualify.

    Dropped: fewer than `min_positives` positives; with `require_negatives`, no wrong candidate
    (upstream: keep only queries with both); with `positive_ratio` (lo, hi), a balanced set whose
    share of positives lies outside [lo, hi] (upstream's 40-60%).
    """
    out = []
    for rec in records:
        usable = [c for c in rec["candidates"] if c.get("status", "ok") != "error"]
        n_pos = sum(bool(c["vqa_correct"]) for c in usable)
        if n_pos < min_positives or (require_negatives and n_pos == len(usable)):
            continue
        kept = balance(rec["candidates"], top_positives, top_negatives)
        if positive_ratio is not None:
            share = sum(bool(c["vqa_correct"]) for c in kept) / len(kept) if kept else 0.0
            if not positive_ratio[0] <= share <= positive_ratio[1]:
                continue
        out.append({**rec, "candidates": kept})
    return out
