"""Shapes and panorama captions: references match what was drawn; readers load every output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL.Image

from vlmlab.data.captions import read_caption_table, read_coco_captions
from vlmlab.toyworld.captions import SPLITS
from vlmlab.toyworld.panorama import GROUND_WORDS
from vlmlab.toyworld.scenes import COLOUR_SYNONYMS, COLOURS, SHAPE_SYNONYMS


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    low = text.lower()
    return any(w in low for w in words)


def test_every_reference_names_each_drawn_colour_and_shape(captions_dir: Path) -> None:
    scenes = json.loads((captions_dir / "scenes.json").read_text())
    checked = 0
    for split in SPLITS:
        coco = json.loads((captions_dir / f"captions_{split}.json").read_text())
        refs: dict[int, list[str]] = {}
        for ann in coco["annotations"]:
            refs.setdefault(ann["image_id"], []).append(ann["caption"])
        for image in coco["images"]:
            texts = refs[image["id"]]
            assert len(texts) == 5 and len(set(texts)) >= 4
            for obj in scenes[str(image["id"])]["objects"]:
                for text in texts:
                    assert _mentions(text, COLOUR_SYNONYMS[obj["colour"]]), (text, obj)
                    assert _mentions(text, SHAPE_SYNONYMS[obj["shape"]]), (text, obj)
                checked += 1
    assert checked >= 80


def test_drawn_pixels_carry_the_stated_colours(captions_dir: Path) -> None:
    scenes = json.loads((captions_dir / "scenes.json").read_text())
    coco = json.loads((captions_dir / "captions_train.json").read_text())
    for image in coco["images"][:30]:
        pixels = np.asarray(PIL.Image.open(captions_dir / image["file_name"]).convert("RGB")).reshape(-1, 3)
        assert pixels.shape[0] == 112 * 112
        present = {name for name, rgb in COLOURS.items() if (pixels == rgb).all(axis=1).any()}
        assert present == {o["colour"] for o in scenes[str(image["id"])]["objects"]}


def test_coco_and_tsv_agree_and_readers_load_them(captions_dir: Path) -> None:
    for split in SPLITS:
        coco = read_coco_captions(captions_dir / f"captions_{split}.json")
        table = read_caption_table(captions_dir / f"{split}.tsv")
        assert len(coco) == len(table) > 0
        assert all(len(r.references) == 5 for r in coco + table)
        assert [sorted(r.references) for r in coco] == [sorted(r.references) for r in table]
        assert all(r.image.path is not None and r.image.path.is_file() for r in coco + table)
        assert {r.query for r in table} == {"Describe the image."}
        assert coco[0].image.load().size == (112, 112)


def test_panorama_references_answer_their_query(panorama_dir: Path) -> None:
    truth = json.loads((panorama_dir / "scenes.json").read_text())
    coco = json.loads((panorama_dir / "captions_train.json").read_text())
    refs: dict[int, list[str]] = {}
    for ann in coco["annotations"]:
        refs.setdefault(ann["image_id"], []).append(ann["caption"])
    topics = set()
    for entry in coco["images"]:
        t = truth[str(entry["id"])]
        texts = refs[entry["id"]]
        topics.add(t["topic"])
        assert len(texts) == 5 and entry["topic"] == t["topic"]
        for text in texts:
            if t["topic"] in ("left", "centre", "right"):
                objs = [o for o in t["objects"] if o["region"] == t["topic"]]
                if not objs:
                    assert _mentions(text, ("nothing", "no objects"))
                for o in objs:
                    assert _mentions(text, COLOUR_SYNONYMS[o["colour"]]) and _mentions(text, SHAPE_SYNONYMS[o["shape"]])
                others = {c for o in t["objects"] if o["region"] != t["topic"] for c in COLOUR_SYNONYMS[o["colour"]]}
                bare = text.lower()
                for phrase in GROUND_WORDS[t["ground"]]:
                    bare = bare.replace(phrase, "")
                assert not any(c in bare for c in others - {c for o in objs for c in COLOUR_SYNONYMS[o["colour"]]})
            elif t["topic"] == "sky":
                assert "sky" in text.lower()
                if t["light"]:
                    assert t["light"] in text.lower()
            elif t["topic"] == "ground":
                assert _mentions(text, GROUND_WORDS[t["ground"]])
    assert len(topics) == 6


def test_panorama_images_are_two_to_one_and_the_tsv_reader_keeps_queries(panorama_dir: Path) -> None:
    for split in SPLITS:
        table = read_caption_table(panorama_dir / f"{split}.tsv")
        coco = json.loads((panorama_dir / f"captions_{split}.json").read_text())
        assert len(table) == len(coco["images"])  # one record per (image, query) pair
        assert {(r.image.path.relative_to(panorama_dir).as_posix(), r.query) for r in table} == {
            (e["file_name"], e["query"]) for e in coco["images"]
        }
        assert all(len(r.references) == 5 for r in table)
        assert read_coco_captions(panorama_dir / f"captions_{split}.json")  # loads (queries are an extra key)
    assert table[0].image.load().size == (224, 112)
