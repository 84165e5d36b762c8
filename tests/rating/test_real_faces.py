"""The rating study runs and is analysed on FER-2013 data (emotions only, one label per image)."""

from __future__ import annotations

import csv
import json

import numpy as np

from vlmlab.models.base import GenerationResult
from vlmlab.rating.analysis import analyze_runs
from vlmlab.rating.config import RatingConfig
from vlmlab.rating.run import run_study


class SaysNeutral:
    name = "neutral"
    supports_score = False

    def generate(self, requests):
        out = []
        for r in requests:
            text = "neutral" if "emotion" in r.conversation[-1].text.lower() else "5"
            out.append(GenerationResult(id=r.id, status="ok", text=text))
        return out


def test_fer2013_study_runs_and_analyses(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "fer2013.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        for i in range(12):
            writer.writerow([i % 7, " ".join(str(v) for v in rng.integers(0, 256, 2304)), "PublicTest" if i % 2 else "Training"])
    study = RatingConfig.model_validate({"out": str(tmp_path / "out"), "data": {"ratings": str(path), "format": "fer2013", "group_column": "usage"},
                                         "models": [{"name": "m", "ref": "m"}], "emotions": ["angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral"]})
    folders = run_study(study, backend_factory=lambda c: SaysNeutral())
    paths = analyze_runs(folders, tmp_path / "analysis", n_boot=50)
    result = json.loads(paths["json"].read_text())
    cond = result["conditions"]["m/default/context-carry/t0/r0"]
    assert cond["emotion"]["n"] == 12 and cond["failure_rate"] == 0
    # 12 rows cycle through the 7 codes: neutral (code 6) appears once (row 7), so accuracy is 1/12.
    assert cond["emotion"]["accuracy"]["value"] == 1 / 12
    groups = cond["emotion"]["fpr"]["rates"]["neutral"]
    assert set(groups) == {"PublicTest", "Training"}
