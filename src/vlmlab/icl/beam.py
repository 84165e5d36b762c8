"""InfoScore beam search: the demonstration sequences that most raise P(answer) for one anchor.

For anchor x (answer y) and its pool of K support items, step t extends every beam S by each
candidate c ∉ S: `order="left"` puts c in front of S (farthest from the query, upstream Lever-LM),
`order="right"` appends it next to the query. A child's step score is the marginal
`IS(c|S,x) = P(y|c⊕S⊕x) − P(y|S⊕x)`; its cumulative score is `P(y|child⊕x) − P(y|x)`, the sum of
its step scores (telescoping). Children of all beams compete; the best `beam_size` by `rank_by`
(`marginal`, upstream semantics, or `cumulative`) survive.

Cost: `P(y|x)` once per anchor, and `P(y|S⊕x)` is never recomputed — a beam's probability is the
child score that created it: 1 + K + beam·(K−1) forward passes per anchor for 2 shots (upstream
Lever-LM re-scores each beam: + beam per later step). The children of all beams go to the backend
as one request stream in chunks of `batch_size`. Selection is vectorised (a [beams, K] matrix, one
argsort). The HF backend's score path does the per-image work once per image content hash — decoding
and preprocessing (`image_input_cache`), the vision tower (`vision_cache`), and once all of a batch's
images have features, it does not even collate their pixels — runs the LM head only at the
positions that predict answer tokens, and, with `order="right"`, runs the demonstrations a beam's
candidates share through the language model once per batch (`models/prefix_scoring`; with
`order="left"` the candidate comes first, so only the chat template's header is shared; see
docs/performance.md). `benchmarks/bench_beam.py` measures all this against the upstream loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from vlmlab.data.records import VQARecord
from vlmlab.errors import ConfigError, DataError
from vlmlab.icl.infoscore import ScoreCounter, answer_probabilities
from vlmlab.icl.prompts import PromptFormat, score_request
from vlmlab.models.base import Backend

Order = Literal["left", "right"]
RankBy = Literal["marginal", "cumulative"]


@dataclass
class Beam:
    """One demonstration sequence: `positions` in prompt order (pool positions)."""

    positions: list[int]
    step_scores: list[float]  # marginal InfoScore of each step, in selection order
    prob: float  # P(y | sequence ⊕ x)

    @property
    def marginal(self) -> float:
        return self.step_scores[-1] if self.step_scores else 0.0

    @property
    def cumulative(self) -> float:
        return float(sum(self.step_scores))

    def to_json(self, pool_ids: Sequence[str]) -> dict:
        return {
            "ids": [pool_ids[p] for p in self.positions],
            "positions": list(self.positions),
            "step_scores": list(self.step_scores),
            "marginal": self.marginal,
            "cumulative": self.cumulative,
        }


@dataclass
class BeamSearchResult:
    beams: list[Beam]  # best first
    base_prob: float  # P(y | x), zero-shot
    forward_passes: int  # score requests sent (each one full forward over a prompt)


def extend(positions: Sequence[int], candidate: int, order: Order) -> list[int]:
    """The child sequence in prompt order."""
    return [candidate, *positions] if order == "left" else [*positions, candidate]


def check_search(pool_size: int, beam_size: int, shots: int, order: str, rank_by: str) -> None:
    """Validate search settings against the pool before any model call."""
    if order not in ("left", "right"):
        raise ConfigError(f"order must be 'left' or 'right', got {order!r}")
    if rank_by not in ("marginal", "cumulative"):
        raise ConfigError(f"rank_by must be 'marginal' or 'cumulative', got {rank_by!r}")
    if beam_size < 1 or shots < 1:
        raise ConfigError(f"beam_size and shots must be >= 1, got beam_size={beam_size}, shots={shots}")
    if shots > pool_size:
        raise DataError(f"shots={shots} is larger than the candidate pool ({pool_size}); lower shots or raise k")


def beam_search(
    backend: Backend,
    anchor: VQARecord,
    pool: Sequence[VQARecord],
    *,
    beam_size: int = 5,
    shots: int = 2,
    order: Order = "left",
    rank_by: RankBy = "marginal",
    batch_size: int = 16,
    reuse_prefix: bool = True,
    score_eos: bool = True,
    prompt_format: PromptFormat = "chat",
) -> BeamSearchResult:
    """Beam search over demonstration sequences for one anchor.

    Args:
        backend: a scorer with `score()`.
        anchor: the query x; its target answer is y.
        pool: the anchor's candidate pool (never containing the anchor itself).
        beam_size: beams kept per step.
        shots: sequence length.
        order: where a new demonstration goes (`left`: first in the prompt; `right`: last).
        rank_by: `marginal` (step InfoScore, upstream) or `cumulative`.
        batch_size: score requests per backend call.
        reuse_prefix: reuse each beam's probability as P(y|S⊕x) (True) or re-score it per step as
            the upstream loop does (False; same result, more forward passes; kept for checking).
        score_eos: P(y|...) covers the answer AND the end-of-turn token(s) after it (upstream Lever-LM/
            Lever-Plus `add_eos_token=True`: an answer "2" that the model would continue as "20" is
            penalised); False scores the answer tokens only.
        prompt_format: `chat` or `lever-plus` (see `vlmlab.icl.prompts`).

    Returns:
        Beams best first, P(y|x), and the number of forward passes.
    """
    check_search(len(pool), beam_size, shots, order, rank_by)
    if any(p.question_id == anchor.question_id for p in pool):
        raise DataError(f"anchor {anchor.question_id} is in its own candidate pool; rebuild the candidates")
    counter = ScoreCounter()
    k = len(pool)

    def request(rid: str, demos: list[VQARecord]):
        return score_request(rid, demos, anchor, score_eos=score_eos, prompt_format=prompt_format)

    base = float(answer_probabilities(backend, [request(f"{anchor.question_id}/base", [])], batch_size, counter)[0])
    beams = [Beam(positions=[], step_scores=[], prob=base)]
    for step in range(shots):
        if not reuse_prefix and step > 0:
            prefix_requests = [request(f"{anchor.question_id}/prefix{b}", [pool[p] for p in beam.positions]) for b, beam in enumerate(beams)]
            prefix = answer_probabilities(backend, prefix_requests, batch_size, counter)
        else:
            prefix = np.array([b.prob for b in beams])
        taken = np.zeros((len(beams), k), dtype=bool)
        for b, beam in enumerate(beams):
            taken[b, beam.positions] = True
        rows, cols = np.nonzero(~taken)
        requests = [
            request(f"{anchor.question_id}/s{step}b{b}c{c}", [pool[p] for p in extend(beams[b].positions, int(c), order)])
            for b, c in zip(rows.tolist(), cols.tolist())
        ]
        probs = np.full((len(beams), k), np.nan)
        probs[rows, cols] = answer_probabilities(backend, requests, batch_size, counter)
        marginal = probs - prefix[:, None]
        cumulative = probs - base
        key = marginal if rank_by == "marginal" else cumulative
        flat = np.where(taken, -np.inf, key).ravel()
        order_idx = np.argsort(-flat, kind="stable")[: min(beam_size, int((~taken).sum()))]
        new_beams = []
        for idx in order_idx.tolist():
            b, c = divmod(idx, k)
            new_beams.append(
                Beam(
                    positions=extend(beams[b].positions, c, order),
                    step_scores=[*beams[b].step_scores, float(marginal[b, c])],
                    prob=float(probs[b, c]),
                )
            )
        beams = new_beams
    return BeamSearchResult(beams=beams, base_prob=base, forward_passes=counter.requests)
