"""Ambiguous VQA for in-context learning, written in the VQA v2 file format.

Design (from `notes/toy-icl-feasibility.md`): 56x56 images hold 1-3 copies of one shape in one
colour, each large and centred on a cell of the 2x2 grid of 28-px tokens (a Qwen2-VL with patch
14 and merge 2 sees 4 image tokens). Every question has a hidden attribute t (colour, shape,
count, position) and a one-word answer. About half the questions are ambiguous ("What about this
one?"), some give a weak hint shared by two attributes, the rest are explicit.

Why a selector can beat text retrieval: the ambiguous wordings all have the same distribution of
t, so wording alone predicts only the marginal majority. But t depends on the *image context*
(`image_context`): ambiguous questions about multi-object images mostly ask the count; about a
single object in the top row mostly the colour; in the bottom row mostly the shape
(`ATTRIBUTE_PRIOR`). A selector that sees the query's image and wording together can pick
demonstrations with the right t.

Why usefulness is graded: annotator reliability varies per question, so some demonstrations'
majority answer is a synonym, a digit instead of a number word, or even another attribute's
answer; and demonstrations from the same image context share t more often.

Files per split (`train` is the support set): `{split}_questions.json`, `{split}_annotations.json`,
`images/{split}/toy_{split}_{image_id:012d}.png` (also given as `file_name`, relative to the
dataset root, on each question: an extra key the official tools ignore), and `{split}_hidden.json` (t, question kind,
image parameters; for analysis only). Use `canonical_answer(scene, attribute)` to build episodes.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import PIL.Image

from vlmlab.errors import ConfigError, DataError
from vlmlab.toyworld.scenes import COLOURS, canvas, draw_shape, finish_canvas, pick, pick_weighted, split_counts
from vlmlab.toyworld.writers import DatasetWriter, Manifest

IMAGE_SIZE = 56
CELL = 28
VQA_COLOURS: tuple[str, ...] = tuple(COLOURS)
VQA_SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
COUNT_PROBS = {1: 0.5, 2: 0.25, 3: 0.25}
ATTRIBUTES: tuple[str, ...] = ("colour", "shape", "count", "position")
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
KIND_PROBS = {"ambiguous": 0.5, "hint": 0.3, "explicit": 0.2}

# P(t | image context) for ambiguous questions; hints restrict it to their pair.
ATTRIBUTE_PRIOR: dict[str, dict[str, float]] = {
    "multi": {"count": 0.70, "colour": 0.15, "shape": 0.15, "position": 0.0},
    "single_top": {"colour": 0.65, "shape": 0.15, "count": 0.10, "position": 0.10},
    "single_bottom": {"shape": 0.65, "colour": 0.15, "count": 0.10, "position": 0.10},
}
FAVOURED: dict[str, str] = {"multi": "count", "single_top": "colour", "single_bottom": "shape"}


def attribute_prior(context_strength: float | None = None) -> dict[str, dict[str, float]]:
    """P(t | image context) for ambiguous questions; `ATTRIBUTE_PRIOR` when `context_strength` is None.

    `context_strength` is P(favoured attribute | context) (count for multi-object images, colour
    for one object on top, shape for one at the bottom); the others share the rest in their
    default proportions. Higher strength: the image says more about t, so what a selector that
    sees the image can gain over text retrieval grows, while the wording alone still says nothing.
    """
    if context_strength is None:
        return {ctx: dict(p) for ctx, p in ATTRIBUTE_PRIOR.items()}
    if not 0.25 <= context_strength <= 1.0:
        raise ConfigError(f"vqa context_strength must be in [0.25, 1] (P(favoured attribute | image context)), got {context_strength}")
    out = {}
    for ctx, default in ATTRIBUTE_PRIOR.items():
        fav = FAVOURED[ctx]
        rest = sum(p for a, p in default.items() if a != fav)
        out[ctx] = {a: round(context_strength if a == fav else (1.0 - context_strength) * p / rest, 6) for a, p in default.items()}
    return out


AMBIGUOUS = ("What about this one?", "And this one?", "What about this?")
HINTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("colour", "shape"): ("What does it look like?",),
    ("count", "shape"): ("What is drawn here?",),
    ("count", "position"): ("How is it laid out?",),
}
EXPLICIT: dict[str, tuple[str, ...]] = {
    "colour": ("What colour is it?", "What color is the object?"),
    "shape": ("What shape is it?", "Which shape is drawn?"),
    "count": ("How many objects are there?", "How many shapes do you see?"),
    "position": ("Which side is it on?", "Is it on the left or the right?"),
}
HINT_FLOOR = 0.2
ANSWER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "red": ("crimson",), "green": ("lime",), "blue": ("navy",), "yellow": ("gold",), "purple": ("violet",),
    "orange": ("amber",), "circle": ("round", "dot"), "square": ("box",), "triangle": ("triangular",),
    "star": ("stars",), "1": ("one",), "2": ("two",), "3": ("three",), "left": ("left side",), "right": ("right side",),
}


@dataclass(frozen=True)
class VqaScene:
    """Everything needed to redraw a VQA image: `cells` index the 2x2 grid (0 TL, 1 TR, 2 BL, 3 BR)."""

    colour: str
    shape: str
    cells: tuple[int, ...]
    radius: float
    background: int

    @property
    def count(self) -> int:
        return len(self.cells)

    def to_json(self) -> dict:
        d = asdict(self)
        d["cells"] = list(self.cells)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "VqaScene":
        return cls(str(d["colour"]), str(d["shape"]), tuple(int(c) for c in d["cells"]), float(d["radius"]), int(d["background"]))


def image_context(scene: VqaScene) -> str:
    """The visible feature that drives P(t): `multi`, `single_top` or `single_bottom`."""
    if scene.count > 1:
        return "multi"
    return "single_top" if scene.cells[0] < 2 else "single_bottom"


def valid_attributes(scene: VqaScene, attributes: Sequence[str] = ATTRIBUTES) -> list[str]:
    """Attributes that have an answer for this image (position needs exactly one object)."""
    return [a for a in attributes if a != "position" or scene.count == 1]


def canonical_answer(scene: VqaScene, attribute: str) -> str:
    """The one-word answer a careful annotator gives: a colour, a shape, a digit, or left/right.

    Counts are digits, as in VQA v2 annotations and as the official normalisation turns a
    predicted "two" into "2"; number words appear only as annotator variants.

    Raises:
        ValueError: unknown attribute, or position asked about several objects.
    """
    if attribute == "colour":
        return scene.colour
    if attribute == "shape":
        return scene.shape
    if attribute == "count":
        return str(scene.count)
    if attribute == "position":
        if scene.count != 1:
            raise ValueError("position is defined only for single-object images")
        return "left" if scene.cells[0] % 2 == 0 else "right"
    raise ValueError(f"unknown attribute {attribute!r}; known: {', '.join(ATTRIBUTES)}")


def answer_values(attribute: str) -> tuple[str, ...]:
    """All canonical answers of an attribute (the toy model's answer vocabulary)."""
    return {"colour": VQA_COLOURS, "shape": VQA_SHAPES, "count": ("1", "2", "3"), "position": ("left", "right")}[attribute]


def sample_vqa_scene(rng: np.random.Generator) -> VqaScene:
    count = int(rng.choice([1, 2, 3], p=list(COUNT_PROBS.values())))
    cells = tuple(sorted(int(c) for c in rng.permutation(4)[:count]))
    return VqaScene(pick(rng, VQA_COLOURS), pick(rng, VQA_SHAPES), cells, round(float(rng.uniform(10.0, 12.5)), 2), int(rng.integers(232, 256)))


def draw_vqa_scene(scene: VqaScene) -> PIL.Image.Image:
    """Render a scene at 56x56: one object centred on each occupied 28-px cell."""
    bg = scene.background
    image, draw = canvas(IMAGE_SIZE, IMAGE_SIZE, (bg, bg, bg))
    for cell in scene.cells:
        cx, cy = CELL * (cell % 2) + CELL / 2, CELL * (cell // 2) + CELL / 2
        draw_shape(draw, scene.shape, cx, cy, scene.radius, COLOURS[scene.colour])
    return finish_canvas(image)


def sample_question(scene: VqaScene, rng: np.random.Generator, attributes: Sequence[str] = ATTRIBUTES,
                    prior_table: dict[str, dict[str, float]] | None = None) -> tuple[str, str, str]:
    """(question text, question kind, hidden attribute) for one image (`prior_table`: `attribute_prior()`)."""
    valid = valid_attributes(scene, attributes)
    table = ATTRIBUTE_PRIOR if prior_table is None else prior_table
    prior = {a: p for a, p in table[image_context(scene)].items() if a in valid and p > 0}
    kind = pick_weighted(rng, KIND_PROBS)
    if kind == "hint":
        pairs = [pair for pair in HINTS if any(a in prior for a in pair)]
        if pairs:
            pair = pick(rng, pairs)
            weights = {a: max(prior.get(a, 0.0), HINT_FLOOR) for a in pair if a in valid}
            return pick(rng, HINTS[pair]), kind, pick_weighted(rng, weights)
        kind = "ambiguous"
    if kind == "ambiguous":
        return pick(rng, AMBIGUOUS), kind, pick_weighted(rng, prior)
    attribute = pick(rng, valid)
    return pick(rng, EXPLICIT[attribute]), kind, attribute


def annotator_answers(scene: VqaScene, attribute: str, kind: str, rng: np.random.Generator, attributes: Sequence[str] = ATTRIBUTES) -> tuple[list[tuple[str, str]], float]:
    """Ten (answer, confidence) pairs and the question's annotator reliability.

    Each annotator gives the canonical answer with probability `reliability`; otherwise a synonym
    or digit (40%), another attribute's answer (35%: they read the question differently), or a
    wrong value (25%). Number answers are digits 80% of the time and words otherwise.
    """
    low = 0.75 if kind == "explicit" else 0.5
    reliability = float(rng.uniform(low, 1.0))
    truth = canonical_answer(scene, attribute)
    others = [a for a in valid_attributes(scene, attributes) if a != attribute]
    answers = []
    for _ in range(10):
        u = rng.random()
        if u < reliability:
            ans = truth if attribute != "count" or rng.random() < 0.8 else ANSWER_SYNONYMS[truth][0]
            conf = "yes" if rng.random() < 0.9 else "maybe"
        elif u < reliability + (1 - reliability) * 0.4:
            ans, conf = pick(rng, ANSWER_SYNONYMS[truth]), pick(rng, ("yes", "maybe"))
        elif others and u < reliability + (1 - reliability) * 0.75:
            ans, conf = canonical_answer(scene, pick(rng, others)), pick(rng, ("maybe", "no"))
        else:
            ans, conf = pick(rng, [v for v in answer_values(attribute) if v != truth]), pick(rng, ("maybe", "no"))
        answers.append((ans, conf))
    return answers, reliability


def majority_answer(answers: Sequence[str], prefer: str) -> str:
    """Most frequent answer; ties go to `prefer` if tied, else alphabetical (deterministic)."""
    counts = Counter(answers)
    best = max(counts.values())
    tied = sorted(a for a, c in counts.items() if c == best)
    return prefer if prefer in tied else tied[0]


def _question_type(text: str) -> str:
    return " ".join(text.lower().rstrip("?.").split()[:2])


def generate_vqa(out_dir: str | Path, n: int = 3000, seed: int = 0, attributes: Sequence[str] = ATTRIBUTES, two_question_prob: float = 0.3,
                 overwrite: bool = False, context_strength: float | None = None) -> Manifest:
    """Write `n` questions (60/20/20 train/val/test by image) in VQA v2 format.

    Args:
        out_dir: output folder (empty, or a previous toy-world output which is replaced).
        n: number of questions; images get one question, or two with `two_question_prob`.
        seed: the only source of randomness.
        attributes: hidden attributes to use (drop "position" for the 3-attribute world of the
            feasibility note).
        context_strength: P(favoured attribute | image context) of ambiguous questions (see
            `attribute_prior`); None keeps `ATTRIBUTE_PRIOR` (0.65-0.70).
    """
    unknown = [a for a in attributes if a not in ATTRIBUTES]
    if unknown or not attributes:
        raise ConfigError(f"vqa attributes {list(attributes)}: unknown {unknown}; choose from {', '.join(ATTRIBUTES)}")
    prior_table = attribute_prior(context_strength)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 303]))
    writer = DatasetWriter(out_dir, kind="vqa", seed=seed, n=n, overwrite=overwrite)
    image_id = 0
    counts: dict[str, int] = {}
    info = {"description": "vlmlab toy world: ambiguous VQA for in-context learning", "version": "1.0", "year": 2026}
    license_ = {"name": "CC0 1.0 (synthetic)", "url": ""}
    for split, size in zip(SPLITS, split_counts(n, SPLIT_FRACTIONS)):
        questions, annotations, hidden = [], [], {}
        n_images = 0
        while len(questions) < size:
            image_id += 1
            n_images += 1
            scene = sample_vqa_scene(rng)
            file_name = f"images/{split}/toy_{split}_{image_id:012d}.png"
            writer.png(file_name, draw_vqa_scene(scene))
            k = 2 if rng.random() < two_question_prob and size - len(questions) >= 2 else 1
            for j in range(k):
                qid = image_id * 10 + j
                text, kind, attribute = sample_question(scene, rng, attributes, prior_table)
                pairs, reliability = annotator_answers(scene, attribute, kind, rng, attributes)
                truth = canonical_answer(scene, attribute)
                mc = majority_answer([a for a, _ in pairs], truth)
                questions.append({"image_id": image_id, "question": text, "question_id": qid, "file_name": file_name})
                annotations.append({
                    "question_id": qid, "image_id": image_id, "question_type": _question_type(text),
                    "answer_type": "number" if attribute == "count" else "other",
                    "multiple_choice_answer": mc,
                    "answers": [{"answer": a, "answer_confidence": c, "answer_id": i + 1} for i, (a, c) in enumerate(pairs)],
                })
                hidden[str(qid)] = {
                    "attribute": attribute, "question_kind": kind, "context": image_context(scene),
                    "canonical_answer": truth, "reliability": round(reliability, 4), "image_id": image_id,
                    "scene": scene.to_json(),
                }
        common = {"info": info, "license": license_, "data_type": "toyworld", "data_subtype": split}
        writer.json(f"{split}_questions.json", {
            **common, "task_type": "Open-Ended", "questions": questions,
            "image_file_format": f"images/{split}/toy_{split}_{{image_id:012d}}.png",
        })
        writer.json(f"{split}_annotations.json", {**common, "annotations": annotations})
        writer.json(f"{split}_hidden.json", {"attributes": list(attributes), "attribute_prior": prior_table, "questions": hidden})
        counts[split] = len(questions)
        counts[f"{split}_images"] = n_images
    return writer.finish(counts)


@dataclass(frozen=True)
class HiddenQuestion:
    """Ground truth of one question: the attribute asked, how it was worded, and the image."""

    question_id: int
    attribute: str
    question_kind: str
    context: str
    canonical_answer: str
    reliability: float
    scene: VqaScene


def read_hidden(path: str | Path) -> dict[int, HiddenQuestion]:
    """Load `{split}_hidden.json` into question id -> `HiddenQuestion` (for analysis and episodes)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))["questions"]
        return {
            int(qid): HiddenQuestion(int(qid), d["attribute"], d["question_kind"], d["context"], d["canonical_answer"],
                                     float(d["reliability"]), VqaScene.from_json(d["scene"]))
            for qid, d in raw.items()
        }
    except FileNotFoundError:
        raise DataError(f"{path}: hidden-attribute file not found; generate the vqa toy world first") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: malformed hidden-attribute file ({type(exc).__name__}: {exc}); regenerate it") from None
