"""Hugging Face `datasets` as data sources: parquet, arrow, save_to_disk folders and hub ids.

Every file here is written by `datasets` itself (`Dataset.to_parquet`, `save_to_disk`), in the
layouts of the lmms-lab VQAv2 / OK-VQA / COCO-Caption copies and of QuIC-360, with images embedded
through the `Image` feature or given as paths.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import PIL.Image
import pytest

from vlmlab.data import read_dataset
from vlmlab.data.ratings import read_ratings
from vlmlab.data.sources import parse_source, read_source_table
from vlmlab.data.vqa import read_vqa

COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def _png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (6, 4)) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _vqav2(answer_dicts: bool = True) -> datasets.Dataset:
    """Three questions over two images, lmms-lab/VQAv2 columns (OK-VQA: answers as plain strings)."""
    answers = [["yes"] * 10, ["2"] * 6 + ["two"] * 4, ["red"] * 10]
    if answer_dicts:
        answers = [[{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(ans)] for ans in answers]
    features = datasets.Features({
        "question_id": datasets.Value("int64"), "question": datasets.Value("string"),
        "question_type": datasets.Value("string"), "answer_type": datasets.Value("string"),
        "multiple_choice_answer": datasets.Value("string"),
        "answers": [{"answer": datasets.Value("string"), "answer_confidence": datasets.Value("string"),
                     "answer_id": datasets.Value("int64")}] if answer_dicts else [datasets.Value("string")],
        "image_id": datasets.Value("int64"), "image": datasets.Image(),
    })
    return datasets.Dataset.from_dict({
        "question_id": [10, 11, 20], "question": ["Is it red?", "How many?", "What color?"],
        "question_type": ["is it", "how many", "what color"], "answer_type": ["yes/no", "number", "other"],
        "multiple_choice_answer": ["yes", "2", "red"], "answers": answers, "image_id": [1, 1, 2],
        "image": [{"bytes": _png_bytes(COLORS[0]), "path": "COCO_val2014_000000000001.jpg"}] * 2
        + [{"bytes": _png_bytes(COLORS[1]), "path": "COCO_val2014_000000000002.jpg"}],
    }, features=features)


@pytest.fixture(scope="module")
def vqa_sources(tmp_path_factory) -> dict[str, Path]:
    """The same VQAv2 split as a parquet file, an arrow file, a save_to_disk folder and a DatasetDict folder."""
    root = tmp_path_factory.mktemp("hf")
    ds = _vqav2()
    ds.to_parquet(str(root / "vqav2.parquet"))
    ds.save_to_disk(str(root / "vqav2_disk"))
    datasets.DatasetDict({"validation": ds, "test": ds.select([2])}).save_to_disk(str(root / "vqav2_dict"))
    arrow = sorted((root / "vqav2_disk").glob("*.arrow"))
    assert len(arrow) == 1
    return {"parquet": root / "vqav2.parquet", "arrow": arrow[0], "disk": root / "vqav2_disk", "dict": root / "vqav2_dict"}


@pytest.mark.parametrize("kind", ["parquet", "arrow", "disk", "dict#validation"])
def test_vqa_from_every_container_reads_the_same_records(vqa_sources, kind):
    name, _, split = kind.partition("#")
    source = f"{vqa_sources[name]}#{split}" if split else vqa_sources[name]
    records = read_vqa(source)
    assert [r.question_id for r in records] == ["10", "11", "20"]
    assert [r.image_id for r in records] == ["1", "1", "2"]
    assert records[1].answers == ["2"] * 6 + ["two"] * 4 and records[1].answer_type == "number"
    assert records[0].image.path is None and records[0].image.load().getpixel((0, 0)) == COLORS[0]
    assert records[0].image == records[1].image and records[0].image != records[2].image
    assert records[2].multiple_choice_answer == "red" and records[2].question == "What color?"


def test_okvqa_layout_answers_as_strings_and_parse_of_sources(tmp_path):
    path = tmp_path / "okvqa.parquet"
    _vqav2(answer_dicts=False).to_parquet(str(path))
    records = read_dataset("okvqa", path).records
    assert records[0].answers == ["yes"] * 10
    assert parse_source(path).kind == "parquet" and parse_source("hf:lmms-lab/OK-VQA#val2014").split == "val2014"
    assert parse_source(tmp_path / "x.tsv").kind == "file"


def test_coco_captions_and_quic360_layouts(tmp_path, png):
    # lmms-lab/COCO-Caption style: embedded image, five captions in `answer`, integer `id`
    coco = datasets.Dataset.from_dict({
        "question_id": ["COCO_val2014_000000000001.jpg", "COCO_val2014_000000000002.jpg"],
        "image": [{"bytes": _png_bytes(c), "path": None} for c in COLORS[:2]],
        "question": ["Provide a one-sentence caption for the provided image."] * 2,
        "answer": [["a red square", "red", "a red image", "red block", "a square"], ["green", "a green image"]],
        "id": [1, 2], "file_name": ["COCO_val2014_000000000001.jpg", "COCO_val2014_000000000002.jpg"],
    }, features=datasets.Features({
        "question_id": datasets.Value("string"), "image": datasets.Image(), "question": datasets.Value("string"),
        "answer": [datasets.Value("string")], "id": datasets.Value("int64"), "file_name": datasets.Value("string"),
    }))
    coco.to_parquet(str(tmp_path / "coco.parquet"))
    records = read_dataset("captions", tmp_path / "coco.parquet").records
    assert [(r.id, len(r.references)) for r in records] == [("1", 5), ("2", 2)]
    assert records[1].image.load().getpixel((0, 0)) == COLORS[1]
    # QuIC-360 (Silviase/QuIC-360 on the hub: url, query, annotation), images as relative paths
    quic = datasets.Dataset.from_dict({
        "url": ["refer360images/indoor/shop/pano_a.jpg"] * 2 + ["refer360images/indoor/shop/pano_b.jpg"],
        "query": ["location", "location", "people"], "annotation": ["a shop", "a store", "two people"],
    })
    quic.save_to_disk(str(tmp_path / "quic"))
    png(tmp_path / "panos" / "refer360images/indoor/shop/pano_a.jpg")
    rows = read_dataset("quic360-rows", tmp_path / "quic", images=tmp_path / "panos").records
    pairs = read_dataset("quic360", tmp_path / "quic", images=tmp_path / "panos").records
    assert len(rows) == 3 and [len(p.references) for p in pairs] == [2, 1]
    assert pairs[0].image.path == tmp_path / "panos" / "refer360images/indoor/shop/pano_a.jpg"


def test_ratings_with_embedded_images(tmp_path):
    ds = datasets.Dataset.from_dict({
        "image_id": ["f1", "f1", "f2"], "image": [{"bytes": _png_bytes(COLORS[i]), "path": None} for i in (0, 0, 2)],
        "rater_id": ["r1", "r2", "r1"], "valence": [3.0, 4.0, 7.5], "arousal": [5.0, 5.0, 2.0],
    }, features=datasets.Features({
        "image_id": datasets.Value("string"), "image": datasets.Image(), "rater_id": datasets.Value("string"),
        "valence": datasets.Value("float64"), "arousal": datasets.Value("float64"),
    }))
    ds.to_parquet(str(tmp_path / "ratings.parquet"))
    records = read_ratings(tmp_path / "ratings.parquet")
    assert [(r.image_id, r.rater_id, r.valence) for r in records] == [("f1", "r1", 3.0), ("f1", "r2", 4.0), ("f2", "r1", 7.5)]
    assert records[2].image.load().getpixel((0, 0)) == COLORS[2]


def test_data_check_summarises_datasets_sources(vqa_sources, run_cli):
    code, stdout, stderr = run_cli(["data", "check", "vqa", vqa_sources["parquet"], "--check-images"])
    assert code == 0, stderr
    assert "parquet file" in stdout and "images decoded" in stdout and "│ records" in stdout and "3" in stdout
    code, stdout, stderr = run_cli(["data", "check", "vqa", f"{vqa_sources['dict']}#test"])
    assert code == 0 and "save_to_disk folder (split test)" in stdout and stderr == ""


def test_column_mapping_through_the_cli(tmp_path, run_cli):
    datasets.Dataset.from_dict({
        "filepath": ["a.png", "b.png"], "sentences": [["a red thing", "red"], ["green"]],
    }).to_parquet(str(tmp_path / "karpathy.parquet"))
    PIL.Image.new("RGB", (4, 4), COLORS[0]).save(tmp_path / "a.png")
    PIL.Image.new("RGB", (4, 4), COLORS[1]).save(tmp_path / "b.png")
    code, stdout, stderr = run_cli(["data", "check", "captions", tmp_path / "karpathy.parquet", "--column", "image=filepath",
                                    "--check-images"])
    assert code == 0, stderr
    assert "images decoded" in stdout and "1 / 1.50 / 2" in stdout


def test_bad_sources_are_one_line_exit_2(vqa_sources, tmp_path, run_cli):
    datasets.Dataset.from_dict({"q": ["x"], "img": ["a.png"]}).to_parquet(str(tmp_path / "wrong.parquet"))
    out = tmp_path / "records.jsonl"
    cases = [
        (["vqa", tmp_path / "wrong.parquet", "--out", out],
         f"error: {tmp_path / 'wrong.parquet'}: no column for the question id; expected 'question_id' or 'qid', found columns: q, img"),
        (["captions", tmp_path / "wrong.parquet", "--column", "image=img", "--column", "caption=sentences"],
         f"error: {tmp_path / 'wrong.parquet'}: the column mapping names 'sentences' for the caption, but the columns are: q, img"),
        (["vqa", vqa_sources["dict"]],
         f"error: {vqa_sources['dict']}: has splits validation, test; name one, e.g. {vqa_sources['dict']}#validation"),
        (["vqa", f"{vqa_sources['dict']}#train"], f"error: {vqa_sources['dict']}#train: no split 'train'; it has validation, test"),
        (["captions", tmp_path / "wrong.parquet", "--column", "caption"], "error: --column 'caption': write ROLE=NAME, e.g. --column caption=sentences"),
    ]
    for args, line in cases:
        code, stdout, stderr = run_cli(["data", "check", *args])
        assert (code, stderr.strip()) == (2, line), args
        assert not out.exists()


def test_hub_id_offline_with_an_empty_cache_is_one_line(tmp_path):
    """The real CLI in a fresh process, HF_HUB_OFFLINE=1 and an empty cache: never the network."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets"), "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "vlmlab", "data", "check", "okvqa", "hf:lmms-lab/OK-VQA#val2014",
                           "--out", str(tmp_path / "r.jsonl")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "error: hf:lmms-lab/OK-VQA#val2014: cannot load the hub dataset 'lmms-lab/OK-VQA' (offline: HF_HUB_OFFLINE is set) "
        "and it is not in the Hugging Face cache; load it once where the network works, or use a local parquet/arrow/save_to_disk copy")
    assert proc.stdout == "" and not (tmp_path / "r.jsonl").exists()


