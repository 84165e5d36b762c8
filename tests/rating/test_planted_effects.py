"""The rating analysis recovers every effect the toy faces plant (truth.json), each inside its 95% CI.

Planted by `vlmlab.toyworld.faces`: group C's valence is rated 0.5 lower; group B's neutral faces
are labelled angry 15 points more often; occluded faces are labelled correctly 20 points less
often (accuracy 0.8 -> 0.6). The stimuli table (`stimuli.csv`: intended emotion, occlusion, the
face's own valence) goes in with `--stimuli`; its columns are `--factor`s.
"""

from __future__ import annotations

import csv
import json

import pytest

from vlmlab.rating.analysis import analyze_runs
from vlmlab.rating.config import RatingConfig
from vlmlab.rating.run import run_study
from vlmlab.toyworld.faces import generate_faces
from rating_helpers import FixedRater, run_cli

MID_SCALE = (3.5, 6.5)  # true valences whose ratings are rarely clipped at 1 or 9


@pytest.fixture(scope="module")
def toy_study(tmp_path_factory):
    """600 toy faces (the world `test_mixed` checks the mixed model on) and a fixed-answer VLM on 12 of them."""
    tmp = tmp_path_factory.mktemp("planted")
    faces = tmp / "faces"
    generate_faces(faces, n=600, seed=7, image_size=16)
    study = RatingConfig.model_validate({"out": str(tmp / "out"), "data": {"ratings": str(faces / "ratings.csv"), "images": str(faces), "limit": 12},
                                         "models": [{"name": "fixed", "ref": "fixed"}]})
    folders = run_study(study, backend_factory=lambda c: FixedRater())
    truth = {e["name"]: e for e in json.loads((faces / "truth.json").read_text())["effects"]}
    return tmp, faces, folders, truth


def _term(fit: dict, term: str, key: str = "risk_difference") -> dict:
    return next(e for e in fit[key] if e["term"] == term)


def test_labelling_effects_inside_their_ci(toy_study):
    """B's neutral faces called angry, and occlusion lowering accuracy: image-clustered GEEs through the CLI."""
    tmp, faces, _, truth = toy_study
    code = run_cli(["rating", "analyze", str(tmp / "out"), "--out", str(tmp / "analysis"), "--stimuli", str(faces / "stimuli.csv"),
                    "--factor", "group", "--factor", "occlusion"])
    assert code == 0
    result = json.loads((tmp / "analysis" / "analysis.json").read_text())
    human = result["mixed_models"]["human"]
    assert result["mixed_models"]["stimuli"] == {"path": str(faces / "stimuli.csv"), "images": 600, "rated_images_left_out": 0}
    angry = human["labelled_angry"]  # among faces whose intended emotion is neutral, clustered by face
    assert angry["among"] == "ratings of faces whose intended emotion (stimuli table) is neutral"
    assert 0 < _term(angry, "group[B vs A]")["low"] <= truth["B_neutral_rated_angry"]["delta_pp"] / 100 <= _term(angry, "group[B vs A]")["high"]
    assert _term(angry, "group[C vs A]")["low"] <= 0 <= _term(angry, "group[C vs A]")["high"]  # nothing planted
    two_way = _term(angry, "group[B vs A]")["two_way"]  # raters crossed with faces: clustered by both
    assert 0 < two_way["low"] <= truth["B_neutral_rated_angry"]["delta_pp"] / 100 <= two_way["high"]
    correct = human["labelled_correctly"]
    occlusion = truth["occlusion_lowers_accuracy"]
    drop = occlusion["accuracy"] - occlusion["accuracy_occluded"]
    rd = _term(correct, "occlusion[none vs eyes]")  # treatment coding: the first level (eyes) is the reference
    assert 0 < rd["low"] <= drop <= rd["high"]
    rd = _term(correct, "occlusion[mouth vs eyes]")
    assert rd["low"] <= 0 <= rd["high"]  # both bands lower accuracy alike
    report = (tmp / "analysis" / "report.md").read_text()
    assert "labelled_correctly" in report and "occlusion[none vs eyes]" in report and "two-way clustered (image, rater)" in report


def test_valence_offset_inside_its_ci_on_mid_scale_faces(toy_study):
    """A stimuli table of mid-scale faces picks the faces to model: near 1 and 9 the clipping shrinks
    the planted -0.5 (about -0.44 over all faces), away from them the shift stays whole."""
    tmp, faces, folders, truth = toy_study
    with open(faces / "stimuli.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    mid = [r for r in rows if MID_SCALE[0] <= float(r["valence"]) <= MID_SCALE[1]]
    path = tmp / "mid_scale_stimuli.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(mid)
    analyze_runs(folders, tmp / "mid", n_boot=100, factors=["group", "stimulus_valence"], stimuli=path)
    models = json.loads((tmp / "mid" / "analysis.json").read_text())["mixed_models"]
    valence = models["human"]["valence"]  # valence ~ group + the face's valence + (1|image) + (1|rater)
    assert valence["n_groups"]["image"] == len(mid) and models["stimuli"]["rated_images_left_out"] == len(rows) - len(mid)
    c = _term(valence, "group[C vs A]", "fixed_effects")
    assert c["low"] <= truth["C_valence_offset"]["delta"] <= c["high"] < 0
    b = _term(valence, "group[B vs A]", "fixed_effects")
    assert b["low"] <= 0 <= b["high"]  # nothing planted
    assert f"{path}: {len(rows) - len(mid)} rated images have no row" in (tmp / "mid" / "report.md").read_text()


def test_stimuli_table_of_another_data_set_is_one_line_error(toy_study, capsys):
    tmp, _, _, _ = toy_study
    other = tmp / "other_stimuli.csv"
    other.write_text("image_id,occlusion\nx1,none\nx2,eyes\n")
    code = run_cli(["rating", "analyze", str(tmp / "out"), "--out", str(tmp / "bad"), "--stimuli", str(other)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other_stimuli.csv: none of the 600 rated images has a row" in err[0]
    assert not (tmp / "bad").exists()
