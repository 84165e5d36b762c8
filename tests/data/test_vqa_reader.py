"""VQA v2 / OK-VQA: strict question-annotation join and image file names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmlab.data.vqa import read_vqa
from vlmlab.errors import ConfigError, DataError


def test_vqa_join_and_coco_file_names(vqa_dir: Path) -> None:
    records = read_vqa(vqa_dir / "questions.json", vqa_dir / "annotations.json", vqa_dir / "images")
    assert [r.question_id for r in records] == ["1000", "1001", "1002"]
    first = records[0]
    assert (first.image_id, first.question, first.answer_type, first.question_type, first.multiple_choice_answer) == (
        "42", "What is 0?", "other", "what is", "red",
    )
    assert first.answers == ["red"] * 7 + ["dark red"] * 3
    assert first.image.path == vqa_dir / "images" / "COCO_val2014_000000000042.jpg"
    assert first.image.load().size == (8, 4)
    assert records[0].image is records[2].image  # one Image per image id
    assert first.id == "1000"


def test_vqa_without_annotations_and_explicit_names(vqa_dir: Path) -> None:
    records = read_vqa(vqa_dir / "questions.json", images=vqa_dir, image_pattern="img_{image_id}.png")
    assert all(r.answers == [] and r.answer_type is None for r in records)
    assert records[1].image.path == vqa_dir / "img_7.png"
    mapped = read_vqa(vqa_dir / "questions.json", images=vqa_dir, image_files={42: "a.jpg", "7": "b.jpg"})
    assert [r.image.path.name for r in mapped] == ["a.jpg", "b.jpg", "a.jpg"]


def test_okvqa_style_file_name_and_string_answers(tmp_path: Path) -> None:
    (tmp_path / "q.json").write_text(
        json.dumps({"questions": [{"question_id": 5, "image_id": 3, "question": "Why?", "file_name": "x.jpg"}]}), encoding="utf-8"
    )
    (tmp_path / "a.json").write_text(
        json.dumps({"annotations": [{"question_id": 5, "image_id": 3, "answers": ["because", "because"]}]}), encoding="utf-8"
    )
    (record,) = read_vqa(tmp_path / "q.json", tmp_path / "a.json")
    assert record.answers == ["because", "because"] and record.image.path == tmp_path / "x.jpg"


def _rewrite(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    "target, change, expected",
    [
        ("annotations.json", lambda d: d["annotations"].pop(), "annotations.json: 1 question ids have no annotation (1002)"),
        ("questions.json", lambda d: d["questions"].pop(0), "annotations.json: 1 annotations have no question in questions.json (1000)"),
        ("questions.json", lambda d: d["questions"].append(dict(d["questions"][0])), "questions[3] duplicate question_id 1000"),
        ("annotations.json", lambda d: d["annotations"].append(dict(d["annotations"][0])), "annotations[3] duplicate question_id 1000"),
        ("annotations.json", lambda d: d["annotations"][1].update(image_id=99), "question_id 1001 has image_id 99 but the questions file says 7"),
        ("annotations.json", lambda d: d["annotations"][0].update(answers=[]), "annotations[0] has an empty 'answers' list"),
        ("questions.json", lambda d: d["questions"][2].pop("question"), "questions[2] has no key 'question'"),
        ("questions.json", lambda d: d.pop("data_subtype"), "cannot tell the image file names"),
        ("questions.json", lambda d: d.update(questions={}), "key 'questions' is dict, expected list"),
    ],
)
def test_bad_vqa(vqa_dir: Path, target: str, change, expected: str) -> None:
    _rewrite(vqa_dir / target, change)
    with pytest.raises(DataError) as info:
        read_vqa(vqa_dir / "questions.json", vqa_dir / "annotations.json", vqa_dir / "images")
    assert expected in str(info.value)


def test_bad_pattern_is_a_config_error(vqa_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"image pattern 'x_\{id\}.jpg' cannot be filled"):
        read_vqa(vqa_dir / "questions.json", image_pattern="x_{id}.jpg")


def test_many_missing_ids_are_summarised(tmp_path: Path, make_vqa) -> None:
    qpath, apath = make_vqa(tmp_path, n=5)
    _rewrite(apath, lambda d: d.update(annotations=d["annotations"][:1] + [
        {"question_id": 9000 + i, "image_id": 1, "answers": ["x"]} for i in range(7)
    ]))
    with pytest.raises(DataError, match=r"4 question ids have no annotation \(1001, 1002, 1003, 1004\)"):
        read_vqa(qpath, apath)
