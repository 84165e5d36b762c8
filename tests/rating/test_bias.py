"""Bias statistics of the rating analysis against statsmodels, and their errors through the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from statsmodels.stats import proportion as smp

from vlmlab.cli import main
from vlmlab.rating import bias
from vlmlab.rating.analysis import ConditionRun, analyze_condition
from vlmlab.rating.config import RatingConfig
from vlmlab.rating.run import run_study
from rating_helpers import EMOTIONS, ScriptedRater, make_faces


def test_fpr_difference_matches_statsmodels():
    human = ["neutral"] * 40 + ["happy"] * 20
    groups = (["A"] * 20 + ["B"] * 20) + (["A"] * 10 + ["B"] * 10)
    model = ["angry"] * 2 + ["neutral"] * 18 + ["angry"] * 9 + ["neutral"] * 11 + ["happy"] * 20
    out = bias.fpr_by_group(human, model, groups, ["angry", "happy"])
    # angry: negatives are all 60 rows (none is human-angry): A 2/30, B 9/30.
    diff = [d for d in out["differences"] if d["category"] == "angry"][0]
    low, high = smp.confint_proportions_2indep(9, 30, 2, 30, compare="diff")
    assert (diff["k"], diff["n"], diff["k_reference"], diff["n_reference"]) == (9, 30, 2, 30)
    assert diff["estimate"] == pytest.approx(7 / 30) and diff["low"] == pytest.approx(low) and diff["high"] == pytest.approx(high)
    assert diff["p"] == pytest.approx(smp.test_proportions_2indep(9, 30, 2, 30, compare="diff").pvalue)
    a = out["rates"]["angry"]["A"]
    assert (a["low"], a["high"]) == pytest.approx(smp.proportion_confint(2, 30, method="wilson"))
    assert a["method"] == "wilson" and a["unit"] == "images"
    assert "happy" not in {d["category"] for d in out["differences"]}  # no happy false positives at all: nothing to test


def test_repeat_noise_sd_pools_every_repeat():
    values = {"a": [1, 2, 6], "b": [4, 4, 4], "c": [3, 5, 7], "d": [2, 2]}
    ss = sum(np.sum((np.array(v) - np.mean(v)) ** 2) for v in values.values())
    df = sum(len(v) - 1 for v in values.values())
    out = bias.pooled_repeat_sd(values, n_boot=200)
    assert out["value"] == pytest.approx(math.sqrt(ss / df))  # not only the first two repeats
    assert out["unit"] == "images" and out["n_units"] == 4 and out["low"] <= out["value"] <= out["high"]


def test_failure_rate_counts_every_kind_and_n_is_per_statistic():
    recs = [{"image_id": f"i{i}", "status": s, "group": "A", "emotion": None, "valence": None, "arousal": None,
             "human": {"emotion": "happy", "valence": 5.0, "arousal": 5.0}} for i, s in enumerate(["error", "empty", "parse_error", "error"])]
    recs += [{"image_id": f"j{i}", "status": "ok", "group": "A", "emotion": "happy", "valence": v, "arousal": None,
              "human": {"emotion": "happy", "valence": float(v), "arousal": 5.0}} for i, v in enumerate([3, 5, 7])]
    run = ConditionRun(folder=__import__("pathlib").Path("."), config={"model": {"name": "m", "kind": "openai"}, "variant": {"name": "v"},
                                                                       "mode": "context-carry", "temperature": 0.0, "repeat": 0}, records=recs)
    out = analyze_condition(run, EMOTIONS, n_boot=50)
    assert out["failure_rate"] == pytest.approx(4 / 7) and out["parse_failure_rate"] == pytest.approx(1 / 7)
    assert out["valence"]["n"] == 3 and out["valence"]["pearson"]["n_units"] == 3 and out["emotion"]["n"] == 3


@pytest.fixture(scope="module")
def scripted_runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("scripted")
    ratings, truth = make_faces(tmp_path / "faces", n_per_cell=3, raters=3)
    config = {"out": str(tmp_path / "out"), "data": {"ratings": str(ratings)}, "models": [{"name": "s", "ref": "s"}],
              "conditions": {"modes": ["context-carry"], "temperatures": [1.0], "repeats": 3}, "batch_size": 8}
    study = RatingConfig.model_validate(config)
    rater = ScriptedRater(truth, fp_a=0.0, fp_b=0.5)
    return run_study(study, backend_factory=lambda c: rater), tmp_path


def test_analysis_has_mixed_models_and_a_comparison_table(scripted_runs):
    folders, tmp_path = scripted_runs
    with pytest.raises(SystemExit) as info:
        main(["rating", "analyze", str(tmp_path / "out"), "--out", str(tmp_path / "analysis")])
    assert info.value.code in (0, None)
    result = json.loads((tmp_path / "analysis" / "analysis.json").read_text())
    mixed = result["mixed_models"]
    human = mixed["human"]["valence"]
    assert human["n_obs"] == 36 * 3 and human["n_groups"] == {"image": 36, "rater": 3}
    model = mixed["models"]["s/default/context-carry"]["valence"]
    assert model["n_obs"] == 36 * 3 and model["n_groups"] == {"image": 36}
    # ScriptedRater at temperature 1 moves every rating by -1 or +1: noise SD 1 (a little less at the 1..9 clip).
    assert 0.8 < model["sd_components"]["residual"] < 1.05
    repeats = result["cross"]["repeats"][0]
    assert repeats["repeats"] == 3 and "over images" in repeats["valence_repeat_noise_sd"]["ci"]
    report = (tmp_path / "analysis" / "report.md").read_text()
    assert "VLMs, classifier baselines and human raters" in report and "human raters (each vs the others)" in report
    assert "Mixed models of bias" in report
    # make_faces' raters have no bias of their own: the rater variance sits on its boundary, and the report says so.
    assert any("variance of rater estimated at 0" in w for w in human["warnings"])
    for w in human["warnings"]:
        assert f"Warning: human raters: valence: {w}" in report


def test_mixed_model_factor_not_a_column_is_exit_2(scripted_runs, capsys):
    folders, tmp_path = scripted_runs
    with pytest.raises(SystemExit) as info:
        main(["rating", "analyze", str(tmp_path / "out"), "--out", str(tmp_path / "bad_analysis"), "--factor", "age_group"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no column 'age_group' to use as a factor" in err[0]
    assert not (tmp_path / "bad_analysis").exists()
