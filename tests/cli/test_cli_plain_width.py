"""`vlmlab data check` and `vlmlab score --format table` piped (not a terminal): long paths and
names come out on one line, never folded at rich's default 80 columns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import PIL.Image

EXE = Path(sys.executable).parent / "vlmlab"
ENV = {"PATH": str(EXE.parent), "HF_HUB_OFFLINE": "1"}  # no COLUMNS: rich would default to 80 off a terminal


def _run(*args: object) -> str:
    done = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_data_check_prints_a_long_path_unbroken(tmp_path: Path) -> None:
    folder = tmp_path / ("a-rather-long-folder-name-for-the-images-of-" + "x" * 60) / "images"
    folder.mkdir(parents=True)
    PIL.Image.new("RGB", (8, 8), "red").save(folder / "one.png")
    out = tmp_path / ("records-written-to-a-long-file-name-" + "y" * 60 + ".jsonl")
    stdout = _run("data", "check", "folder", folder, "--query", "what is here", "--out", out)
    assert f"folder: {folder}" in stdout and str(out) in stdout


def test_score_table_prints_a_long_answer_type_unbroken(tmp_path: Path) -> None:
    kind = "answer type named at length in the annotations file, " + "z" * 60
    anns = {"annotations": [{"question_id": 1, "answer_type": kind, "question_type": "what", "multiple_choice_answer": "red",
                             "answers": [{"answer": "red", "answer_confidence": "yes", "answer_id": i + 1} for i in range(10)],
                             "image_id": 1}]}
    (tmp_path / "anns.json").write_text(json.dumps(anns))
    (tmp_path / "pred.json").write_text(json.dumps([{"question_id": 1, "answer": "red"}]))
    stdout = _run("score", "vqa", tmp_path / "pred.json", tmp_path / "anns.json", "--format", "table")
    assert f"answer type: {kind}" in stdout