def test_read_source_table_keeps_images_undecoded(vqa_sources):
    table = read_source_table(vqa_sources["arrow"])
    assert table.columns[:2] == ("question_id", "question")
    image = table.rows[0].values["image"]
    assert set(image) == {"bytes", "path"} and image["bytes"][:4] == b"\x89PNG"
    assert json.dumps(table.rows[0].values["answers"][0]) == '{"answer": "yes", "answer_confidence": "yes", "answer_id": 1}'


def _write_yaml(path: Path, config: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_study_configs_name_datasets_sources(vqa_sources, tmp_path):
    """caption, icl and rating data blocks take a parquet / save_to_disk source as they take files."""
    from vlmlab.caption.config import CaptionConfig
    from vlmlab.caption.study import prepare_data
    from vlmlab.config import load_config
    from vlmlab.icl.data import VQADataConfig, load_split
    from vlmlab.rating.config import RatingConfig
    from vlmlab.rating.run import load_items

    # caption: embedded images are written once under _shared_data/images, the tables name them
    datasets.Dataset.from_dict({
        "image": [{"bytes": _png_bytes(COLORS[0]), "path": "p1.png"}] * 2 + [{"bytes": _png_bytes(COLORS[2]), "path": "p2.png"}],
        "query": ["location", "location", "people"], "annotation": ["a shop", "a store", "two people"],
    }, features=datasets.Features({"image": datasets.Image(), "query": datasets.Value("string"),
                                   "annotation": datasets.Value("string")})).to_parquet(str(tmp_path / "quic.parquet"))
    caption = load_config(_write_yaml(tmp_path / "caption.yaml", {
        "name": "hf", "out_dir": str(tmp_path / "runs"), "data": {"test": str(tmp_path / "quic.parquet")},
        "models": [{"name": "tiny", "path": str(tmp_path), "finetune": False}], "finetune": {"enabled": False},
    }), CaptionConfig)
    shared = prepare_data(caption)
    assert [(r.id, r.references) for r in shared.test] == [("p1/location", ["a shop", "a store"]), ("p2/people", ["two people"])]
    first = shared.test[0].image.path
    assert first.parent == shared.folder / "images" and first.read_bytes() == _png_bytes(COLORS[0])
    assert str(first) in (shared.folder / "test.csv").read_text()
    # icl: one datasets source instead of questions + annotations JSON
    split = load_split(VQADataConfig(questions=Path(f"{vqa_sources['dict']}#validation")))
    assert [r.question_id for r in split.records] == ["10", "11", "20"] and split.get("20").answers == ["red"] * 10
    # rating: a parquet of ratings with embedded faces
    datasets.Dataset.from_dict({
        "image_id": ["f1", "f2"], "image": [{"bytes": _png_bytes(COLORS[i]), "path": None} for i in (0, 1)],
        "rater_id": ["r1", "r1"], "emotion": ["happy", "sad"], "valence": [7.0, 2.0], "arousal": [5.0, 3.0],
        "group": ["a", "b"],
    }, features=datasets.Features({
        "image_id": datasets.Value("string"), "image": datasets.Image(), "rater_id": datasets.Value("string"),
        "emotion": datasets.Value("string"), "valence": datasets.Value("float64"), "arousal": datasets.Value("float64"),
        "group": datasets.Value("string"),
    })).to_parquet(str(tmp_path / "faces.parquet"))
    rating = load_config(_write_yaml(tmp_path / "rating.yaml", {
        "name": "faces", "out": str(tmp_path / "runs" / "faces"), "data": {"ratings": str(tmp_path / "faces.parquet")},
        "models": [{"name": "m", "kind": "ollama", "ref": "x", "base_url": "http://127.0.0.1:1"}],
    }), RatingConfig)
    items = load_items(rating)
    assert [(i.id, i.emotion, i.group) for i in items] == [("f1", "happy", "a"), ("f2", "sad", "b")]
    assert items[1].image.load().getpixel((0, 0)) == COLORS[1]


def test_icl_questions_json_without_annotations_is_refused(tmp_path):
    from vlmlab.errors import DataError
    from vlmlab.icl.data import VQADataConfig, load_split

    (tmp_path / "q.json").write_text(json.dumps({"questions": []}))
    with pytest.raises(DataError, match="needs its annotations file"):
        load_split(VQADataConfig(questions=tmp_path / "q.json"))


def test_score_vqa_against_a_parquet_of_answers(vqa_sources, tmp_path, run_cli):
    """The lmms-lab layout as ground truth for `score vqa`; the same numbers as the JSON annotations."""
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps([{"question_id": 10, "answer": "Yes"}, {"question_id": 11, "answer": "two"},
                                 {"question_id": 20, "answer": "red"}]))
    code, stdout, stderr = run_cli(["score", "vqa", preds, vqa_sources["parquet"]])
    assert code == 0, stderr
    out = json.loads(stdout)
    # current official: "Yes" against ten "yes" is not normalised (0); "two" against 2/two: 100
    assert out["per_question"] == {"10": 0.0, "11": 100.0, "20": 100.0}
    assert out["per_answer_type"] == {"yes/no": 0.0, "number": 100.0, "other": 100.0}


