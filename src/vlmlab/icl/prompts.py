"""ICL conversations: demonstrations as prior chat turns, then the query.

Each demonstration is a user turn (image, question) followed by an assistant turn (its answer); the
query is a final user turn (image, question). Backends render these through the model's own chat
template, so nothing here is model-specific. With `score()`, the target is the query's answer.

`prompt_format` picks how a turn's text reads: `chat` (the question as is; vlmlab's default) or
`lever-plus` (upstream Lever-Plus: a system turn with its instructions, and every question written as
upstream's template "Question:<Q> Short answer:" with the answer as the assistant's reply).

A `shots`-shot prompt therefore holds `shots + 1` images; `check_backend_images` refuses, before
any item runs, a backend that cannot take that many (BLIP-2 takes exactly one image per prompt).
"""

from __future__ import annotations

import re
from typing import Literal, Sequence

from vlmlab.data.records import VQARecord
from vlmlab.errors import ModelError
from vlmlab.icl.data import target_answer
from vlmlab.models.base import Backend, GenerationRequest, ScoreRequest, Turn


PromptFormat = Literal["chat", "lever-plus"]
PROMPT_FORMATS = ("chat", "lever-plus")

# The system prompt of upstream's Qwen2.5-VL config (Lever-Plus configs/infer_model/qwen2.5_vl_3B.yaml).
LEVER_PLUS_SYSTEM_PROMPT = (
    "In the upcoming task, you will see four sets of dialogues, each containing two roles: user and assistant. "
    "The user is the questioner, who provides an image and asks a question based on it; the assistant is the responder, "
    "who answers according to the image and question provided by the user. Afterward, you will receive an image and a "
    "question from the user. Please act as the assistant and answer based on the four previous dialogue sets and your own "
    "knowledge. Strictly follow the answering format: if the examples use only one or two keywords, your reply must also "
    "use only one or two keywords; if the examples contain no more than three tokens, your reply must not exceed three tokens either."
)


def question_text(question: str, prompt_format: PromptFormat = "chat") -> str:
    """How a question reads in a user turn under `prompt_format`."""
    if prompt_format == "lever-plus":
        return f"Question:{question} Short answer:"
    if prompt_format != "chat":
        raise ValueError(f"prompt_format must be one of {PROMPT_FORMATS}, got {prompt_format!r}")
    return question


def icl_conversation(demos: Sequence[VQARecord], query: VQARecord, prompt_format: PromptFormat = "chat") -> list[Turn]:
    """Turns for `demos` (in prompt order, first = farthest from the query) followed by `query`."""
    turns: list[Turn] = [Turn("system", LEVER_PLUS_SYSTEM_PROMPT)] if prompt_format == "lever-plus" else []
    for d in demos:
        turns.append(Turn("user", [d.image, question_text(d.question, prompt_format)]))
        turns.append(Turn("assistant", [target_answer(d)]))
    turns.append(Turn("user", [query.image, question_text(query.question, prompt_format)]))
    return turns


def score_request(
    request_id: str, demos: Sequence[VQARecord], query: VQARecord, *, score_eos: bool = False, prompt_format: PromptFormat = "chat"
) -> ScoreRequest:
    """Teacher-forced score of the query's answer after `demos` (`score_eos`: and the end of the turn after it)."""
    return ScoreRequest(id=request_id, conversation=icl_conversation(demos, query, prompt_format), target=target_answer(query),
                        score_end_of_turn=score_eos)


def generation_request(
    request_id: str, demos: Sequence[VQARecord], query: VQARecord, max_new_tokens: int = 10, prompt_format: PromptFormat = "chat"
) -> GenerationRequest:
    """Greedy answer generation for the query after `demos`."""
    return GenerationRequest(id=request_id, conversation=icl_conversation(demos, query, prompt_format), max_new_tokens=max_new_tokens,
                             temperature=0.0)


AnswerPostprocess = Literal["none", "lever-plus"]


def postprocess_answer(text: str | None, mode: AnswerPostprocess = "none") -> str:
    """The generated answer as it is scored: as generated (`none`), or cut as upstream Lever-Plus /
    OpenFlamingo `postprocess_vqa_generation` cuts it (`lever-plus`): before the first "Question",
    "Answer" or "Short", then before the first ", "."""
    text = text or ""
    if mode == "none":
        return text
    if mode != "lever-plus":
        raise ValueError(f"answer postprocess must be none or lever-plus, got {mode!r}")
    return re.split(", ", re.split("Question|Answer|Short", text, maxsplit=1)[0], maxsplit=1)[0]


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
    from vlmlab.models.families import FAMILIES

    family = getattr(backend, "family", getattr(backend, "name", "this backend"))
    multi = ", ".join(f for f in FAMILIES if f != family)  # the other registered families
    raise ModelError(
        f"icl {stage}: the {family} model takes at most {limit} image(s) per prompt, but a {shots}-shot ICL prompt holds {need} "
        f"(one image per demonstration plus the query's), so it cannot score or answer with image demonstrations; "
        f"use a multi-image family ({multi}) or zero-shot only"
    )
