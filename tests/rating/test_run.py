"""The rating study end to end on a scripted rater: modes, parse failures, sweeps, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmlab.errors import ConfigError, DataError
from vlmlab.rating.conditions import expand_conditions, select_conditions
from vlmlab.rating.config import RatingConfig
from vlmlab.rating.run import run_study
from vlmlab.runs import read_ledger
from rating_helpers import ScriptedRater


def study(ratings: Path, out: Path, **conditions) -> RatingConfig:
    return RatingConfig.model_validate(
        {
            "out": str(out),
            "data": {"ratings": str(ratings)},
            "models": [{"name": "scripted", "ref": "scripted"}],
            "conditions": {"modes": ["context-carry", "single-shot", "text-only"], "temperatures": [0.0], "repeats": 1, **conditions},
            "capture": {"top_logprobs": 5},
            "batch_size": 5,
        }
    )


def records(folder: Path) -> list[dict]:
    return read_ledger(folder / "ledger.jsonl")


def test_every_mode_records_answers(faces, tmp_path):
    ratings, truth = faces
    rater = ScriptedRater(truth, fp_b=0.0)
    cfg = study(ratings, tmp_path / "out")
    folders = run_study(cfg, backend_factory=lambda c: rater)
    assert [f.relative_to(tmp_path / "out").as_posix() for f in folders] == [
        "scripted__default/context-carry__t0__r0",
        "scripted__default/single-shot__t0__r0",
        "scripted__default/text-only__t0__r0",
    ]
    for folder in folders:
        recs = records(folder)
        assert len(recs) == len(truth)
        assert all(r["status"] == "ok" for r in recs)
        for r in recs:
            face = truth[r["image_id"]]
            assert r["valence"] == face.valence and r["arousal"] == face.arousal
    carry = records(folders[0])
    assert all(r["emotion"] == truth[r["image_id"]].emotion for r in carry)
    assert set(carry[0]["answers"]) == {"emotion", "valence", "arousal"}
    # the valence step saw the carried emotion answer as an assistant turn: 3 calls per item in carry mode
    assert carry[0]["digit_distribution"]["valence"]["probs"][truth[carry[0]["image_id"]].valence - 1] == pytest.approx(0.6)
    assert (folders[0] / carry[0]["logprobs_file"]).exists() and carry[0]["logprob_source"] == "raw"
    text_only = records(folders[2])
    assert text_only[0]["emotion"] is None and set(text_only[0]["answers"]) == {"valence", "arousal"}


def test_parse_failures_are_recorded_not_guessed(faces, tmp_path):
    ratings, truth = faces
    bad = {"face000", "face005"}
    rater = ScriptedRater(truth, garbage_ids=bad)
    folder = run_study(study(ratings, tmp_path / "out", modes=["context-carry"]), backend_factory=lambda c: rater)[0]
    recs = {r["image_id"]: r for r in records(folder)}
    for image_id in bad:
        assert recs[image_id]["status"] == "parse_error"
        assert recs[image_id]["valence"] is None
        assert recs[image_id]["answers"]["valence"]["text"] == "hard to say"
        assert "no number" in recs[image_id]["answers"]["valence"]["parse_error"]
    assert json.loads((folder / "run.json").read_text())["item_status"] == {"ok": len(truth) - 2, "parse_error": 2}


def test_temperature_repeat_sweep(faces, tmp_path):
    ratings, truth = faces
    rater = ScriptedRater(truth)
    cfg = study(ratings, tmp_path / "out", modes=["context-carry"], temperatures=[0.0, 1.0], repeats=2)
    folders = run_study(cfg, backend_factory=lambda c: rater)
    names = [f.name for f in folders]
    assert names == ["context-carry__t0__r0", "context-carry__t1__r0", "context-carry__t1__r1"]
    r0 = [r["valence"] for r in records(folders[1])]
    r1 = [r["valence"] for r in records(folders[2])]
    assert r0 != r1  # different seeds differ at temperature > 0
    again = run_study(study(ratings, tmp_path / "again", modes=["context-carry"], temperatures=[0.0, 1.0], repeats=2), backend_factory=lambda c: ScriptedRater(truth))
    assert [r["valence"] for r in records(again[1])] == r0  # same seed, same answers


def test_priorities_select_conditions(faces, tmp_path):
    ratings, _ = faces
    cfg = study(
        ratings,
        tmp_path / "out",
        temperatures=[0.0, 0.7],
        repeats=3,
        default_priority=3,
        priority_rules=[{"priority": 1, "mode": ["context-carry"], "temperature": [0.0]}, {"priority": 2, "temperature": [0.7], "repeat": [0]}],
    )
    all_conditions = expand_conditions(cfg)
    assert len(all_conditions) == 3 * (1 + 3)
    assert [c.name for c in select_conditions(all_conditions, 1)] == ["scripted__default/context-carry__t0__r0"]
    assert len(select_conditions(all_conditions, 2)) == 1 + 3
    with pytest.raises(DataError, match="no condition has priority <= 0"):
        run_study(cfg, max_priority=0, backend_factory=lambda c: None)


def test_resume_skips_finished_items(faces, tmp_path):
    ratings, truth = faces
    rater = ScriptedRater(truth)
    cfg = study(ratings, tmp_path / "out", modes=["context-carry"])
    folder = run_study(cfg, backend_factory=lambda c: rater)[0]
    calls = rater.calls
    ledger = (folder / "ledger.jsonl").read_bytes()
    run_study(cfg, backend_factory=lambda c: rater)
    assert rater.calls == calls and (folder / "ledger.jsonl").read_bytes() == ledger


def test_config_errors(tmp_path):
    with pytest.raises(Exception, match="needs base_url"):
        RatingConfig.model_validate({"data": {"ratings": "x.csv"}, "models": [{"name": "m", "ref": "m", "kind": "openai"}]})
