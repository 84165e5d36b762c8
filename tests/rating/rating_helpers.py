"""A small face set with human ratings, and a scripted rater whose behaviour is known exactly."""

from __future__ import annotations

import csv
import hashlib
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image

from vlmlab.models.backend_checks import PREFLIGHT_PROMPT
from vlmlab.models.base import GenerationRequest, GenerationResult, StepLogprobs, Turn

EMOTIONS = ["happy", "sad", "angry", "fearful", "surprised", "neutral"]
VALENCE = {"happy": 8, "sad": 2, "angry": 2, "fearful": 3, "surprised": 6, "neutral": 5}
AROUSAL = {"happy": 6, "sad": 3, "angry": 8, "fearful": 7, "surprised": 8, "neutral": 2}


@dataclass
class Face:
    image_id: str
    emotion: str
    group: str
    valence: int
    arousal: int


def make_faces(folder: Path, n_per_cell: int = 4, raters: int = 3, seed: int = 0) -> tuple[Path, dict[str, Face]]:
    """Images whose pixels encode their id; ratings.csv with `raters` noisy human raters each."""
    rng = random.Random(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    faces: dict[str, Face] = {}
    rows = []
    k = 0
    for emotion in EMOTIONS:
        for group in ("A", "B"):
            for _ in range(n_per_cell):
                image_id = f"face{k:03d}"
                k += 1
                face = Face(image_id, emotion, group, VALENCE[emotion], AROUSAL[emotion])
                faces[image_id] = face
                PIL.Image.new("RGB", (16, 16), (k % 256, (k * 7) % 256, (k * 13) % 256)).save(folder / "images" / f"{image_id}.png")
                for r in range(raters):
                    rows.append(
                        {
                            "image_id": image_id,
                            "path": f"images/{image_id}.png",
                            "rater_id": f"r{r}",
                            "emotion": emotion,
                            "valence": min(9, max(1, face.valence + rng.choice([-1, 0, 0, 1]))),
                            "arousal": min(9, max(1, face.arousal + rng.choice([-1, 0, 0, 1]))),
                            "group": group,
                        }
                    )
    path = folder / "ratings.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path, faces


class ScriptedRater:
    """A rater with planted behaviour.

    - emotion: the true one, except group-B neutral faces, called "angry" with probability `fp_b`
      (group A: `fp_a`), drawn from the request seed;
    - valence/arousal: the true value at temperature 0; at temperature t > 0, plus a seeded draw
      from {-1, 0, +1} with P(±1) = min(1, t) / 2 each — so the SD shrinks at temperature 0;
    - logprobs: 60% on the answer digit, 20% on each neighbour (raw);
    - `garbage_ids`: image ids whose valence answer is unparseable.
    """

    name = "scripted"
    supports_score = False

    def __init__(self, faces: dict[str, Face], fp_a: float = 0.0, fp_b: float = 0.5, garbage_ids: set[str] = frozenset()):
        self.faces = faces
        self.by_hash: dict[str, str] = {}
        self.fp = {"A": fp_a, "B": fp_b}
        self.garbage_ids = set(garbage_ids)
        self.calls = 0

    def _face(self, conversation: list[Turn]) -> Face:
        for turn in conversation:
            for image in turn.images:
                key = image.sha256
                if key not in self.by_hash:
                    pixel = image.load().getpixel((0, 0))
                    k = pixel[0]
                    self.by_hash[key] = f"face{(k - 1):03d}"
                return self.faces[self.by_hash[key]]
        text = conversation[-1].text
        match = re.search(r"expression is (\w+)", text)
        assert match, text
        emotion = match.group(1)
        return Face("text", emotion, "A", VALENCE[emotion], AROUSAL[emotion])

    def generate(self, requests):
        out = []
        for req in requests:
            if req.conversation[-1].text == PREFLIGHT_PROMPT:  # the HTTP backends' check before a run
                steps = [StepLogprobs("ok", -0.1, [("ok", -0.1)])] if req.top_logprobs else None
                out.append(GenerationResult(id=req.id, status="ok", text="ok", logprobs=steps, logprob_source="raw" if steps else None))
                continue
            self.calls += 1
            rng = random.Random(req.seed)
            face = self._face(req.conversation)
            question = req.conversation[-1].text.lower()
            logprobs = None
            if "which emotion" in question:
                emotion = face.emotion
                if emotion == "neutral" and rng.random() < self.fp[face.group]:
                    emotion = "angry"
                text = emotion
            elif "json" in question:
                emotion = face.emotion
                if emotion == "neutral" and rng.random() < self.fp[face.group]:
                    emotion = "angry"
                text = f'{{"emotion": "{emotion}", "valence": {self._value(face.valence, req, rng)}, "arousal": {self._value(face.arousal, req, rng)}}}'
            else:
                dim = "valence" if "valence" in question else "arousal"
                value = self._value(getattr(face, dim), req, rng)
                if dim == "valence" and face.image_id in self.garbage_ids:
                    text = "hard to say"
                else:
                    text = str(value)
                    top = [(str(value), math.log(0.6))] + [(str(v), math.log(0.2)) for v in (value - 1, value + 1) if 1 <= v <= 9]
                    logprobs = [StepLogprobs(token=str(value), logprob=math.log(0.6), top=top[: req.top_logprobs])]
            result = GenerationResult(id=req.id, status=GenerationResult.status_for(text), text=text, logprobs=logprobs, logprob_source="raw" if logprobs else None)
            out.append(result)
        return out

    @staticmethod
    def _value(true: int, req: GenerationRequest, rng: random.Random) -> int:
        if req.temperature <= 0:
            return true
        p = min(1.0, req.temperature) / 2
        u = rng.random()
        delta = -1 if u < p else (1 if u < 2 * p else 0)
        return min(9, max(1, true + delta))

    def score(self, requests):
        raise NotImplementedError




def run_cli(args: list[str]) -> int:
    """Exit code of `vlmlab ARGS` run in-process (0 when the command returns normally)."""
    from vlmlab.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


class FixedRater:
    """A backend that gives one fixed answer per question ("which emotion" -> `emotion`, a rating
    question -> `rating`): a stand-in VLM for tests about the analysis, not about the model."""

    name = "fixed"
    supports_score = False

    def __init__(self, emotion: str = "neutral", rating: int = 5):
        self.emotion, self.rating = emotion, rating

    def generate(self, requests):
        out = []
        for req in requests:
            question = req.conversation[-1].text.lower()
            text = self.emotion if "which emotion" in question else str(self.rating)
            out.append(GenerationResult(id=req.id, status="ok", text=text))
        return out

    def score(self, requests):
        raise NotImplementedError


FER_LABELS = ["anger", "happiness", "neutral", "sadness"]
FER_LABEL_MAP = {"anger": "angry", "happiness": "happy", "neutral": "neutral", "sadness": "sad"}


def tiny_vit_classifier(folder: Path) -> Path:
    """A tiny random ViT image classifier with FER-style labels, saved like a hub checkpoint."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(image_size=16, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=24, num_labels=len(FER_LABELS), initializer_range=1.0, id2label=dict(enumerate(FER_LABELS)),
                       label2id={label: i for i, label in enumerate(FER_LABELS)})
    model = ViTForImageClassification(config)
    with torch.no_grad():  # spread the logits so the argmax differs between images
        model.classifier.weight.mul_(50.0)
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(folder)
    return folder
