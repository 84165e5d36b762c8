"""Faces: the planted rater effects and noise are present in the ratings at their stated sizes."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from vlmlab.data.ratings import read_ratings
from vlmlab.toyworld.faces import EMOTIONS, GROUPS, generate_faces


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def data(faces_dir: Path) -> dict:
    stimuli = {r["image_id"]: r for r in _rows(faces_dir / "stimuli.csv")}
    ratings = _rows(faces_dir / "ratings.csv")
    truth = json.loads((faces_dir / "truth.json").read_text())
    return {"stimuli": stimuli, "ratings": ratings, "truth": truth}


def test_columns_ranges_and_raters(faces_dir: Path, data: dict) -> None:
    ratings, stimuli = data["ratings"], data["stimuli"]
    assert list(ratings[0]) == ["image_id", "image", "rater_id", "emotion", "valence", "arousal", "group"]
    assert len(stimuli) == 1500 and len(ratings) == 1500 * 10
    per_image: dict[str, set[str]] = {}
    for r in ratings:
        per_image.setdefault(r["image_id"], set()).add(r["rater_id"])
        assert 1 <= int(r["valence"]) <= 9 and 1 <= int(r["arousal"]) <= 9 and r["emotion"] in EMOTIONS
        assert r["group"] == stimuli[r["image_id"]]["group"] and r["image"] == stimuli[r["image_id"]]["image"]
    assert all(len(v) == 10 for v in per_image.values())  # distinct raters per image
    assert {s["group"] for s in stimuli.values()} == set(GROUPS)
    assert {s["emotion"] for s in stimuli.values()} == set(EMOTIONS)
    image = PIL.Image.open(faces_dir / ratings[0]["image"])
    assert image.size == (84, 84)


def _angry_rate(data: dict, groups: set[str]) -> tuple[float, int]:
    hits = [r["emotion"] == "angry" for r in data["ratings"]
            if data["stimuli"][r["image_id"]]["emotion"] == "neutral" and r["group"] in groups]
    return float(np.mean(hits)), len(hits)


def test_group_b_neutral_faces_are_rated_angry_by_the_stated_amount(data: dict) -> None:
    effect = next(e for e in data["truth"]["effects"] if e["name"] == "B_neutral_rated_angry")
    p_b, n_b = _angry_rate(data, {"B"})
    p_ac, n_ac = _angry_rate(data, {"A", "C"})
    se = math.sqrt(p_b * (1 - p_b) / n_b + p_ac * (1 - p_ac) / n_ac)
    assert abs((p_b - p_ac) * 100 - effect["delta_pp"]) < 3.5 * se * 100
    assert abs(p_ac - effect["base_rate_unoccluded"]) < 0.04  # a few occluded faces raise it a little


def test_rater_noise_sd_and_group_c_offset_are_recovered(data: dict) -> None:
    raters = data["truth"]["raters"]
    offset = next(e for e in data["truth"]["effects"] if e["name"] == "C_valence_offset")["delta"]
    resid: dict[str, list[float]] = {g: [] for g in GROUPS}
    for r in data["ratings"]:
        true_v = float(data["stimuli"][r["image_id"]]["valence"])
        if 3.0 <= true_v <= 7.0:  # away from the clipped ends of the scale
            resid[r["group"]].append(int(r["valence"]) - true_v)
    ab = np.array(resid["A"] + resid["B"])
    c = np.array(resid["C"])
    assert abs(float(ab.std()) - raters["expected_valence_residual_sd_unclipped"]) < 0.06
    assert abs(float(c.mean() - ab.mean()) - offset) < 0.12
    # Rater noise without the rater biases: residuals around each rater's own mean.
    by_rater: dict[str, list[float]] = {}
    for r in data["ratings"]:
        true_v = float(data["stimuli"][r["image_id"]]["valence"])
        if 3.0 <= true_v <= 7.0 and r["group"] != "C":
            by_rater.setdefault(r["rater_id"], []).append(int(r["valence"]) - true_v)
    within = np.concatenate([np.array(v) - np.mean(v) for v in by_rater.values()])
    assert abs(float(within.std()) - math.sqrt(raters["valence_noise_sd"] ** 2 + 1 / 12)) < 0.06


def test_occlusion_lowers_labelling_accuracy(data: dict) -> None:
    truth = data["truth"]
    correct: dict[bool, list[bool]] = {True: [], False: []}
    for r in data["ratings"]:
        s = data["stimuli"][r["image_id"]]
        if s["emotion"] != "neutral" or s["group"] != "B":
            correct[s["occlusion"] != "none"].append(r["emotion"] == s["emotion"])
    assert abs(np.mean(correct[False]) - truth["emotion_accuracy"]) < 0.03
    assert abs(np.mean(correct[True]) - truth["emotion_accuracy_occluded"]) < 0.07


@pytest.fixture(scope="module")
def small_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tw") / "faces_small"
    generate_faces(out, n=40, seed=5)
    return out


def test_the_ratings_reader_loads_the_ratings(small_faces: Path) -> None:
    rows = _rows(small_faces / "ratings.csv")
    records = read_ratings(small_faces / "ratings.csv")
    assert len(records) == len(rows) == 40 * 5
    for record, row in zip(records, rows):
        assert record.rater_id == row["rater_id"] and record.emotion == row["emotion"]
        assert record.valence == float(row["valence"]) and record.arousal == float(row["arousal"])
        assert record.groups["group"] == row["group"]


def test_the_ratings_reader_finds_the_face_images(small_faces: Path) -> None:
    records = read_ratings(small_faces / "ratings.csv")
    assert records[0].image.path is not None and records[0].image.path.is_file()
