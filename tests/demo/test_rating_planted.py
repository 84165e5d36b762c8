"""The demo's planted-effect check on generated toy faces (no toy model, no demo run)."""

from __future__ import annotations

import json

from vlmlab.demo.rating import planted_effects
from vlmlab.rating.config import RatingConfig
from vlmlab.toyworld.faces import generate_faces


def test_planted_effects_inside_mixed_model_cis(tmp_path):
    faces = tmp_path / "faces"
    generate_faces(faces, n=600, seed=3, image_size=24)
    config = RatingConfig.model_validate({"out": str(tmp_path / "out"), "data": {"ratings": str(faces / "ratings.csv")}, "models": [{"name": "m", "ref": "m"}]})
    (tmp_path / "out" / "analysis").mkdir(parents=True)
    (tmp_path / "out" / "analysis" / "analysis.json").write_text(json.dumps({"human_rater_noise": None, "cross": {"repeats": []}}))
    effects = {e["effect"]: e for e in planted_effects(config, [], faces / "truth.json")}
    offset = effects["group C valence offset"]
    assert offset["low"] <= -0.5 <= offset["high"] < 0
    assert offset["n_groups"]["rater"] == 40 and 100 < offset["n_groups"]["image"] < 600  # mid-scale faces only
    angry = effects["group B neutral faces labelled angry"]
    assert angry["low"] <= 0.15 <= angry["high"] and angry["low"] > 0
    assert abs(effects["human rater bias SD (valence)"]["recovered"] - 0.3) < 0.15
