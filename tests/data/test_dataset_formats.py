"""Image folders, the format registry, normalised records round trip, image checks and summaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmlab.data.check import check_images, records_jsonl, summarize, write_records_jsonl
from vlmlab.data.folders import read_image_folder
from vlmlab.data.images import Image
from vlmlab.data.readers import FORMATS, read_dataset, read_records
from vlmlab.data.records import CaptionRecord, record_from_dict, record_to_dict
from vlmlab.errors import ConfigError, DataError


def test_image_folder_sorted_recursive_skips_hidden(tmp_path: Path, png) -> None:
    for name in ["b.png", "a.JPG", "sub/c.webp", ".hidden.png", ".cache/d.png", "notes.txt", "z.jpeg"]:
        if name.endswith(".txt"):
            (tmp_path / name).write_text("x", encoding="utf-8")
        else:
            png(tmp_path / name)
    records = read_image_folder(tmp_path, query="q")
    assert [r.id for r in records] == ["a", "b", "sub/c", "z"]
    assert all(r.references == [] and r.query == "q" for r in records)
    assert records[2].image.path == tmp_path / "sub" / "c.webp"


def test_image_folder_errors(tmp_path: Path, png) -> None:
    with pytest.raises(DataError, match="image folder not found"):
        read_image_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        read_image_folder(tmp_path / "empty")
    png(tmp_path / "two" / "x.png")
    png(tmp_path / "two" / "x.jpg")
    with pytest.raises(DataError, match="same name as .* apart from the extension"):
        read_image_folder(tmp_path / "two")


def test_registry_names_options_and_typos(quic_excerpt: Path) -> None:
    assert {"quic360", "quic360-rows", "coco", "vqa", "okvqa", "folder", "ratings", "records"} <= set(FORMATS)
    dataset = read_dataset("quic360", quic_excerpt)
    assert (dataset.rows, len(dataset.records)) == (41, 7)
    assert read_dataset("quic360-rows", quic_excerpt).rows == 41
    with pytest.raises(ConfigError, match="did you mean 'quic360'"):
        read_dataset("quic36", quic_excerpt)
    with pytest.raises(ConfigError, match="format 'quic360' does not take --annotations"):
        read_dataset("quic360", quic_excerpt, annotations="x.json")


def test_records_round_trip_every_kind(quic_excerpt: Path, vqa_dir: Path, ratings_csv: Path, tmp_path: Path) -> None:
    datasets = [
        read_dataset("quic360-rows", quic_excerpt).records,
        read_dataset("vqa", vqa_dir / "questions.json", annotations=vqa_dir / "annotations.json", images=vqa_dir / "images").records,
        read_dataset("ratings", ratings_csv, images=ratings_csv.parent / "faces").records,
    ]
    for i, records in enumerate(datasets):
        out = write_records_jsonl(records, tmp_path / f"r{i}.jsonl")
        back = read_records(out)
        assert [record_to_dict(r) for r in back] == [record_to_dict(r) for r in records]
        assert [r.image.path for r in back] == [r.image.path for r in records]
        assert [type(r) for r in back] == [type(r) for r in records]


def test_record_dict_errors(tmp_path: Path) -> None:
    record = CaptionRecord(id="a", image=Image(path=tmp_path / "x.png"), query="", references=["r"])
    data = record_to_dict(record)
    assert data["kind"] == "caption" and data["image"] == str(tmp_path / "x.png")
    with pytest.raises(DataError, match="unexpected fields bogus"):
        record_from_dict({**data, "bogus": 1}, "f.jsonl:3")
    with pytest.raises(DataError, match="f.jsonl:3: unknown record kind 'img'"):
        record_from_dict({**data, "kind": "img"}, "f.jsonl:3")
    with pytest.raises(DataError, match="in-memory bytes"):
        record_to_dict(CaptionRecord(id="b", image=Image(data=b"x"), query="", references=[]))
    dup = tmp_path / "dup.jsonl"
    dup.write_text(records_jsonl([record, record]), encoding="utf-8")
    with pytest.raises(DataError, match=r"dup.jsonl:2: duplicate id 'a' \(first on line 1\)"):
        read_records(dup)
    with pytest.raises(DataError, match="outside the data root"):
        read_records(dup, images=tmp_path / "elsewhere")


def test_check_images_names_row_and_counts_failures(tmp_path: Path, png) -> None:
    csv_path = tmp_path / "c.csv"
    png(tmp_path / "ok.png", size=(10, 5))
    png(tmp_path / "big.png", size=(30, 20))
    (tmp_path / "bad.png").write_text("hello", encoding="utf-8")
    csv_path.write_text("image,caption\nok.png,a\nbig.png,b\nok.png,c\n", encoding="utf-8")
    result = check_images(read_dataset("captions", csv_path).records)
    assert (result.images, result.min_size, result.max_size) == (2, (10, 5), (30, 20))
    csv_path.write_text("image,caption\nok.png,a\nbad.png,b\nmissing.png,c\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        check_images(read_dataset("captions", csv_path).records)
    message = str(info.value)
    assert message.startswith(f"{csv_path}:3: {tmp_path / 'bad.png'}: not an image file")
    assert message.endswith("(and 1 more bad images)")


def test_summary_counts(quic_excerpt: Path, ratings_csv: Path) -> None:
    summary = summarize(read_dataset("quic360", quic_excerpt))
    assert (summary["rows"], summary["records"], summary["images"], summary["queries"]) == (41, 7, 6, 4)
    assert summary["references per item (min / mean / max)"] == "5 / 5.86 / 6"
    assert summary["image files found"] == "0 / 6"  # the excerpt ships without its panoramas
    ratings = summarize(read_dataset("ratings", ratings_csv))
    assert (ratings["raters"], ratings["emotions"], ratings["ratings per image (min / mean / max)"]) == (2, 3, "2 / 2.00 / 2")


def test_write_is_atomic(tmp_path: Path) -> None:
    good = CaptionRecord(id="a", image=Image(path=tmp_path / "x.png"), query="", references=["r"])
    bad = CaptionRecord(id="b", image=Image(data=b"bytes"), query="", references=[])
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError):
        write_records_jsonl([good, bad], out)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    write_records_jsonl([good], out)
    assert out.read_text(encoding="utf-8").count("\n") == 1
