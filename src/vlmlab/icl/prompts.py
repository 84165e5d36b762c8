"""ICL conversations: demonstrations as prior chat turns, then the query.

Each demonstration is a user turn (image, question) followed by an assistant turn (its answer); the
query is a final user turn (image, question). Backends render these through the model's own chat
template, so nothing here is model-specific. With `score()`, the target is the query's answer.
"""

from __future__ import annotations

from typing import Sequence

from vlmlab.data.records import VQARecord
from vlmlab.icl.data import target_answer
from vlmlab.models.base import GenerationRequest, ScoreRequest, Turn


def icl_conversation(demos: Sequence[VQARecord], query: VQARecord) -> list[Turn]:
    """Turns for `demos` (in prompt order, first = farthest from the query) followed by `query`."""
    turns: list[Turn] = []
    for d in demos:
        turns.append(Turn("user", [d.image, d.question]))
        turns.append(Turn("assistant", [target_answer(d)]))
    turns.append(Turn("user", [query.image, query.question]))
    return turns


def score_request(request_id: str, demos: Sequence[VQARecord], query: VQARecord) -> ScoreRequest:
    """Teacher-forced score of the query's answer after `demos`."""
    return ScoreRequest(id=request_id, conversation=icl_conversation(demos, query), target=target_answer(query))


def generation_request(request_id: str, demos: Sequence[VQARecord], query: VQARecord, max_new_tokens: int = 10) -> GenerationRequest:
    """Greedy answer generation for the query after `demos`."""
    return GenerationRequest(id=request_id, conversation=icl_conversation(demos, query), max_new_tokens=max_new_tokens, temperature=0.0)
