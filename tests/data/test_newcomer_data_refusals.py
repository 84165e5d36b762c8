"""Bad data that used to be accepted silently: missing images, one id for two files, unknown labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vlmlab.cli import main
from vlmlab.toyworld import generate


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code or 0), capsys.readouterr().err.strip()


def test_missing_image_is_an_error_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "pano"
    generate("panorama", root, n=20, seed=0)
    first = (root / "test.tsv").read_text().splitlines()[1].split("\t")[0]
    (root / first).unlink()
    code, err = _cli(["data", "check", "quic360", str(root / "test.tsv"), "--out", str(tmp_path / "r.jsonl")], capsys)
    assert code == 2 and err.count("\n") == 0
    assert err.startswith(f"error: {root / 'test.tsv'}:2") and f"{root / first}: image file not found" in err and "--allow-missing" in err
    assert not (tmp_path / "r.jsonl").exists()
    code, err = _cli(["data", "check", "quic360", str(root / "test.tsv"), "--allow-missing", "--check-images"], capsys)
    assert code == 0


def test_one_image_id_two_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "faces"
    generate("faces", root, n=6, seed=0)
    lines = (root / "ratings.csv").read_text().splitlines()
    header = lines[0].split(",")
    id_col, path_col = header.index("image_id"), header.index("image")
    rows = [line.split(",") for line in lines[1:]]
    first_id = rows[0][id_col]
    other_file = next(r[path_col] for r in rows if r[id_col] != first_id)
    second = next(i for i, r in enumerate(rows) if i > 0 and r[id_col] == first_id)
    rows[second][path_col] = other_file
    (root / "ratings.csv").write_text("\n".join([lines[0]] + [",".join(r) for r in rows]) + "\n")
    code, err = _cli(["data", "check", "ratings", str(root / "ratings.csv")], capsys)
    assert code == 2 and err.count("\n") == 0
    assert err.startswith(f"error: {root / 'ratings.csv'}:{second + 2}: image id {first_id!r} names file {other_file!r}, but line 2 names")


def test_emotion_outside_the_configured_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    generate("faces", tmp_path / "data/faces", n=6, seed=0)
    shutil.copy(Path(__file__).resolve().parents[2] / "configs/rating/toy.yaml", tmp_path / "toy.yaml")
    csv = tmp_path / "data/faces/ratings.csv"
    lines = csv.read_text().splitlines()
    e = lines[0].split(",").index("emotion")
    row = lines[3].split(",")
    row[e] = "contempt"
    lines[3] = ",".join(row)
    csv.write_text("\n".join(lines) + "\n")
    code, err = _cli(["rating", "run", "toy.yaml", "--priority", "1"], capsys)
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("error: data/faces/ratings.csv:4: emotion 'contempt' is not one of the configured emotions (happy, sad,")
    assert not (tmp_path / "runs").exists()
