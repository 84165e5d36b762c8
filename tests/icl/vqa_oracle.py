"""A simulated VLM over the toy VQA world (`vlmlab toyworld generate vqa`), for science tests that
must run in seconds: the real toy model (`vlmlab toymodels build icl-vqa`) takes minutes to build.

The world's questions are explicit ("What colour is it?"), hints or ambiguous ("What about this
one?"); each has a hidden attribute t. `OracleVLM` knows every image's scene and question (from
`{split}_hidden.json`) and behaves like a VLM that reads the attribute a demonstration answers:

- explicit query: it knows t alone. A demonstration of another attribute makes it answer that
  attribute instead; one of the same attribute changes nothing. So it needs **0** demonstrations and
  each can only hurt: P(y|x) = 0.9, 0.2 once a demonstration of another attribute is in the prompt.
- hint or ambiguous query: it guesses `colour` alone; it answers attribute a once the two
  demonstrations nearest the query both answer a (one is not enough). So it needs **2**:
  P(y|x) = 0.1 + 0.35 · (how many of the two nearest demonstrations answer t).

Scores are those probabilities as per-token log-probabilities of the query's target answer, so
InfoScore is exact: an explicit query's best first demonstration gains 0, an ambiguous query's
right ones gain 0.35 each. Generation answers the canonical answer of the attribute it settles on.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, GenerationResult, ScoreRequest, ScoreResult
from vlmlab.toyworld.vqa import VqaScene, canonical_answer, generate_vqa


def write_world(root: Path, n: int, seed: int = 0, context_strength: float | None = 0.9) -> Path:
    """The toy VQA dataset with one question per image (so an image names its question)."""
    generate_vqa(root, n=n, seed=seed, two_question_prob=0.0, context_strength=context_strength)
    return root


def data_config(root: Path, split: str):
    from vlmlab.icl.data import VQADataConfig

    return VQADataConfig(questions=root / f"{split}_questions.json", annotations=root / f"{split}_annotations.json", images=root,
                         image_pattern=None)


def hidden(root: Path, split: str) -> dict[str, dict]:
    """question id -> its hidden record (attribute, question_kind, scene, ...)."""
    return {str(k): v for k, v in json.loads((root / f"{split}_hidden.json").read_text())["questions"].items()}


class OracleVLM:
    """The simulated VLM of the module docstring; a `Backend` with `score` and `generate`."""

    name = "oracle-vlm"
    supports_score = True

    def __init__(self, root: Path, splits: Sequence[str] = ("train", "val", "test")) -> None:
        self.by_image: dict[str, dict] = {}
        for split in splits:
            questions = {str(q["question_id"]): q for q in json.loads((root / f"{split}_questions.json").read_text())["questions"]}
            for qid, h in hidden(root, split).items():
                self.by_image[Image(path=root / questions[qid]["file_name"]).sha256] = h

    def _parse(self, conversation) -> tuple[list[str], dict]:
        users = [t for t in conversation if t.role == "user"]
        infos = [self.by_image[t.images[0].sha256] for t in users]
        return [d["attribute"] for d in infos[:-1]], infos[-1]

    @staticmethod
    def believed(demos: list[str], query: dict) -> str:
        """The attribute the model answers after demonstrations `demos` (prompt order)."""
        if query["question_kind"] == "explicit":
            other = [a for a in demos if a != query["attribute"]]
            return other[-1] if other else query["attribute"]
        last = demos[-2:]
        return last[0] if len(last) == 2 and last[0] == last[1] else "colour"

    @staticmethod
    def probability(demos: list[str], query: dict) -> float:
        """P(the query's answer | demonstrations, query)."""
        if query["question_kind"] == "explicit":
            return 0.9 if all(a == query["attribute"] for a in demos) else 0.2
        return 0.1 + 0.35 * sum(a == query["attribute"] for a in demos[-2:])

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        out = []
        for r in requests:
            demos, query = self._parse(r.conversation)
            tokens = r.target.split() or [r.target]
            lp = math.log(self.probability(demos, query))
            out.append(ScoreResult(id=r.id, status="ok", token_logprobs=np.full(len(tokens), lp), token_ids=list(range(len(tokens))), tokens=tokens))
        return out

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        out = []
        for r in requests:
            demos, query = self._parse(r.conversation)
            try:
                text = canonical_answer(VqaScene.from_json(query["scene"]), self.believed(demos, query))
            except ValueError:  # position asked of several objects: no answer
                text = "unknown"
            out.append(GenerationResult(id=r.id, status="ok", text=text))
        return out
