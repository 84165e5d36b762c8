"""Human ratings tables: values, groups, image lookup and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmlab.data.ratings import read_ratings
from vlmlab.errors import DataError


def test_ratings_values_groups_and_images(ratings_csv: Path) -> None:
    records = read_ratings(ratings_csv, ratings_csv.parent / "faces")
    assert len(records) == 4
    first, second = records[0], records[1]
    assert (first.image_id, first.rater_id, first.emotion, first.valence, first.arousal) == ("face_a", "r1", "happy", 7.5, 6.0)
    assert second.arousal is None  # empty cell
    assert first.groups == {"age_group": "young"}
    assert first.image.path == ratings_csv.parent / "faces" / "face_a.png"  # extension found on disk
    assert first.image.load().size == (8, 4)
    assert first.id == "face_a@r1" and first.source.endswith("ratings.csv:2")


def test_ratings_tsv_with_path_column_and_no_rater(tmp_path: Path) -> None:
    path = tmp_path / "r.tsv"
    path.write_text("image\tfile_name\tvalence\nf1\timgs/f1.jpg\t1\nf1\timgs/f1.jpg\t9\n", encoding="utf-8")
    records = read_ratings(path)
    assert [(r.image_id, r.rater_id, r.emotion, r.valence) for r in records] == [("f1", None, None, 1.0), ("f1", None, None, 9.0)]
    assert records[0].image.path == tmp_path / "imgs" / "f1.jpg"
    assert records[0].groups == {}


def test_custom_scale(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("image_id,valence\nx.png,-0.5\n", encoding="utf-8")
    assert read_ratings(path, scale=(-1, 1))[0].valence == -0.5


@pytest.mark.parametrize(
    "content, expected",
    [
        ("image_id,valence\nx,abc\n", "r.csv:2: valence is 'abc', expected a number from 1 to 9"),
        ("image_id,valence\nx,5\ny,10\n", "r.csv:3: valence '10' is outside 1-9"),
        ("image_id,arousal\nx,0\n", "r.csv:2: arousal '0' is outside 1-9"),
        ("image_id,arousal\nx,nan\n", "r.csv:2: arousal 'nan' is outside 1-9"),
        ("face,valence\nx,5\n", "no column for the image id; expected 'image_id' or 'image', found columns: face, valence"),
        ("image_id,score\nx,5\n", "no column for the ratings; expected 'emotion' or 'valence' or 'arousal'"),
        ("image_id,rater_id,valence\nx,r1,5\nx,r1,6\n", "r.csv:3: duplicate rating of image 'x' by rater 'r1' (first on line 2)"),
        ("image_id,valence\n,5\n", "r.csv:2: column 'image_id' is empty"),
        ("image_id,file_name,valence\nx,../y.png,5\n", "r.csv:2: image path '../y.png' is outside the data root"),
    ],
)
def test_bad_ratings(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_ratings(path)
    assert expected in str(info.value)


def test_jsonl_ratings_with_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"image_id": 12, "valence": 3, "arousal": null, "emotion": "fear", "site": 2}\n', encoding="utf-8")
    (record,) = read_ratings(path)
    assert (record.image_id, record.valence, record.arousal, record.groups) == ("12", 3.0, None, {"site": "2"})
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"image_id": 12, "valence": true}\n', encoding="utf-8")
    with pytest.raises(DataError, match="b.jsonl:1: valence is True"):
        read_ratings(bad)
