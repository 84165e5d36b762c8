"""Robust extraction of an emotion category and 1–9 ratings from free text or JSON.

A model's answer is parsed or the failure is recorded with the raw text; nothing is guessed. An
answer naming two different categories, or two different numbers where one was asked, is a failure,
not a coin flip.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Sequence

# Word forms that mean a category (keys are canonical labels of the default set).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "happy": ("happy", "happiness", "joy", "joyful", "glad", "cheerful", "smiling"),
    "sad": ("sad", "sadness", "unhappy", "sorrow", "sorrowful", "upset"),
    "angry": ("angry", "anger", "mad", "furious", "annoyed", "irritated"),
    "fearful": ("fearful", "fear", "afraid", "scared", "frightened", "terrified", "anxious"),
    "surprised": ("surprised", "surprise", "astonished", "amazed", "shocked"),
    "neutral": ("neutral", "calm", "expressionless", "blank", "indifferent"),
    "disgusted": ("disgusted", "disgust", "disgusting", "repulsed"),
    "contempt": ("contempt", "contemptuous", "scornful"),
}

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}


class ParseFailure(ValueError):
    """The text does not contain one clear answer; the message says why."""


def _forms(categories: Sequence[str]) -> dict[str, str]:
    forms: dict[str, str] = {}
    for category in categories:
        key = category.lower()
        for form in SYNONYMS.get(key, (key,)) + (key,):
            forms[form] = category
    return forms


def parse_emotion(text: str, categories: Sequence[str]) -> str:
    """The one category `text` names (synonyms allowed), or ParseFailure."""
    lowered = text.lower()
    negated = re.findall(r"\bnot\s+(?:very\s+)?([a-z]+)", lowered)
    found = []
    for form, category in _forms(categories).items():
        for match in re.finditer(rf"\b{re.escape(form)}\b", lowered):
            if form in negated:
                continue
            found.append((match.start(), category))
    categories_found = {c for _, c in found}
    if not categories_found:
        raise ParseFailure(f"no emotion from {', '.join(categories)} in the answer")
    if len(categories_found) > 1:
        raise ParseFailure(f"several emotions named ({', '.join(sorted(categories_found))})")
    return categories_found.pop()


def parse_rating(text: str, low: int = 1, high: int = 9) -> int:
    """The one integer rating in [low, high] that `text` gives, or ParseFailure.

    "7", "7/9", "7 out of 9", "I'd say seven." and "Rating: 7." all give 7; "between 6 and 7" and
    "12" fail. The scale's own bounds mentioned as "out of 9" / "/9" / "1-9" are not answers.
    """
    lowered = text.lower()
    lowered = re.sub(r"(?:out of|/)\s*" + str(high) + r"\b", " ", lowered)
    lowered = re.sub(rf"\b{low}\s*(?:-|–|to)\s*{high}\b", " ", lowered)
    numbers = [float(n) for n in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?", lowered)]
    numbers += [float(NUMBER_WORDS[w]) for w in re.findall(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", lowered)]
    distinct = sorted(set(numbers))
    if not distinct:
        raise ParseFailure(f"no number from {low} to {high} in the answer")
    if len(distinct) > 1:
        raise ParseFailure(f"several numbers in the answer ({', '.join(f'{n:g}' for n in distinct)})")
    value = distinct[0]
    if value != int(value) or not low <= value <= high:
        raise ParseFailure(f"{value:g} is not an integer from {low} to {high}")
    return int(value)


@dataclass
class JsonAnswer:
    emotion: str
    valence: int
    arousal: int


def parse_json_answer(text: str, categories: Sequence[str]) -> JsonAnswer:
    """`{"emotion": ..., "valence": ..., "arousal": ...}` anywhere in the text (code fences allowed)."""
    match = re.search(r"\{.*\}", text, flags=re.DOTALL)
    if match is None:
        raise ParseFailure("no JSON object in the answer")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise ParseFailure(f"invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ParseFailure("the JSON is not an object")
    data = {str(k).lower(): v for k, v in data.items()}
    missing = [k for k in ("emotion", "valence", "arousal") if k not in data]
    if missing:
        raise ParseFailure(f"JSON lacks {', '.join(missing)}")
    return JsonAnswer(
        emotion=parse_emotion(str(data["emotion"]), categories),
        valence=parse_rating(str(data["valence"])),
        arousal=parse_rating(str(data["arousal"])),
    )
