"""VQA accuracy: hand-checked normalisation rules and leave-one-out values, and equality with the
official GT-Vision-Lab code (and Lever-LM's OpenFlamingo copy) vendored in vqa_reference.py."""

from __future__ import annotations

import copy
import random

import pytest
from vqa_reference import LeverLMVQAEval, OfficialVQAEval

from vlmlab.errors import DataError, RunError
from vlmlab.metrics.vqa import (
    process_digit_article,
    process_punctuation,
    question_accuracy,
    vqa_accuracy,
)


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
    assert OfficialVQAEval().processPunctuation(text) == expected


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
    assert OfficialVQAEval().processDigitArticle(text) == expected


@pytest.mark.parametrize("matches, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (7, 1.0), (10, 1.0)])
def test_leave_one_out_values_for_matching_annotators(matches, expected):
    answers = ["cat"] * matches + ["dog", "bird", "fish", "cow", "pig", "owl", "bee", "ant", "elk", "yak"][: 10 - matches]
    assert question_accuracy("cat", answers) == pytest.approx(expected)


def test_normalisation_of_human_answers_only_when_they_disagree():
    # all ten identical: compared verbatim, so "t-shirt" never equals the normalised "t shirt"
    assert question_accuracy("t-shirt", ["t-shirt"] * 10) == 0.0
    # disagreeing: punctuation is processed on the human answers too
    assert question_accuracy("t-shirt", ["t-shirt"] * 9 + ["shirt"]) == 1.0
    # digits/articles are never processed on human answers in the official code
    assert question_accuracy("two", ["two"] * 5 + ["2"] * 5) == pytest.approx(1.0)
    assert question_accuracy("two", ["two"] * 9 + ["three"]) == 0.0
    # ... but they are in Lever-LM's OpenFlamingo copy
    assert question_accuracy("two", ["two"] * 9 + ["three"], mode="openflamingo") == 1.0


def _random_dataset(n, seed):
    rng = random.Random(seed)
    vocab = ["yes", "no", "two", "2", "Two ", "t-shirt", "t shirt", "the cat", "cat", "a cat.", "1,000", "1000",
             "dont", "don't", "red!", "red", "3.5", "none", "0", "umbrella", "It's", "its", "blue/green", "ten\n"]
    anns, preds = [], {}
    for q in range(n):
        if rng.random() < 0.2:
            answers = [rng.choice(vocab)] * 10
        else:
            answers = [rng.choice(vocab[:8] if q % 2 else vocab) for _ in range(10)]
        anns.append({
            "question_id": q, "question_type": rng.choice(["what", "how many"]),
            "answer_type": rng.choice(["yes/no", "number", "other"]),
            "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(answers)],
        })
        preds[q] = rng.choice(vocab + answers)
    return anns, preds


@pytest.mark.parametrize("mode, reference", [("official", OfficialVQAEval), ("openflamingo", LeverLMVQAEval)])
def test_equal_to_the_reference_code_on_random_questions(mode, reference):
    anns, preds = _random_dataset(2000, seed=3)
    ref = reference()
    ref.evaluate({a["question_id"]: copy.deepcopy(a) for a in anns}, {q: {"answer": p} for q, p in preds.items()})
    ours = vqa_accuracy(preds, anns, mode=mode)
    assert ours.accuracy == ref.accuracy["overall"]
    assert ours.per_answer_type == ref.accuracy["perAnswerType"]
    assert ours.per_question == ref.evalQA
    assert 0 < ours.accuracy < 100


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
