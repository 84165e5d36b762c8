"""ICL conversations: demonstrations as prior chat turns, then the query.

Each demonstration is a user turn (image, question) followed by an assistant turn (its answer); the
query is a final user turn (image, question). Backends render these through the model's own chat
template, so nothing here is model-specific. With `score()`, the target is the query's answer.

A `shots`-shot prompt therefore holds `shots + 1` images; `check_backend_images` refuses, before
any item runs, a backend that cannot take that many (BLIP-2 takes exactly one image per prompt).
"""

from __future__ import annotations

from typing import Sequence

from vlmlab.data.records import VQARecord
from vlmlab.errors import ModelError
from vlmlab.icl.data import target_answer
from vlmlab.models.base import Backend, GenerationRequest, ScoreRequest, Turn


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


def images_per_prompt(shots: int) -> int:
    """Images in an ICL prompt with `shots` demonstrations: one per demonstration plus the query's."""
    return shots + 1


def check_backend_images(backend: Backend, shots: int, stage: str) -> None:
    """Raise `ModelError` if `backend` cannot hold the images of a `shots`-shot ICL prompt.

    Call it once per stage, after the backend is loaded and before the first item, so a model that
    cannot see demonstrations (BLIP-2) is one clear error instead of a run where every item fails.
    Backends that do not declare `max_images_per_prompt` (HTTP servers, test doubles) are not checked.

    Args:
        backend: the scorer/answerer.
        shots: the most demonstrations one prompt will hold (0 for zero-shot only).
        stage: the stage name for the message ("beam", "rl-data", "eval").
    """
    limit = getattr(backend, "max_images_per_prompt", None)
    need = images_per_prompt(shots)
    if limit is None or need <= limit:
        return
    from vlmlab.models.registry import FAMILIES

    family = getattr(backend, "family", getattr(backend, "name", "this backend"))
    multi = ", ".join(f for f in FAMILIES if f != family)  # the other registered families
    raise ModelError(
        f"icl {stage}: the {family} model takes at most {limit} image(s) per prompt, but a {shots}-shot ICL prompt holds {need} "
        f"(one image per demonstration plus the query's), so it cannot score or answer with image demonstrations; "
        f"use a multi-image family ({multi}) or zero-shot only"
    )
