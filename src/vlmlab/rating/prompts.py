"""Prompt modes as sequences of steps; conversations built from `Turn`s, never model strings.

- `context-carry`: emotion, then valence, then arousal as turns of one conversation; each answer is
  carried forward as the assistant's turn, so later ratings see the model's own label.
- `single-shot`: one prompt with the image, one JSON answer.
- `text-only`: no image; the human label is given in words ("The facial expression is angry.")
  and valence and arousal are asked in two independent conversations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from vlmlab.data.images import Image
from vlmlab.models.base import Turn
from vlmlab.rating.config import PromptConfig, PromptMode

QUESTIONS: dict[str, tuple[str, ...]] = {
    "context-carry": ("emotion", "valence", "arousal"),
    "single-shot": ("json",),
    "text-only": ("valence", "arousal"),
}


@dataclass(frozen=True)
class Step:
    question: str  # emotion | valence | arousal | json
    prompt: str
    with_image: bool
    carry: bool  # continue the previous step's conversation


def steps_for(mode: PromptMode, prompts: PromptConfig, emotions: Sequence[str], label: str | None) -> list[Step]:
    """The steps one item goes through in `mode`; `label` is the human emotion for text-only."""
    names = ", ".join(emotions)
    if mode == "context-carry":
        return [
            Step("emotion", prompts.emotion.format(emotions=names), True, False),
            Step("valence", prompts.valence.format(emotions=names), False, True),
            Step("arousal", prompts.arousal.format(emotions=names), False, True),
        ]
    if mode == "single-shot":
        return [Step("json", prompts.single_shot.format(emotions=names), True, False)]
    if label is None:
        raise ValueError("text-only mode needs the human emotion label of the image")
    return [
        Step("valence", prompts.text_only_valence.format(emotion=label, emotions=names), False, False),
        Step("arousal", prompts.text_only_arousal.format(emotion=label, emotions=names), False, False),
    ]


def next_conversation(step: Step, image: Image, history: list[Turn], system: str | None) -> list[Turn]:
    """The conversation for `step`, given the turns so far (history ends with the last answer)."""
    turns: list[Turn] = list(history) if step.carry else ([Turn("system", system)] if system else [])
    content: list = [image, step.prompt] if step.with_image else [step.prompt]
    turns.append(Turn("user", content))
    return turns
