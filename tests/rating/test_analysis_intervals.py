"""The intervals the rating analysis writes, each against an independent reference (scipy, statsmodels)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from vlmlab.rating import bias
from vlmlab.rating.analysis import ConditionRun, analyze_condition, human_rater_noise
from rating_helpers import EMOTIONS

CONFIG = {"model": {"name": "m", "kind": "openai"}, "variant": {"name": "v"}, "mode": "context-carry", "temperature": 0.0, "repeat": 0}


def _run(records: list[dict]) -> ConditionRun:
    return ConditionRun(folder=Path("."), config=CONFIG, records=records)


def _records(human_emotions, model_emotions, human_valence, model_valence) -> list[dict]:
    return [{"image_id": f"i{i}", "status": "ok", "group": None, "emotion": me, "valence": mv, "arousal": None,
             "human": {"emotion": he, "valence": hv, "arousal": None}}
            for i, (he, me, hv, mv) in enumerate(zip(human_emotions, model_emotions, human_valence, model_valence))]


def test_condition_accuracy_is_wilson_and_pearson_is_fisher_z():
    rng = np.random.default_rng(4)
    human = rng.choice(EMOTIONS, 40).tolist()
    model = [h if rng.random() < 0.7 else "neutral" for h in human]
    hv = rng.integers(1, 10, 40).astype(float)
    mv = np.clip(hv + rng.integers(-2, 3, 40), 1, 9)
    out = analyze_condition(_run(_records(human, model, hv.tolist(), mv.tolist())), EMOTIONS, n_boot=200)
    acc = out["emotion"]["accuracy"]
    k = sum(h == m for h, m in zip(human, model))
    assert acc["value"] == pytest.approx(k / 40) and acc["method"] == "wilson" and acc["unit"] == "images" and acc["n_units"] == 40
    assert (acc["low"], acc["high"]) == pytest.approx(proportion_confint(k, 40, method="wilson"), abs=1e-12)
    r = out["valence"]["pearson"]
    ref = stats.pearsonr(hv, mv).confidence_interval(0.95)
    assert r["method"] == "fisher-z" and (r["low"], r["high"]) == pytest.approx((ref.low, ref.high), rel=1e-12)
    assert out["valence"]["spearman"]["method"] == "bca"


def test_undefined_kappa_reaches_the_analysis_json_with_its_reason():
    n = 12
    out = analyze_condition(_run(_records(["happy"] * n, ["happy"] * n, [5.0] * n, [5.0] * n)), EMOTIONS, n_boot=50)
    kappa = out["emotion"]["kappa"]
    assert kappa["value"] is None and "only one class ('happy')" in kappa["note"]
    assert out["emotion"]["accuracy"]["value"] == 1.0  # accuracy is defined: 12 of 12, Wilson [0.757, 1]
    assert out["emotion"]["accuracy"]["low"] == pytest.approx(proportion_confint(12, 12, method="wilson")[0])


def _varying_raters(seed: int = 1) -> dict[str, list[float]]:
    """Ratings of 30 faces by 2 to 7 raters each: unequal degrees of freedom per face."""
    rng = np.random.default_rng(seed)
    return {f"f{i}": np.clip(np.round(rng.normal(rng.uniform(2, 8), 1.3, int(rng.integers(2, 8)))), 1, 9).tolist() for i in range(30)}


def _ols_residual_sd(values: dict[str, list[float]]) -> float:
    """statsmodels: residual SD of `rating ~ C(image)` (image fixed effects), i.e. sqrt(mse_resid)."""
    frame = pd.DataFrame([(k, v) for k, vs in values.items() for v in vs], columns=["image", "rating"])
    return math.sqrt(smf.ols("rating ~ C(image)", frame).fit().mse_resid)


def test_pooled_repeat_sd_is_the_residual_sd_of_image_fixed_effects():
    values = _varying_raters()
    out = bias.pooled_repeat_sd(values, n_boot=200)
    assert out["value"] == pytest.approx(_ols_residual_sd(values), rel=1e-12)
    naive = math.sqrt(np.mean([np.var(v, ddof=1) for v in values.values()]))  # every face weighted alike
    assert abs(naive - out["value"]) > 0.01  # the two poolings differ when raters per face vary


def test_human_rater_noise_pools_like_the_repeat_noise(tmp_path):
    values = _varying_raters()
    path = tmp_path / "ratings.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image_id", "rater_id", "valence"])
        for image, ratings in values.items():
            writer.writerows((image, f"r{j}", v) for j, v in enumerate(ratings))
    noise = human_rater_noise(path, tmp_path, n_boot=200)["valence"]
    assert noise["pooled_sd"] == pytest.approx(_ols_residual_sd(values), rel=1e-12)
    assert noise["value"] == noise["pooled_sd"] and noise["unit"] == "images" and noise["images"] == 30
    assert noise["low"] < noise["pooled_sd"] < noise["high"]
    assert noise["raters_per_image"] == pytest.approx(np.mean([len(v) for v in values.values()]))
