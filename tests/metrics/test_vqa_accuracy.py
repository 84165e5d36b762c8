"""VQA accuracy: hand-checked normalisation rules, and every mode equal to its source evaluator on
the files in files/vqa_sources (expected numbers produced by running the upstream code; see
files/vqa_sources/SOURCES.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmlab.errors import ConfigError, DataError, RunError
from vlmlab.metrics.files import read_vqa_annotations, read_vqa_predictions
from vlmlab.metrics.vqa import (
    MODES,
    process_digit_article,
    process_punctuation,
    question_accuracy,
    vqa_accuracy,
)

SOURCES = Path(__file__).parent / "files" / "vqa_sources"
EXPECTED = json.loads((SOURCES / "expected.json").read_text())
CASES = ("seven", "modes", "random")
GTV_MODES = ("official", "vqa2016", "openflamingo")  # VQAEval objects: rounded percentages
LMMS_MODES = ("lmms-eval", "lmms-eval-vqav2")  # process_results: unrounded 0..1 per question


def _scores(case, mode):
    preds = read_vqa_predictions(SOURCES / f"{case}_results.json")
    return vqa_accuracy(preds, read_vqa_annotations(SOURCES / f"{case}_annotations.json"), mode=mode)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", GTV_MODES)
def test_equal_to_the_vqa_eval_source(case, mode):
    expected = EXPECTED[case][mode]
    ours = _scores(case, mode)
    assert ours.accuracy == expected["overall"]
    assert ours.per_answer_type == expected["perAnswerType"]
    assert {str(q): v for q, v in ours.per_question.items()} == expected["perQuestion"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", LMMS_MODES)
def test_equal_to_lmms_eval(case, mode):
    expected = EXPECTED[case][mode]
    ours = _scores(case, mode)
    assert ours.accuracy_exact == pytest.approx(expected["overall_mean_x100"], abs=1e-9)
    assert {str(q): v for q, v in ours.per_question.items()} == {
        q: round(100 * v, 2) for q, v in expected["perQuestion"].items()}


def test_the_issues_seven_questions():
    assert _scores("seven", "vqa2016").accuracy == 94.29
    assert _scores("seven", "official").accuracy == 57.14
    assert _scores("seven", "openflamingo").accuracy == 100.0


def test_the_cases_tell_every_mode_apart():
    per_mode = {m: EXPECTED["modes"][m]["perQuestion"] for m in GTV_MODES + LMMS_MODES}
    as_pct = {m: {q: (round(100 * v, 2) if m in LMMS_MODES else v) for q, v in p.items()} for m, p in per_mode.items()}
    names = list(as_pct)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert as_pct[a] != as_pct[b], (a, b)


def test_unknown_mode_names_the_modes():
    with pytest.raises(ConfigError, match="lmms-eval"):
        question_accuracy("yes", ["yes"] * 10, mode="offical")
    assert set(MODES) >= set(GTV_MODES + LMMS_MODES + ("okvqa",))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("yes!", "yes "),  # not next to a space: replaced by a space
        ("yes !", "yes "),  # next to a space: deleted
        ("t-shirt", "t shirt"),
        ("1,000", "1000"),  # digit,digit anywhere: every mark is deleted
        ("3.5", "3.5"),  # period followed by a digit stays
        ("end.", "end"),
        ("it's", "it's"),  # the apostrophe is not in the official list
        ("a/b", "a b"),
    ],
)
def test_process_punctuation(text, expected):
    assert process_punctuation(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Two", "2"),
        ("none", "0"),
        ("the red one", "red 1"),
        ("A dog", "dog"),
        ("an apple", "apple"),
        ("dont", "don't"),
        ("Im", "im"),  # lower-cased before the lookup, so the capitalised keys never match
        ("whats up", "what's up"),
        ("  many   spaces ", "many spaces"),
    ],
)
def test_process_digit_article(text, expected):
    assert process_digit_article(text) == expected


@pytest.mark.parametrize("matches, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (7, 1.0), (10, 1.0)])
def test_leave_one_out_values_for_matching_annotators(matches, expected):
    answers = ["cat"] * matches + ["dog", "bird", "fish", "cow", "pig", "owl", "bee", "ant", "elk", "yak"][: 10 - matches]
    assert question_accuracy("cat", answers) == pytest.approx(expected)


def test_what_each_mode_normalises():
    # current official: unanimous answers -> neither side normalised
    assert question_accuracy("t-shirt", ["t-shirt"] * 10) == 1.0
    assert question_accuracy("Yes", ["yes"] * 10) == 0.0
    # ... disagreeing answers -> both sides fully normalised
    assert question_accuracy("two", ["Two"] * 9 + ["three"]) == 1.0
    # 2016-2021: prediction always normalised, unanimous answers raw, else punctuation only
    assert question_accuracy("t-shirt", ["t-shirt"] * 10, mode="vqa2016") == 0.0
    assert question_accuracy("Yes", ["yes"] * 10, mode="vqa2016") == 1.0
    assert question_accuracy("two", ["two"] * 9 + ["three"], mode="vqa2016") == 0.0
    # OpenFlamingo / Lever-LM: both sides always
    assert question_accuracy("two", ["two"] * 9 + ["three"], mode="openflamingo") == 1.0
    # lmms-eval: commas deleted, "'s" split
    assert question_accuracy("red,blue", ["red blue"] * 10, mode="openflamingo") == 1.0
    assert question_accuracy("red,blue", ["red blue"] * 10, mode="lmms-eval") == 0.0
    assert question_accuracy("red,blue", ["red blue"] * 10, mode="lmms-eval-vqav2") == 1.0


def _random_dataset(n, seed):
    import random

    rng = random.Random(seed)
    vocab = ["yes", "no", "two", "t-shirt", "cat", "1,000"]
    anns, preds = [], {}
    for q in range(n):
        answers = [rng.choice(vocab) for _ in range(10)]
        anns.append({"question_id": q, "question_type": "what", "answer_type": "other",
                     "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(answers)]})
        preds[q] = rng.choice(vocab)
    return anns, preds


def test_ids_must_match_unless_allowed():
    anns, preds = _random_dataset(10, seed=1)
    preds[99] = "yes"
    del preds[0]
    with pytest.raises(DataError) as info:
        vqa_accuracy(preds, anns)
    assert "99" in str(info.value) and "[0]" in str(info.value)
    out = vqa_accuracy(preds, anns, allow_missing=True)
    assert len(out.per_question) == 9
    only = vqa_accuracy({1: preds[1], 2: preds[2]}, anns, question_ids=[1, 2])
    assert set(only.per_question) == {1, 2}


def test_okvqa_mode_needs_nltk_or_stems():
    try:
        import inflection  # noqa: F401
        import nltk  # noqa: F401
    except ImportError:
        with pytest.raises(RunError, match="nltk"):
            question_accuracy("riding horses", ["ride horse"] * 10, mode="okvqa")
        return
    try:
        assert question_accuracy("riding", ["ride"] * 10, mode="okvqa") == 1.0
    except RunError as exc:  # nltk without its data
        assert "nltk data" in str(exc)
