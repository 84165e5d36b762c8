"""Ambiguous VQA: official VQA v2 format, ground truth, and the designed ambiguity."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from scipy.stats import chi2_contingency

from vlmlab.data.vqa import read_vqa
from vlmlab.metrics.vqa import question_accuracy
from vlmlab.toyworld.vqa import (
    AMBIGUOUS,
    SPLITS,
    VqaScene,
    canonical_answer,
    draw_vqa_scene,
    image_context,
    read_hidden,
)
from vlmlab.toyworld.writers import png_bytes


def _load(vqa_dir: Path, split: str) -> tuple[dict, dict]:
    q = json.loads((vqa_dir / f"{split}_questions.json").read_text())
    a = json.loads((vqa_dir / f"{split}_annotations.json").read_text())
    return q, a


def test_files_meet_the_official_vqa_v2_format(vqa_dir: Path) -> None:
    all_qids: set[int] = set()
    for split in SPLITS:
        q, a = _load(vqa_dir, split)
        assert {"info", "license", "data_subtype", "data_type", "task_type", "questions"} <= set(q)
        assert {"info", "license", "data_subtype", "data_type", "annotations"} <= set(a)
        questions = {x["question_id"]: x for x in q["questions"]}
        assert len(questions) == len(q["questions"])  # unique question ids
        assert not all_qids & set(questions)  # unique across splits too
        all_qids |= set(questions)
        anns = {x["question_id"]: x for x in a["annotations"]}
        assert set(anns) == set(questions)  # every annotation has a question and vice versa
        for qid, ann in anns.items():
            assert ann["image_id"] == questions[qid]["image_id"]
            assert isinstance(qid, int) and isinstance(ann["image_id"], int)
            assert [x["answer_id"] for x in ann["answers"]] == list(range(1, 11))
            assert all(x["answer_confidence"] in ("yes", "maybe", "no") for x in ann["answers"])
            assert ann["answer_type"] in ("yes/no", "number", "other")
            assert isinstance(ann["question_type"], str) and ann["question_type"]
            assert ann["multiple_choice_answer"] in [x["answer"] for x in ann["answers"]]
        for entry in q["questions"]:
            path = vqa_dir / entry["file_name"]
            assert path.is_file()
            assert path == vqa_dir / q["image_file_format"].format(image_id=entry["image_id"])
    assert len(all_qids) == 3000


def test_hidden_truth_matches_images_and_answers(vqa_dir: Path) -> None:
    q, a = _load(vqa_dir, "val")
    hidden = read_hidden(vqa_dir / "val_hidden.json")
    files = {x["question_id"]: x["file_name"] for x in q["questions"]}
    assert set(hidden) == set(files)
    for qid, h in list(hidden.items())[:100]:
        assert (vqa_dir / files[qid]).read_bytes() == png_bytes(draw_vqa_scene(h.scene))  # redraws exactly
        assert canonical_answer(h.scene, h.attribute) == h.canonical_answer
    # Official VQA accuracy of the canonical answer is high, but not perfect: annotators are noisy.
    accs = [question_accuracy(hidden[x["question_id"]].canonical_answer, [y["answer"] for y in x["answers"]]) for x in a["annotations"]]
    assert 0.85 < float(np.mean(accs)) < 1.0
    assert 0.005 < float(np.mean([acc < 1.0 for acc in accs])) < 0.2


def test_canonical_answer_vocabulary() -> None:
    single = VqaScene("red", "star", (2,), 11.0, 240)
    triple = VqaScene("blue", "circle", (0, 1, 3), 11.0, 240)
    assert [canonical_answer(single, t) for t in ("colour", "shape", "count", "position")] == ["red", "star", "1", "left"]
    assert canonical_answer(triple, "count") == "3"
    assert image_context(single) == "single_bottom" and image_context(triple) == "multi"
    with pytest.raises(ValueError):
        canonical_answer(triple, "position")
    with pytest.raises(ValueError):
        canonical_answer(single, "size")


def _pixel_context(path: Path) -> str:
    """The image context from pixels alone: which 28-px cells hold a coloured object."""
    arr = np.asarray(PIL.Image.open(path).convert("RGB")).astype(int)
    filled = [cell for cell in range(4) if np.ptp(arr[28 * (cell // 2) + 14, 28 * (cell % 2) + 14]) > 30]
    if len(filled) > 1:
        return "multi"
    return "single_top" if filled[0] < 2 else "single_bottom"


def test_attribute_is_predictable_from_image_and_wording_together_not_wording_alone(vqa_dir: Path) -> None:
    rows = []
    for split in SPLITS:
        q, _ = _load(vqa_dir, split)
        hidden = read_hidden(vqa_dir / f"{split}_hidden.json")
        for x in q["questions"]:
            h = hidden[x["question_id"]]
            if h.question_kind == "ambiguous":
                rows.append((x["question"], _pixel_context(vqa_dir / x["file_name"]), h.attribute))
    assert {r[0] for r in rows} == set(AMBIGUOUS) and len(rows) > 1200

    def best_accuracy(key) -> float:
        groups: dict = defaultdict(Counter)
        for r in rows:
            groups[key(r)][r[2]] += 1
        return sum(c.most_common(1)[0][1] for c in groups.values()) / len(rows)

    majority = Counter(r[2] for r in rows).most_common(1)[0][1] / len(rows)
    wording = best_accuracy(lambda r: r[0])
    both = best_accuracy(lambda r: (r[0], r[1]))
    assert wording <= majority + 0.02  # the wording adds nothing over the marginal
    assert both >= majority + 0.2  # the image context does
    attrs = sorted({r[2] for r in rows})
    table = [[sum(1 for r in rows if r[0] == w and r[2] == t) for t in attrs] for w in AMBIGUOUS]
    assert chi2_contingency(table).pvalue > 0.001  # wording independent of the attribute


def test_usefulness_is_graded_by_annotator_noise(vqa_dir: Path) -> None:
    _, a = _load(vqa_dir, "train")
    hidden = read_hidden(vqa_dir / "train_hidden.json")
    answers = [y["answer"] for x in a["annotations"] for y in x["answers"]]
    assert {"two", "2", "three", "3"} <= set(answers)  # number words and digits
    disagree = np.mean([x["multiple_choice_answer"] != hidden[x["question_id"]].canonical_answer for x in a["annotations"]])
    assert 0.005 < disagree < 0.15  # a few demonstrations carry a misleading answer
    reliab = [h.reliability for h in hidden.values()]
    assert min(reliab) < 0.6 and max(reliab) > 0.95
    kinds = Counter(h.question_kind for h in hidden.values())
    assert 0.45 < kinds["ambiguous"] / len(hidden) < 0.55 and kinds["hint"] > kinds["explicit"] > 0


def test_the_vqa_reader_loads_every_split(vqa_dir: Path) -> None:
    for split in SPLITS:
        q, _ = _load(vqa_dir, split)
        records = read_vqa(vqa_dir / f"{split}_questions.json", vqa_dir / f"{split}_annotations.json")
        assert len(records) == len(q["questions"])
        assert all(len(r.answers) == 10 and r.image.path is not None and r.image.path.is_file() for r in records)
        assert records[0].image.load().size == (56, 56)


def test_demonstrations_from_the_same_image_context_share_the_attribute_more_often(vqa_dir: Path) -> None:
    hidden = [h for h in read_hidden(vqa_dir / "train_hidden.json").values() if h.question_kind == "ambiguous"]
    contexts = sorted({h.context for h in hidden})
    dist = {c: Counter(h.attribute for h in hidden if h.context == c) for c in contexts}
    total = {c: sum(dist[c].values()) for c in contexts}

    def agree(c1: str, c2: str) -> float:  # P(two random questions share t) for these contexts
        return sum(dist[c1][t] * dist[c2][t] for t in dist[c1]) / (total[c1] * total[c2])

    same = np.mean([agree(c, c) for c in contexts])
    other = np.mean([agree(c1, c2) for c1 in contexts for c2 in contexts if c1 != c2])
    assert same > other + 0.2


def test_three_attribute_world_and_bad_attributes(tmp_path: Path) -> None:
    from vlmlab.errors import ConfigError
    from vlmlab.toyworld.vqa import generate_vqa

    generate_vqa(tmp_path / "v", n=200, seed=1, attributes=("colour", "shape", "count"))
    hidden = read_hidden(tmp_path / "v" / "train_hidden.json")
    assert {h.attribute for h in hidden.values()} == {"colour", "shape", "count"}
    with pytest.raises(ConfigError, match="size"):
        generate_vqa(tmp_path / "w", n=10, attributes=("colour", "size"))


def test_context_strength_sets_how_much_the_image_says_about_the_attribute(tmp_path: Path) -> None:
    """`context_strength` = P(favoured attribute | image context) for ambiguous questions; the
    others keep their default proportions, the wording still says nothing, and the hidden file
    records the prior used. Default (None) is the documented `ATTRIBUTE_PRIOR`."""
    from vlmlab.toyworld import generate
    from vlmlab.toyworld.vqa import ATTRIBUTE_PRIOR, FAVOURED, attribute_prior

    assert attribute_prior() == ATTRIBUTE_PRIOR
    strong = attribute_prior(0.9)
    for ctx, fav in FAVOURED.items():
        assert strong[ctx][fav] == 0.9 and abs(sum(strong[ctx].values()) - 1) < 1e-5
    assert strong["multi"]["colour"] == strong["multi"]["shape"] == 0.05 and strong["multi"]["position"] == 0.0
    generate("vqa", tmp_path / "strong", n=3000, seed=1, options={"context_strength": 0.9})
    rows = []
    for split in SPLITS:
        hidden = json.loads((tmp_path / "strong" / f"{split}_hidden.json").read_text())
        assert hidden["attribute_prior"] == strong
        q, _ = _load(tmp_path / "strong", split)
        wording = {str(x["question_id"]): x["question"] for x in q["questions"]}
        rows += [(wording[qid], h["context"], h["attribute"]) for qid, h in hidden["questions"].items() if h["question_kind"] == "ambiguous"]
    assert len(rows) > 1200
    favoured = np.mean([t == FAVOURED[c] for _, c, t in rows])
    assert abs(favoured - 0.9) < 0.03, favoured  # binomial SD ~0.008 at n~1500
    majority = Counter(t for *_, t in rows).most_common(1)[0][1] / len(rows)
    by_wording = defaultdict(Counter)
    for w, _, t in rows:
        by_wording[w][t] += 1
    assert sum(c.most_common(1)[0][1] for c in by_wording.values()) / len(rows) <= majority + 0.02


def test_context_strength_is_checked(tmp_path: Path) -> None:
    from vlmlab.errors import ConfigError
    from vlmlab.toyworld import generate

    with pytest.raises(ConfigError, match=r"context_strength must be in \[0.25, 1\]"):
        generate("vqa", tmp_path / "a", n=30, options={"context_strength": 1.5})
    with pytest.raises(ConfigError, match="unknown option.*context_strength; valid for faces: none"):
        generate("faces", tmp_path / "b", n=30, options={"context_strength": 0.9})
