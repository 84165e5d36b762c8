"""The analysis recovers planted effects from a scripted rater served over real HTTP.

Planted (see rating_helpers.ScriptedRater and make_faces):
- group B neutral faces are called "angry" with probability 0.5, group A never;
- at temperature 1 each rating moves ±1 with probability 1 (noise SD 1 per repeat), at 0 never;
- human raters add a draw from {-1, 0, 0, +1}: SD sqrt(0.5) ≈ 0.707 (before clipping to 1–9).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vlmlab.cli import main
from vlmlab.rating.analysis import analyze_runs
from vlmlab.runs import read_ledger
from vlmlab.testing import FaultPlan, serve
from rating_helpers import ScriptedRater, make_faces


def responder_for(rater: ScriptedRater):
    def respond(conversation, params):
        from vlmlab.models.base import GenerationRequest

        req = GenerationRequest(id="x", conversation=conversation, temperature=params["temperature"] or 0.0, seed=params["seed"], top_logprobs=params.get("top_logprobs") or 0)
        result = rater.generate([req])[0]
        return result.text, result.logprobs

    return respond


def write_config(path: Path, ratings: Path, out: Path, url: str, kind: str, **conditions) -> Path:
    config = {
        "out": str(out),
        "data": {"ratings": str(ratings)},
        "models": [{"name": "scripted", "ref": "fake", "kind": kind, "base_url": url, "variants": [{"name": "default", "options": {"backoff_base": 0.001, "timeout": 5}}]}],
        "conditions": {"modes": ["context-carry"], "temperatures": [0.0, 1.0], "repeats": 2, **conditions},
        "capture": {"top_logprobs": 5},
        "batch_size": 8,
    }
    path.write_text("# vlmlab rating run " + str(path) + "\n" + yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_planted_effects_recovered_over_http(tmp_path):
    api = "openai"
    ratings, truth = make_faces(tmp_path / "faces", n_per_cell=12, raters=4)
    rater = ScriptedRater(truth, fp_a=0.0, fp_b=0.5)
    faults = FaultPlan(server_error=0.05, rate_limit=0.05, retry_after=0.001, seed=1)
    with serve(responder_for(rater), api=api, faults=faults) as server:
        config = write_config(tmp_path / "study.yaml", ratings, tmp_path / "out", server.url, api)
        with pytest.raises(SystemExit) as exit_info:
            main(["rating", "run", str(config)])
        assert exit_info.value.code in (0, None)
    analysis = json.loads((tmp_path / "out" / "analysis" / "analysis.json").read_text())
    t0 = analysis["conditions"]["scripted/default/context-carry/t0/r0"]
    cells = {(c["human"], c["model"]): c["by_group"] for c in t0["emotion"]["misclassification_by_group"]}
    b, a = cells[("neutral", "angry")]["B"], cells[("neutral", "angry")]["A"]
    assert b["low"] <= 0.5 <= b["high"] and a["value"] == 0.0
    assert b["low"] > a["high"]  # the group difference is detected
    repeats = {e["temperature"]: e for e in analysis["cross"]["repeats"]}
    noise = repeats[1.0]["valence_repeat_noise_sd"]
    assert noise["low"] <= 1.0 <= noise["high"] + 0.1  # clipping at 1 and 9 pulls it slightly below 1
    sd = {(e["temperature"], e["dimension"]): e["sd"] for e in analysis["cross"]["temperature"]}
    assert sd[(0.0, "valence")] < sd[(1.0, "valence")]  # SD shrinks at temperature 0
    human = analysis["human_rater_noise"]["valence"]["pooled_sd"]
    assert abs(human - math.sqrt(0.5)) < 0.12
    assert t0["valence"]["pearson"]["value"] > 0.9 and t0["emotion"]["kappa"]["value"] > 0.8
    assert t0["valence"]["dark_knowledge"]["mean_entropy_bits"]["value"] == pytest.approx(-(0.6 * math.log2(0.6) + 0.4 * math.log2(0.2)), abs=0.05)
    report = (tmp_path / "out" / "analysis" / "report.html").read_text()
    assert "Misclassification by group" in report and report.count("data:image/png") >= 3


def test_ollama_scripted_rater_run(tmp_path):
    ratings, truth = make_faces(tmp_path / "faces", n_per_cell=2, raters=2)
    rater = ScriptedRater(truth, fp_b=0.0)
    with serve(responder_for(rater), api="ollama", faults=FaultPlan(server_error=0.1, retry_after=0.001, seed=2)) as server:
        config = write_config(tmp_path / "study.yaml", ratings, tmp_path / "out", server.url, "ollama", temperatures=[0.0], repeats=1)
        with pytest.raises(SystemExit) as exit_info:
            main(["rating", "run", str(config), "--no-analyze"])
        assert exit_info.value.code in (0, None)
    records = read_ledger(tmp_path / "out" / "scripted__default" / "context-carry__t0__r0" / "ledger.jsonl")
    assert len(records) == len(truth) and all(r["status"] == "ok" for r in records)
    assert all(r["emotion"] == truth[r["image_id"]].emotion for r in records)


def test_analysis_of_a_non_rating_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["rating", "analyze", str(tmp_path / "x")])
    assert exit_info.value.code == 2


WORKER = """
import sys, time
from vlmlab.rating.config import RatingConfig
from vlmlab.config import load_config
from vlmlab.rating import run as rating_run
sys.path.insert(0, sys.argv[3])
from rating_helpers import ScriptedRater, make_faces
ratings, truth = make_faces(__import__("pathlib").Path(sys.argv[2]), n_per_cell=4, raters=2)
study = load_config(sys.argv[1], RatingConfig)
rater = ScriptedRater(truth)
original = rater.generate
def slow(requests):
    time.sleep(0.05)
    out = original(requests)
    return out
