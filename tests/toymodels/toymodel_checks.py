"""Science checks of toy models against the toy world's known truth (test support, not product).

Each check loads a built model through the `hf` backend (as a study would), asks it held-out
questions and compares the answers with the generator's ground truth:

- `icl_vqa_accuracy`: accuracy on ambiguous held-out VQA queries with no demonstrations, with
  `n_demos` demonstrations asking the same hidden attribute, another attribute, or drawn at random
  from the support set (demonstrations show canonical answers);
- `caption_cider`: CIDEr-D (grouped references) of greedy captions on a held-out split;
- `face_rating_scores`: emotion accuracy and valence/arousal Pearson r against the faces' truth,
  through the rating study's context-carry prompts.

    root = Path("data/vqa"); generate("vqa", root, n=600, seed=5)
    icl_vqa_accuracy(build_toy_model("icl-vqa"), root, demos="same", n_demos=2)
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, Turn
from vlmlab.toymodels.recipes import FacePrompts

DemoMode = Literal["none", "same", "other", "random"]


def _backend(model_path: Path, batch_size: int) -> object:
    from vlmlab.models.hf import HFBackend

    return HFBackend(model_path, batch_size=batch_size)


def _generate(backend: object, conversations: Sequence[list[Turn]], max_new_tokens: int) -> list[str]:
    requests = [GenerationRequest(id=str(i), conversation=c, max_new_tokens=max_new_tokens) for i, c in enumerate(conversations)]
    results = backend.generate(requests)  # type: ignore[attr-defined]
    return [r.text.strip() for r in results]


# ---------------------------------------------------------------- ICL VQA


def _vqa_split(root: Path, split: str) -> list[dict]:
    from vlmlab.toyworld.vqa import read_hidden

    questions = json.loads((root / f"{split}_questions.json").read_text())["questions"]
    hidden = read_hidden(root / f"{split}_hidden.json")
    out = []
    for q in questions:
        h = hidden[q["question_id"]]
        out.append({"qid": q["question_id"], "question": q["question"], "image": Image(path=root / q["file_name"]),
                    "attribute": h.attribute, "kind": h.question_kind, "answer": h.canonical_answer})
    return out


def icl_vqa_accuracy(
    model_path: Path,
    vqa_root: Path,
    *,
    demos: DemoMode = "same",
    n_demos: int = 2,
    n_queries: int = 200,
    kinds: Sequence[str] = ("ambiguous",),
    seed: int = 0,
    batch_size: int = 16,
    backend: object | None = None,
) -> float:
    """Exact-match accuracy of the model's answer on held-out queries of the given question kinds.

    Args:
        model_path: a toy model folder (used when `backend` is None).
        vqa_root: a toy-world `vqa` output; queries come from `test`, demonstrations from `train`.
        demos: "none", or `n_demos` support questions asking the same hidden attribute as the query
            ("same"), another attribute ("other"), or any attribute ("random").
        kinds: question kinds of the queries ("ambiguous", "hint", "explicit").
        seed: draws the queries and the demonstrations.
    """
    rng = np.random.default_rng(seed)
    support = _vqa_split(vqa_root, "train")
    queries = [q for q in _vqa_split(vqa_root, "test") if q["kind"] in kinds]
    queries = [queries[int(i)] for i in rng.permutation(len(queries))[:n_queries]]
    conversations = []
    for q in queries:
        if demos == "none":
            pool: list[dict] = []
        elif demos == "same":
            pool = [s for s in support if s["attribute"] == q["attribute"]]
        elif demos == "other":
            pool = [s for s in support if s["attribute"] != q["attribute"]]
        else:
            pool = support
        chosen = [] if demos == "none" else [pool[int(i)] for i in rng.choice(len(pool), size=n_demos, replace=False)]
        turns: list[Turn] = []
        for d in chosen:
            turns += [Turn("user", [d["image"], d["question"]]), Turn("assistant", d["answer"])]
        turns.append(Turn("user", [q["image"], q["question"]]))
        conversations.append(turns)
    answers = _generate(backend or _backend(model_path, batch_size), conversations, 4)
    return float(np.mean([a.lower().rstrip(".") == q["answer"] for a, q in zip(answers, queries)]))


# ---------------------------------------------------------------- captions


def caption_cider(
    model_path: Path,
    caption_root: Path,
    *,
    split: str = "test",
    n_pairs: int = 60,
    batch_size: int = 16,
    max_new_tokens: int = 40,
    backend: object | None = None,
) -> tuple[float, dict[str, str]]:
    """(CIDEr-D over all references of each (image, query) pair, predictions by pair id).

    `caption_root` is a toy-world `captions` or `panorama` output; the first `n_pairs` pairs of
    `split` are captioned greedily with their query as the user turn.
    """
    from vlmlab.metrics.caption import score_captions

    coco = json.loads((caption_root / f"captions_{split}.json").read_text())
    refs: dict[str, list[str]] = {}
    for ann in coco["annotations"]:
        refs.setdefault(str(ann["image_id"]), []).append(ann["caption"])
    entries = coco["images"][:n_pairs]
    conversations = [[Turn("user", [Image(path=caption_root / e["file_name"]), e["query"]])] for e in entries]
    texts = _generate(backend or _backend(model_path, batch_size), conversations, max_new_tokens)
    predictions = {str(e["id"]): t for e, t in zip(entries, texts)}
    scores = score_captions(predictions, {k: refs[k] for k in predictions}, mode="grouped", metrics=["CIDEr"])
    return float(scores.scores["CIDEr"]), predictions


# ---------------------------------------------------------------- faces


def _first_int(text: str) -> int | None:
    for ch in text:
        if ch.isdigit():
            return int(ch)
    return None


def face_rating_scores(
    model_path: Path,
    faces_root: Path,
    *,
    n_faces: int = 120,
    prompts: FacePrompts | None = None,
    batch_size: int = 16,
    backend: object | None = None,
) -> dict[str, float]:
    """Emotion accuracy, valence r and arousal r of context-carry answers vs `stimuli.csv` truth.

    Unparseable ratings count as wrong for accuracy and are left out of the correlations (their
    share is returned as `unparsed`).
    """
    prompts = prompts or FacePrompts()
    names = ", ".join(prompts.emotions)
    with open(faces_root / "stimuli.csv", newline="", encoding="utf-8") as fh:
        stimuli = list(csv.DictReader(fh))[:n_faces]
    model = backend or _backend(model_path, batch_size)
    first = [[Turn("user", [Image(path=faces_root / s["image"]), prompts.emotion.format(emotions=names)])] for s in stimuli]
    emotions = _generate(model, first, 4)
    second = [c + [Turn("assistant", e), Turn("user", prompts.valence.format(emotions=names))] for c, e in zip(first, emotions)]
    valences = _generate(model, second, 3)
    third = [c + [Turn("assistant", v), Turn("user", prompts.arousal.format(emotions=names))] for c, v in zip(second, valences)]
    arousals = _generate(model, third, 3)
    truth_e = [s["emotion"] for s in stimuli]
    acc = float(np.mean([e.lower().strip(" .") == t for e, t in zip(emotions, truth_e)]))
    out = {"emotion_accuracy": acc, "chance": max(Counter(truth_e).values()) / len(truth_e)}
    parsed = 0
    for key, answers in (("valence", valences), ("arousal", arousals)):
        pairs = [(_first_int(a), float(s[key])) for a, s in zip(answers, stimuli)]
        pairs = [(p, t) for p, t in pairs if p is not None]
        parsed += len(pairs)
        x = np.array([p for p, _ in pairs], dtype=float)
        y = np.array([t for _, t in pairs], dtype=float)
        out[f"{key}_r"] = float(np.corrcoef(x, y)[0, 1]) if len(pairs) > 2 and x.std() > 0 else 0.0
    out["unparsed"] = 1 - parsed / (2 * len(stimuli))
    return out
