"""`vlmlab score` through the real entry point: JSON contract, file formats, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmlab.cli import main

FAST = ["--metrics", "BLEU,ROUGE-L,CIDEr,SPICE"]


def _run(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out, captured.err


def _caption_files(tmp_path):
    preds = tmp_path / "pred.jsonl"
    preds.write_text(
        "\n".join(json.dumps({"id": i, "prediction": p}) for i, p in
                  [("a", "A dog runs on the grass."), ("b", "Two cats on a sofa"), ("c", "")]) + "\n"
    )
    refs = tmp_path / "refs.jsonl"
    refs.write_text(
        "\n".join(json.dumps({"id": i, "references": r}) for i, r in [
            ("a", ["a dog running on grass", "the dog runs in a park"]),
            ("b", ["two cats sleeping on a sofa", "cats on a couch"]),
            ("c", ["a red car parked on the street"]),
        ]) + "\n"
    )
    return preds, refs


def test_score_caption_json_contract(tmp_path, capsys):
    preds, refs = _caption_files(tmp_path)
    code, out, _ = _run(["score", "caption", str(preds), str(refs), *FAST], capsys)
    assert code == 0
    data = json.loads(out)
    for key in ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr", "SPICE", "mode", "n",
                "mean_prediction_tokens", "mean_reference_tokens", "token_ratio", "empty_predictions"]:
        assert key in data, key
    assert data["mode"] == "grouped" and data["n"] == 3 and data["empty_predictions"] == 1
    if data["SPICE"] is None:
        assert data["SPICE_reason"]


def test_score_caption_csv_predictions_and_per_row_references(tmp_path, capsys):
    preds = tmp_path / "pred.csv"
    preds.write_text('id,prediction\na,"a dog, running"\nb,two cats\n')
    refs = tmp_path / "refs.jsonl"
    refs.write_text("\n".join(json.dumps({"id": i, "reference": r}) for i, r in
                              [("a", "a dog running"), ("a", "dog on grass"), ("b", "two cats")]) + "\n")
    code, out, _ = _run(["score", "caption", str(preds), str(refs), "--mode", "per-row", "--metrics", "BLEU",
                         "--per-item"], capsys)
    data = json.loads(out)
    assert code == 0 and data["mode"] == "per-row" and data["n"] == 3
    assert set(data["per_item"]) == {"a#0", "a#1", "b#0"}
    code, out, _ = _run(["score", "caption", str(preds), str(refs), "--metrics", "BLEU", "--format", "table"], capsys)
    assert code == 0 and "BLEU-1" in out


# The default metric set (with METEOR, whose JVM costs ~10 s to start) is exercised through the CLI
# by tests/metrics/test_caption.py::test_meteor_equals_pycocoevalcap_on_3000_messy_items_through_the_cli.


def test_score_caption_missing_ids_is_one_line_exit_2(tmp_path, capsys):
    preds, refs = _caption_files(tmp_path)
    preds.write_text(preds.read_text() + json.dumps({"id": "zz", "prediction": "x"}) + "\n")
    code, _, err = _run(["score", "caption", str(preds), str(refs), *FAST], capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "'zz'" in err and "--allow-missing" in err
    code, out, _ = _run(["score", "caption", str(preds), str(refs), *FAST, "--allow-missing"], capsys)
    assert code == 0 and json.loads(out)["n"] == 3


@pytest.mark.parametrize("content, expected", [
    ('{"id": "a", "prediction": "x"}\nnot json\n', "pred.jsonl:2"),
    ('{"id": "a"}\n', "missing 'prediction'"),
])
def test_score_caption_bad_file_is_one_line_exit_2(tmp_path, capsys, content, expected):
    _, refs = _caption_files(tmp_path)
    bad = tmp_path / "pred.jsonl"
    bad.write_text(content)
    code, _, err = _run(["score", "caption", str(bad), str(refs), *FAST], capsys)
    assert code == 2 and expected in err and "Traceback" not in err


def test_score_caption_unknown_metric_suggests(tmp_path, capsys):
    preds, refs = _caption_files(tmp_path)
    code, _, err = _run(["score", "caption", str(preds), str(refs), "--metrics", "BLUE"], capsys)
    assert code == 2 and "did you mean 'BLEU'" in err


def _vqa_files(tmp_path):
    anns = {"annotations": [
        {"question_id": 1, "answer_type": "number", "question_type": "how many",
         "answers": [{"answer": a, "answer_id": i} for i, a in enumerate(["2"] * 3 + ["3"] * 7)]},
        {"question_id": 2, "answer_type": "yes/no", "question_type": "is this",
         "answers": [{"answer": "yes", "answer_id": i} for i in range(10)]},
    ]}
    (tmp_path / "ann.json").write_text(json.dumps(anns))
    (tmp_path / "pred.json").write_text(json.dumps([{"question_id": 1, "answer": "two"}, {"question_id": 2, "answer": "Yes."}]))
    (tmp_path / "q.json").write_text(json.dumps({"questions": [{"question_id": 2, "question": "Is this a cat?"}]}))
    return tmp_path / "pred.json", tmp_path / "ann.json", tmp_path / "q.json"


def test_score_vqa_json_contract(tmp_path, capsys):
    pred, ann, _ = _vqa_files(tmp_path)
    code, out, _ = _run(["score", "vqa", str(pred), str(ann)], capsys)
    data = json.loads(out)
    assert code == 0
    # current official: "Yes." is not normalised against ten identical "yes"
    assert data["per_question"] == {"1": 90.0, "2": 0.0} and data["mode"] == "official"
    assert data["accuracy"] == 45.0 and data["per_answer_type"] == {"number": 90.0, "yes/no": 0.0}
    code, out, _ = _run(["score", "vqa", str(pred), str(ann), "--mode", "vqa2016"], capsys)
    assert code == 0 and json.loads(out)["per_question"] == {"1": 90.0, "2": 100.0}
    code, out, _ = _run(["score", "vqa", str(pred), str(ann), "--mode", "openflamingo", "--format", "table"], capsys)
    assert code == 0 and "accuracy" in out


SOURCES = Path(__file__).parents[1] / "metrics" / "files" / "vqa_sources"


@pytest.mark.parametrize("mode, expected", [("official", 57.14), ("vqa2016", 94.29), ("openflamingo", 100.0),
                                            ("lmms-eval", 100.0), ("lmms-eval-vqav2", 100.0)])
def test_score_vqa_the_issues_seven_questions_per_mode(mode, expected, capsys):
    """Numbers printed by the source evaluators on these files (vqa_sources/SOURCES.md)."""
    code, out, _ = _run(["score", "vqa", str(SOURCES / "seven_results.json"), str(SOURCES / "seven_annotations.json"),
                         "--questions", str(SOURCES / "seven_questions.json"), "--mode", mode], capsys)
    assert code == 0 and json.loads(out)["accuracy"] == expected


def test_score_vqa_questions_restrict_and_missing_ids(tmp_path, capsys):
    pred, ann, questions = _vqa_files(tmp_path)
    code, _, err = _run(["score", "vqa", str(pred), str(ann), "--questions", str(questions)], capsys)
    assert code == 2 and "[1]" in err
    code, out, _ = _run(["score", "vqa", str(pred), str(ann), "--questions", str(questions), "--allow-missing"], capsys)
    assert code == 0 and json.loads(out)["per_question"] == {"2": 0.0}


COCO = Path(__file__).parents[1] / "metrics" / "files" / "coco_captions"
PYCOCO_KEYS = {"BLEU-1": "Bleu_1", "BLEU-2": "Bleu_2", "BLEU-3": "Bleu_3", "BLEU-4": "Bleu_4",
               "METEOR": "METEOR", "ROUGE-L": "ROUGE_L", "CIDEr": "CIDEr"}


@pytest.mark.parametrize("metrics", [
    "BLEU,ROUGE-L,CIDEr",
    pytest.param("METEOR", marks=pytest.mark.slow),  # the METEOR JVM: about a minute on a busy machine
])
def test_score_caption_coco_result_and_annotation_json_equal_pycocoevalcap(capsys, metrics):
    """COCOEvalCap's numbers on the same two files (coco_captions/SOURCES.md)."""
    expected = json.loads((COCO / "expected.json").read_text())
    code, out, err = _run(["score", "caption", str(COCO / "captions_results.json"), str(COCO / "captions_ann.json"),
                           "--metrics", metrics, "--per-item"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["n"] == 6
    for ours, theirs in PYCOCO_KEYS.items():
        if ours.split("-")[0] not in metrics:
            continue
        assert data[ours] == pytest.approx(expected[theirs], rel=1e-9, abs=1e-12), ours
        for image_id, scores in expected["per_image"].items():
            assert data["per_item"][image_id][ours] == pytest.approx(scores[theirs], rel=1e-9, abs=1e-12), (ours, image_id)


@pytest.mark.parametrize("which, content, expected", [
    ("pred", [{"image_id": 1, "text": "a cat"}], "result 0 needs 'image_id' and 'caption' (found: image_id, text)"),
    ("pred", [{"image_id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}], "result 1: duplicate id '1'; keep one prediction per id"),
    ("pred", {"annotations": []}, "a .json prediction file must be a COCO result list"),
    ("refs", [{"image_id": 1, "caption": "a"}], "a .json reference file must be a COCO captions annotation file"),
    ("refs", {"annotations": [{"image_id": 1, "caption": 3}]}, "annotation 0: 'caption' must be a string, got int"),
])
def test_score_caption_bad_coco_json_is_one_line_exit_2(tmp_path, capsys, which, content, expected):
    pred = tmp_path / "results.json"
    refs = tmp_path / "ann.json"
    pred.write_text(json.dumps([{"image_id": 1, "caption": "a cat"}]))
    refs.write_text(json.dumps({"images": [{"id": 1}], "annotations": [{"image_id": 1, "id": 1, "caption": "a cat"}]}))
    (pred if which == "pred" else refs).write_text(json.dumps(content))
    code, out, err = _run(["score", "caption", str(pred), str(refs), *FAST], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {pred if which == 'pred' else refs}: {expected}"), err
