"""Regressions: the toy faces' `image` column is the image path; COCO entries keep their query."""

from __future__ import annotations

import json

import PIL.Image

from vlmlab.data.captions import read_coco_captions
from vlmlab.data.ratings import read_ratings


def test_image_column_is_the_path_when_image_id_is_the_id(tmp_path):
    (tmp_path / "faces").mkdir()
    PIL.Image.new("RGB", (4, 4)).save(tmp_path / "faces" / "f1.png")
    (tmp_path / "r.csv").write_text("image_id,image,rater_id,emotion,valence,arousal,group\n1,faces/f1.png,r0,happy,7,5,A\n")
    (record,) = read_ratings(tmp_path / "r.csv")
    assert record.image.path == tmp_path / "faces" / "f1.png" and record.groups == {"group": "A"}


def test_coco_entry_query_is_kept(tmp_path):
    PIL.Image.new("RGB", (4, 4)).save(tmp_path / "p.png")
    data = {"images": [{"id": 1, "file_name": "p.png", "query": "what is on the left?"}], "annotations": [{"image_id": 1, "caption": "a red ball"}]}
    (tmp_path / "c.json").write_text(json.dumps(data))
    (record,) = read_coco_captions(tmp_path / "c.json")
    assert record.query == "what is on the left?" and record.references == ["a red ball"]
