"""FER-2013 and AffectNet files as the rating study's image source, and their bad inputs via the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import yaml

from vlmlab.cli import main
from vlmlab.data.expressions import read_affectnet, read_fer2013

AFFECTNET_COLUMNS = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks", "expression", "valence", "arousal"]


def write_fer(path: Path, rows: list[tuple[int, str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        writer.writerows(rows)
    return path


def pixels(seed: int) -> str:
    return " ".join(str(v) for v in np.random.default_rng(seed).integers(0, 256, 48 * 48))


def write_affectnet(folder: Path, rows: list[list[object]]) -> Path:
    for row in rows:
        target = folder / "Manually_Annotated_Images" / str(row[0])
        target.parent.mkdir(parents=True, exist_ok=True)
        PIL.Image.new("RGB", (32, 32), (len(str(row[0])) * 9 % 256, 80, 120)).save(target)
    path = folder / "validation.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(AFFECTNET_COLUMNS)
        writer.writerows(rows)
    return path


def test_fer2013_rows_become_48x48_faces(tmp_path):
    path = write_fer(tmp_path / "fer2013.csv", [(0, pixels(0), "Training"), (6, pixels(1), "PublicTest"), (2, pixels(2), "PublicTest")])
    records = read_fer2013(path)
    assert [r.emotion for r in records] == ["angry", "neutral", "fearful"]
    assert [r.groups["usage"] for r in records] == ["Training", "PublicTest", "PublicTest"]
    first = np.asarray(PIL.Image.open(__import__("io").BytesIO(records[0].image.data)))
    assert first.shape == (48, 48) and first.ravel().tolist() == [int(v) for v in pixels(0).split()]
    assert [r.emotion for r in read_fer2013(path, usage="PublicTest")] == ["neutral", "fearful"]


def test_affectnet_codes_and_scale(tmp_path):
    rows = [["101/a.jpg", 0, 0, 32, 32, "1;2", 1, 0.5, -0.25], ["102/b.jpg", 0, 0, 32, 32, "1;2", 6, -1, 1], ["103/c.jpg", 0, 0, 32, 32, "", 10, -2, -2]]
    path = write_affectnet(tmp_path, rows)
    records = read_affectnet(path, tmp_path / "Manually_Annotated_Images")
    assert [(r.emotion, r.valence, r.arousal) for r in records] == [("happy", 7.0, 4.0), ("angry", 1.0, 9.0), (None, None, None)]
    assert records[0].image.load().size == (32, 32)


def study(tmp_path: Path, ratings: Path, fmt: str, images: Path | None = None) -> Path:
    data = {"ratings": str(ratings), "format": fmt, "group_column": None}
    if images:
        data["images"] = str(images)
    config = {"out": str(tmp_path / "out"), "data": data, "models": [{"name": "m", "ref": "m"}]}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(args: list[str], capsys) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as info:
        main(args)
    return info.value.code, capsys.readouterr().err.strip().splitlines()


def test_fer2013_bad_pixel_string_names_the_row(tmp_path, capsys):
    bad = pixels(4).split()
    bad[100] = "12x"
    path = write_fer(tmp_path / "fer2013.csv", [(3, pixels(3), "Training"), (3, " ".join(bad), "Training")])
    code, err = run_cli(["rating", "run", str(study(tmp_path, path, "fer2013"))], capsys)
    assert code == 2 and len(err) == 1
    assert f"{path}:3: pixels holds '12x'" in err[0]
    assert not (tmp_path / "out").exists()


def test_fer2013_short_pixel_string(tmp_path, capsys):
    path = write_fer(tmp_path / "fer2013.csv", [(3, "1 2 3", "Training")])
    code, err = run_cli(["rating", "run", str(study(tmp_path, path, "fer2013"))], capsys)
    assert code == 2 and len(err) == 1 and "pixels has 3 values, expected 2304" in err[0]


def test_affectnet_row_without_valence(tmp_path, capsys):
    path = write_affectnet(tmp_path, [["101/a.jpg", 0, 0, 32, 32, "", 1, 0.5, 0.1], ["102/b.jpg", 0, 0, 32, 32, "", 2, "", 0.1]])
    code, err = run_cli(["rating", "run", str(study(tmp_path, path, "affectnet", tmp_path / "Manually_Annotated_Images"))], capsys)
    assert code == 2 and len(err) == 1
    assert f"{path}:3: valence is empty" in err[0]
    assert not (tmp_path / "out").exists()