def test_unreadable_containers_are_one_line(tmp_path, run_cli):
    (tmp_path / "text.parquet").write_text("hello")
    (tmp_path / "text.arrow").write_text("hello")
    for name, kind in (("text.parquet", "parquet file"), ("text.arrow", "arrow file")):
        code, stdout, stderr = run_cli(["data", "check", "vqa", tmp_path / name])
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / name}: not a readable {kind} ("), stderr
    code, _, stderr = run_cli(["data", "check", "vqa", tmp_path / "missing.parquet"])
    assert (code, stderr.strip()) == (2, f"error: {tmp_path / 'missing.parquet'}: file not found; check the path")


def test_score_caption_against_a_parquet_of_references(tmp_path, run_cli):
    """A COCO-Caption style parquet (id + five captions) as references; same numbers as the JSONL form."""
    captions = {1: ["a red square on a table", "a red block", "red square", "a small red square", "a square"],
                2: ["a green field", "green grass", "a field of grass", "green", "a green meadow"]}
    datasets.Dataset.from_dict({"id": list(captions), "answer": list(captions.values())}).to_parquet(str(tmp_path / "refs.parquet"))
    (tmp_path / "refs.jsonl").write_text("".join(json.dumps({"id": str(i), "references": r}) + "\n" for i, r in captions.items()))
    preds = tmp_path / "results.json"
    preds.write_text(json.dumps([{"image_id": 1, "caption": "a red square"}, {"image_id": 2, "caption": "a field"}]))
    scores = []
    for refs in ("refs.parquet", "refs.jsonl"):
        code, stdout, stderr = run_cli(["score", "caption", preds, tmp_path / refs, "--metrics", "BLEU,CIDEr"])
        assert code == 0, stderr
        scores.append(json.loads(stdout))
    assert scores[0]["n"] == 2 and scores[0]["CIDEr"] > 0 and scores[0] == scores[1]


def test_a_loaded_dataset_with_an_indices_mapping_gives_its_selected_rows_in_order(tmp_path, monkeypatch):
    """A `select`/`shuffle` keeps the whole arrow table plus an indices mapping; the rows read are the
    selected ones, in the selected order (read through the public arrow format, not `_indices`)."""
    folder = tmp_path / "disk"
    _vqav2().save_to_disk(str(folder))
    selected = datasets.load_from_disk(str(folder)).select([2, 0])
    assert selected.data.num_rows == 3  # the mapping is there: the table itself still holds every row
    monkeypatch.setattr(datasets, "load_from_disk", lambda location: selected)
    table = read_source_table(folder)
    assert [row.values["question_id"] for row in table.rows] == [20, 10]
    assert table.rows[0].values["image"]["bytes"] == _png_bytes(COLORS[1])  # not decoded
