"""Synthetic selector data with a known right answer, for tests, benchmarks and notebooks (test
support: no product module imports it; `benchmarks/bench_selectors.py` and the selector tests do).

Every support item has a random unit embedding. A hidden matrix W defines how useful candidate c is
for query q: `utility(q, c) = <W q, c>`. Each anchor (a support item) gets its OWN random pool of K
other items; its beams are the top-utility ICDs (best beam = the `shots` best, in order), and its
rl-data candidates are the beams plus random sequences, scored `vqa_correct` when all ICDs are in
the anchor's top `shots` and `vqa_acc_score` = the fraction that are. A selector can only beat
random by learning W, so "beats random on held-out anchors" is a real test of learning.

With `stop_share` > 0 (the STOP variant's world), a hidden direction u splits the queries: the
`stop_share` of items with the largest <u, q> need no demonstration (every step score is negative:
each ICD lowers P(answer)), and for the others the `shots` best ICDs each gain (step scores are
utilities minus the next-best one's). A selector with a STOP token can learn which is which only
from the query embedding. `stop_share=0` gives exactly the records it gave before the option.

The output uses the exact record formats of the beam and rl-data stages.

Example::

    task = synthetic_task(n_anchors=200, support_size=400, pool_size=16, dim=16)
    data = SelectorData.from_records(task.beams, task.support_ids, task.support_emb, rl=task.rl)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SyntheticTask:
    """Index (ids + embeddings) and stage records of a synthetic selection task."""

    support_ids: list[str]
    support_emb: np.ndarray
    beams: list[dict[str, Any]]
    rl: list[dict[str, Any]]
    needs_none: set[str] = field(default_factory=set)  # anchors no demonstration helps (`stop_share`)


def synthetic_task(
    n_anchors: int = 200,
    support_size: int = 400,
    pool_size: int = 16,
    dim: int = 16,
    shots: int = 2,
    num_beams: int = 3,
    sampled_per_anchor: int = 3,
    seed: int = 0,
    stop_share: float = 0.0,
) -> SyntheticTask:
    """Build a synthetic task; deterministic given `seed`.

    Args:
        n_anchors: anchors (each with its own pool, beams and rl candidates).
        support_size: items in the index; anchors are the first `n_anchors` of them.
        pool_size: K, candidates per anchor (the anchor itself is never one of them).
        dim: embedding width D.
        shots: ICDs per sequence.
        num_beams: beams per anchor (at most shots + 1).
        sampled_per_anchor: random sequences added to the rl candidates.
        seed: the one seed of this generator.
        stop_share: share of the queries that need no demonstration (see the module docstring).
    """
    if n_anchors > support_size or pool_size >= support_size:
        raise ValueError("need n_anchors <= support_size and pool_size < support_size")
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((support_size, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    hidden = rng.standard_normal((dim, dim)).astype(np.float32)
    ids = [f"q{i:05d}" for i in range(support_size)]
    none = np.zeros(support_size, dtype=bool)
    if stop_share > 0:  # its own generator: the records of stop_share=0 stay as they were
        u = np.random.default_rng([seed, 1]).standard_normal(dim).astype(np.float32)
        proj = emb @ u
        none = proj > np.quantile(proj, 1.0 - stop_share)
    beams, rl = [], []
    for a in range(n_anchors):
        others = np.delete(np.arange(support_size), a)
        pool_rows = rng.choice(others, size=pool_size, replace=False)
        utility = emb[pool_rows] @ (hidden @ emb[a])
        ranked = np.argsort(-utility, kind="stable")  # positions, best first
        pool = [ids[r] for r in pool_rows]
        top = ranked[: shots + 1]
        gains = utility
        if stop_share > 0:  # every ICD hurts a query that needs none; otherwise the `shots` best each gain
            gains = utility - (utility.max() + 1.0 if none[a] else utility[ranked[shots]])
        anchor_beams = []
        for g in range(min(num_beams, shots + 1)):
            positions = [int(p) for i, p in enumerate(top) if i != shots - g][:shots]
            anchor_beams.append(_sequence(pool, positions, gains))
        beams.append({"id": ids[a], "pool": pool, "beams": anchor_beams})
        gold = set(int(p) for p in ranked[:shots])
        cands = []
        for beam in anchor_beams:
            cands.append(_candidate(beam["positions"], pool, gold, beam["cumulative"], "beam"))
        for _ in range(sampled_per_anchor):
            positions = [int(p) for p in rng.choice(pool_size, size=shots, replace=False)]
            cands.append(_candidate(positions, pool, gold, None, "sampled"))
        rl.append({"id": ids[a], "pool": pool, "candidates": cands})
    return SyntheticTask(ids, emb, beams, rl, {ids[a] for a in range(n_anchors) if none[a]})


def _sequence(pool: list[str], positions: list[int], utility: np.ndarray) -> dict[str, Any]:
    steps = [float(utility[p]) for p in positions]
    return {
        "ids": [pool[p] for p in positions],
        "positions": positions,
        "step_scores": steps,
        "marginal": steps[-1],
        "cumulative": float(sum(steps)),
    }


def _candidate(positions: list[int], pool: list[str], gold: set[int], beam_score: float | None, source: str) -> dict[str, Any]:
    acc = sum(p in gold for p in positions) / len(positions)
    return {
        "ids": [pool[p] for p in positions],
        "positions": positions,
        "answer": "yes" if acc == 1.0 else "no",
        "vqa_acc_score": acc,
        "vqa_correct": acc == 1.0,
        "beam_score": beam_score,
        "source": source,
    }