rater.generate = slow
def on_append(run_append):
    def inner(item_id, record):
        line = run_append(item_id, record)
        print(item_id, flush=True)
        return line
    return inner
from vlmlab import runs
orig = runs.Run.append
def append(self, item_id, record):
    line = orig(self, item_id, record)
    print(item_id, flush=True)
    return line
runs.Run.append = append
rating_run.run_study(study, backend_factory=lambda c: rater)
print("done", flush=True)
"""


@pytest.mark.slow
def test_resume_after_sigkill_gives_identical_ledgers(tmp_path):
    here = Path(__file__).parent
    faces = tmp_path / "faces"
    make_faces(faces, n_per_cell=4, raters=2)

    def config(out: Path) -> Path:
        data = {"out": str(out), "data": {"ratings": str(faces / "ratings.csv")}, "models": [{"name": "s", "ref": "s"}],
                "conditions": {"modes": ["context-carry", "single-shot"], "temperatures": [0.7], "repeats": 1}, "batch_size": 2}
        path = tmp_path / f"{out.name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def run(cfg: Path, kill_after: int | None) -> None:
        proc = subprocess.Popen([sys.executable, "-c", WORKER, str(cfg), str(faces), str(here)], stdout=subprocess.PIPE, text=True)
        seen = 0
        for _ in proc.stdout:
            seen += 1
            if kill_after is not None and seen >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=120)

    run(config(tmp_path / "ref"), None)
    resumed = config(tmp_path / "res")
    for k in (3, 30):
        run(resumed, k)
    run(resumed, None)
    for mode in ("context-carry__t0.7__r0", "single-shot__t0.7__r0"):
        a = (tmp_path / "ref" / "s__default" / mode / "ledger.jsonl").read_bytes()
        b = (tmp_path / "res" / "s__default" / mode / "ledger.jsonl").read_bytes()
        assert a == b and len(read_ledger(tmp_path / "res" / "s__default" / mode / "ledger.jsonl")) == 48
