"""Toy ambiguous-VQA data in VQA v2 format and a deterministic toy scorer/answerer backend.

Images are 16x16 PNGs of one colour with a shape-dependent pattern; each image gets an explicit
colour question, an explicit shape question and an ambiguous one ("What about this one?") whose
hidden attribute is colour or shape. The `ToyBackend` behaves like a model that follows the last
demonstration: a demonstration asking the same attribute as the query raises the answer's
probability (more when it is closer to the query), another attribute lowers it.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import PIL.Image

from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, GenerationResult, ScoreRequest, ScoreResult

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (220, 220, 30)}
SHAPES = ["circle", "square", "star"]
AMBIGUOUS = "What about this one?"


def _png(path: Path, colour: tuple[int, int, int], shape: int, marker: int) -> None:
    arr = np.zeros((16, 16, 3), dtype=np.uint8) + np.array(colour, dtype=np.uint8)
    arr[:: shape + 2, :, :] = 255
    arr[15, 15, :] = marker  # splits written under different names never share image bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(arr).save(path)


def write_toy_vqa(root: Path, n_images: int = 12, seed: int = 0, name: str = "toy", duplicate_images: int = 0) -> dict[str, Path]:
    """Write `questions.json`, `annotations.json`, `images/`; returns the three paths.

    Three questions per image (ids image*10+0/1/2). `duplicate_images` extra images are byte
    copies of earlier ones under new image ids (same content hash, different ids).
    """
    rng = np.random.default_rng(seed)
    questions, annotations = [], []
    images = root / "images"
    hiddens = ["colour" if x < 0.5 else "shape" for x in rng.random(n_images)]
    for i in range(n_images + duplicate_images):
        src = i if i < n_images else i - n_images
        colour = list(COLOURS)[src % len(COLOURS)]
        shape = SHAPES[(src // len(COLOURS)) % len(SHAPES)]
        _png(images / f"{name}_{i + 1}.png", COLOURS[colour], SHAPES.index(shape), int(hashlib.sha256(name.encode()).hexdigest()[:2], 16))
        hidden = hiddens[src]  # a byte copy asks the same hidden attribute (the toy oracle keys by image hash)
        for j, (question, answer, attr) in enumerate([
            ("What colour is it?", colour, "colour"),
            ("What shape is it?", shape, "shape"),
            (AMBIGUOUS, colour if hidden == "colour" else shape, hidden),
        ]):
            qid = (i + 1) * 10 + j
            questions.append({"image_id": i + 1, "question": question, "question_id": qid})
            annotations.append({"image_id": i + 1, "question_id": qid, "answers": [{"answer": answer, "answer_id": k + 1} for k in range(10)],
                                "multiple_choice_answer": answer, "answer_type": "other", "question_type": attr})
    root.mkdir(parents=True, exist_ok=True)
    q, a = root / "questions.json", root / "annotations.json"
    q.write_text(json.dumps({"questions": questions}))
    a.write_text(json.dumps({"annotations": annotations}))
    return {"questions": q, "annotations": a, "images": images, "image_pattern": f"{name}_{{image_id}}.png"}


def toy_oracle(annotations: Path, questions: Path, images: Path, pattern: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(image sha256, question) -> (answer, attribute), what the toy model 'knows'."""
    qs = {q["question_id"]: q for q in json.loads(questions.read_text())["questions"]}
    out = {}
    for ann in json.loads(annotations.read_text())["annotations"]:
        q = qs[ann["question_id"]]
        sha = Image(path=images / pattern.format(image_id=q["image_id"])).sha256
        out[(sha, q["question"])] = (ann["multiple_choice_answer"], ann["question_type"])
    return out


class ToyBackend:
    """Deterministic scorer/answerer over toy data; counts requests; optional delay per request."""

    name = "toy"
    supports_score = True

    def __init__(self, oracle: dict[tuple[str, str], tuple[str, str]], delay: float = 0.0) -> None:
        self.oracle = oracle
        self.delay = delay
        self.scored = 0
        self.score_calls = 0
        self.generated = 0

    @staticmethod
    def question(turn) -> str:
        """The question of a user turn in either prompt format (`chat`, or upstream's "Question:<Q> Short answer:")."""
        text = turn.text
        if text.startswith("Question:") and text.endswith(" Short answer:"):
            return text[len("Question:") : -len(" Short answer:")]
        return text

    def _parse(self, conversation) -> tuple[list[tuple[str, str]], tuple[str, str]]:
        users = [t for t in conversation if t.role == "user"]
        keys = [(t.images[0].sha256, self.question(t)) for t in users]
        demos = [self.oracle[k] for k in keys[:-1]]
        return demos, self.oracle[keys[-1]]

    def _logprob(self, demos, query, key: str) -> float:
        lp = -2.0
        n = len(demos)
        for i, (_, attr) in enumerate(demos):
            w = 1.0 / (n - i)
            lp += w * (0.8 if attr == query[1] else -0.4)
        jitter = int(hashlib.sha256(key.encode()).hexdigest()[:6], 16) / 16**6 * 1e-2
        return min(lp + jitter, -0.01)

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        self.score_calls += 1
        out = []
        for r in requests:
            if self.delay:
                time.sleep(self.delay)
            self.scored += 1
            demos, query = self._parse(r.conversation)
            n_tok = len(r.target.split())
            key = json.dumps([[t.text, [im.sha256 for im in t.images]] for t in r.conversation])
            base = self._logprob(demos, query, key) if r.target == query[0] else -6.0
            lps = np.array([base - 0.01 * j for j in range(n_tok)])
            out.append(ScoreResult(id=r.id, status="ok", token_logprobs=lps, token_ids=list(range(n_tok)), tokens=r.target.split()))
        return out

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        out = []
        for r in requests:
            if self.delay:
                time.sleep(self.delay)
            self.generated += 1
            demos, (answer, attr) = self._parse(r.conversation)
            explicit = self.question(r.conversation[-1]) != AMBIGUOUS
            follows = demos[-1][1] == attr if demos else explicit
            out.append(GenerationResult(id=r.id, status="ok", text=answer if follows else "unknown"))
        return out


def data_config(paths: dict):
    """The `VQADataConfig` of a toy split written by `write_toy_vqa`."""
    from vlmlab.icl.data import VQADataConfig

    return VQADataConfig(questions=paths["questions"], annotations=paths["annotations"], images=paths["images"], image_pattern=paths["image_pattern"])


def toy_backend_for(paths: dict) -> ToyBackend:
    return ToyBackend(toy_oracle(paths["annotations"], paths["questions"], paths["images"], paths["image_pattern"]))
