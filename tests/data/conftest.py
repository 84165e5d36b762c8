"""Fixtures for `vlmlab.data`: tiny images, COCO/VQA/ratings files, the QuIC-360 excerpt, a CLI runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import PIL.Image
import pytest

FILES = Path(__file__).parent / "files"
QUIC_EXCERPT = FILES / "quic360_test_excerpt.tsv"


def write_png(path: Path, size: tuple[int, int] = (8, 4), color: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.new("RGB", size, color).save(path)
    return path


@pytest.fixture
def png() -> Callable[..., Path]:
    """`png(path, size=(8, 4), color=...)` writes a small PNG and returns its path."""
    return write_png


@pytest.fixture
def quic_excerpt() -> Path:
    return QUIC_EXCERPT


@pytest.fixture
def coco_dir(tmp_path: Path) -> Path:
    """A COCO captions JSON with 3 images (one without captions) and their PNGs under `images/`."""
    root = tmp_path / "images"
    for i in (1, 2, 3):
        write_png(root / f"img_{i}.png", color=(i * 40, 0, 0))
    data = {
        "info": {},
        "images": [{"id": 1, "file_name": "img_1.png"}, {"id": 2, "file_name": "img_2.png"}, {"id": 3, "file_name": "img_3.png"}],
        "annotations": [
            {"id": 10, "image_id": 2, "caption": "A red square."},
            {"id": 11, "image_id": 1, "caption": "A dark  square, two spaces."},
            {"id": 12, "image_id": 2, "caption": 'A "quoted" caption.'},
        ],
    }
    (tmp_path / "captions.json").write_text(json.dumps(data), encoding="utf-8")
    return tmp_path


def vqa_files(folder: Path, n: int = 3, *, subtype: str | None = "val2014") -> tuple[Path, Path]:
    """VQA v2 style questions + annotations for `n` questions over images 42 and 7, with COCO-named PNGs."""
    image_ids = [42, 7, 42, 7, 42][:n]
    questions = [{"question_id": 1000 + i, "image_id": image_ids[i], "question": f"What is {i}?"} for i in range(n)]
    annotations = [
        {
            "question_id": 1000 + i,
            "image_id": image_ids[i],
            "question_type": "what is",
            "answer_type": "other",
            "multiple_choice_answer": "red",
            "answers": [{"answer": "red" if k < 7 else "dark red", "answer_confidence": "yes", "answer_id": k + 1} for k in range(10)],
        }
        for i in range(n)
    ]
    qdoc: dict = {"task_type": "Open-Ended", "data_type": "mscoco", "questions": questions}
    if subtype:
        qdoc["data_subtype"] = subtype
    folder.mkdir(parents=True, exist_ok=True)
    qpath, apath = folder / "questions.json", folder / "annotations.json"
    qpath.write_text(json.dumps(qdoc), encoding="utf-8")
    apath.write_text(json.dumps({"data_subtype": subtype, "annotations": annotations}), encoding="utf-8")
    for image_id in set(image_ids):
        write_png(folder / "images" / f"COCO_val2014_{image_id:012d}.jpg")  # JPEG by extension
    return qpath, apath


@pytest.fixture
def make_vqa() -> Callable[..., tuple[Path, Path]]:
    """`make_vqa(folder, n=3, subtype="val2014")` -> (questions.json, annotations.json)."""
    return vqa_files


@pytest.fixture
def vqa_dir(tmp_path: Path) -> Path:
    vqa_files(tmp_path)
    return tmp_path


@pytest.fixture
def ratings_csv(tmp_path: Path) -> Path:
    """Two raters x two faces, a group column, one empty arousal; images `face_a.png`, `face_b.png`."""
    write_png(tmp_path / "faces" / "face_a.png")
    write_png(tmp_path / "faces" / "face_b.png", color=(0, 90, 0))
    path = tmp_path / "ratings.csv"
    path.write_text(
        "image_id,rater_id,emotion,valence,arousal,age_group\n"
        "face_a,r1,happy,7.5,6,young\n"
        "face_a,r2,happy,8,,old\n"
        "face_b,r1,sad,2,3.25,young\n"
        "face_b,r2,neutral,5,5,old\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    """Run `vlmlab ARGS` through the real entry point; returns (exit code, stdout, stderr)."""
    from vlmlab.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main([str(a) for a in args])
        out = capsys.readouterr()
        code = info.value.code if isinstance(info.value.code, int) else (0 if info.value.code is None else 1)
        return code, out.out, out.err

    return run
