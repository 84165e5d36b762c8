"""The demo's rating study: the face-rater toy model, a temperature x repeat sweep, the analysis,
and a check of what the analysis recovers against the effects planted in the toy faces.

    folders = run_rating(config)                       # priority-1 conditions, each resumable
    paths = analyze_rating(config, folders)            # <out>/rating/analysis/report.*
    effects = planted_effects(config, folders, truth)  # <out>/rating/planted_effects/report.*

The toy faces' human ratings carry planted effects stated in `truth.json`: the raters' noise SD,
group C's valence rated 0.5 lower, group B's neutral faces labelled "angry" more often. The
face-rater was trained on the faces' true parameters, so where it and the humans disagree by group
is where the planted human effects are. Temperature: at 0 the repeats must agree exactly, at 1
they must not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vlmlab.errors import DataError
from vlmlab.metrics import agreement as ag
from vlmlab.rating.config import RatingConfig
from vlmlab.report import Report, Table, write_report
from vlmlab.runs import atomic_write_json


def run_rating(config: RatingConfig) -> list[Path]:
    """Run the priority-1 conditions of `config` (finished ones are skipped); their run folders."""
    from vlmlab.rating.run import run_study

    return run_study(config, max_priority=1)


def analyze_rating(config: RatingConfig, folders: Sequence[Path]) -> dict[str, Path]:
    """The rating study's analysis of `folders` into `<out>/analysis` (json, md, html, plots)."""
    from vlmlab.rating.analysis import analyze_runs

    return analyze_runs(list(folders), Path(config.out) / "analysis", seed=config.seed, n_boot=500)


def _ci(e: ag.Estimate) -> dict[str, float | None]:
    return e.to_dict()


def planted_effects(config: RatingConfig, folders: Sequence[Path], truth_path: Path) -> list[dict[str, Any]]:
    """Planted value vs what the analysis recovers, one dict per effect (with bootstrap CIs)."""
    truth = json.loads(Path(truth_path).read_text(encoding="utf-8"))
    analysis = json.loads((Path(config.out) / "analysis" / "analysis.json").read_text(encoding="utf-8"))
    seed = config.seed
    rows: list[dict[str, Any]] = []

    noise = (analysis.get("human_rater_noise") or {})
    for dim in ("valence", "arousal"):
        expected = truth["raters"].get(f"expected_{dim}_residual_sd_unclipped")
        if dim in noise and expected is not None:
            rows.append({"effect": f"human rater noise SD ({dim})", "planted": expected, "recovered": noise[dim]["pooled_sd"],
                         "low": None, "high": None, "how": "pooled within-image SD of the human ratings (clipping to 1-9 lowers it a little)"})

    by_name = {e["name"]: e for e in truth["effects"]}
    faces = _stimuli(Path(truth_path).parent / "stimuli.csv")
    human = _human_ratings(config)
    offset = by_name.get("C_valence_offset")
    if offset:
        rows.append(_valence_offset(offset, faces, human, seed))
    angry = by_name.get("B_neutral_rated_angry")
    if angry:
        rows.append(_neutral_angry(angry, faces, human, seed))
    # Temperature: one greedy run at 0 (repeats would be identical by construction), two seeded
    # repeats above 0 that must differ.
    for entry in analysis["cross"].get("repeats", []):
        rows.append({"effect": f"repeats agree exactly at temperature {float(entry['temperature']):g}",
                     "planted": 1.0 if float(entry["temperature"]) == 0 else "< 1", "recovered": entry.get("valence_exact_agreement"),
                     "low": None, "high": None, "how": "share of faces whose valence is identical in two repeats"})
    return rows


def _stimuli(path: Path) -> dict[str, dict[str, str]]:
    """The faces' true parameters (`stimuli.csv`: image_id, group, emotion, valence, ...)."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return {row["image_id"]: row for row in csv.DictReader(fh)}


def _human_ratings(config: RatingConfig) -> list[Any]:
    from vlmlab.data.ratings import read_ratings

    return read_ratings(config.data.ratings, config.data.images)


def _group_difference(values: np.ndarray, in_group: np.ndarray) -> float:
    """mean(values in the group) - mean(values outside it); NaN when a bootstrap sample lacks one side."""
    if not in_group.any() or in_group.all():
        return float("nan")
    return float(values[in_group].mean() - values[~in_group].mean())


def _valence_offset(effect: dict[str, Any], faces: dict[str, dict[str, str]], ratings: list[Any], seed: int) -> dict[str, Any]:
    """Mean (human - true) valence per face, group C minus the other groups, with a bootstrap CI."""
    per_face: dict[str, list[float]] = {}
    for r in ratings:
        if r.valence is not None and r.image_id in faces:
            per_face.setdefault(r.image_id, []).append(r.valence - float(faces[r.image_id]["valence"]))
    ids = sorted(per_face)
    diff = np.array([np.mean(per_face[i]) for i in ids])
    in_group = np.array([faces[i]["group"] == effect["group"] for i in ids])
    est = ag.estimate(_group_difference, diff, in_group, seed=seed, n_boot=1000)
    return {"effect": f"group {effect['group']} valence offset", "planted": effect["delta"], "recovered": est.value, **_ci(est),
            "how": f"mean human minus true valence per face, group {effect['group']} minus the others"}


def _neutral_angry(effect: dict[str, Any], faces: dict[str, dict[str, str]], ratings: list[Any], seed: int) -> dict[str, Any]:
    """P(a rater says angry | the face is neutral), group B minus the others, over single ratings."""
    hits, in_group = [], []
    for r in ratings:
        face = faces.get(r.image_id)
        if face is None or face["emotion"] != effect["true_emotion"] or r.emotion is None:
            continue
        hits.append(float(r.emotion == effect["rated_emotion"]))
        in_group.append(face["group"] == effect["group"])
    row = {"effect": f"group {effect['group']} {effect['true_emotion']} faces labelled {effect['rated_emotion']}",
           "planted": effect["delta_pp"] / 100.0, "recovered": None, "low": None, "high": None,
           "how": f"raters' P({effect['rated_emotion']} | true {effect['true_emotion']}), group {effect['group']} minus the others"}
    h, g = np.array(hits), np.array(in_group)
    if g.any() and (~g).any():
        est = ag.estimate(_group_difference, h, g, seed=seed, n_boot=1000)
        row.update(_ci(est), recovered=est.value)
    return row


def write_planted_report(out_dir: Path, effects: list[dict[str, Any]]) -> dict[str, Path]:
    """`planted_effects.json` and a small report (collected into the demo report)."""
    report = Report("Rating study: planted effects recovered")
    report.text("The toy faces' human ratings carry effects planted by the generator (truth.json); each is measured "
                "against the faces' true parameters (stimuli.csv) and compared with the planted value.")
    rows = []
    for e in effects:
        ci = "–" if e.get("low") is None else f"[{e['low']:.3f}, {e['high']:.3f}]"
        rows.append([e["effect"], e["planted"] if not isinstance(e["planted"], float) else round(e["planted"], 3),
                     e["recovered"], ci, e["how"]])
    report.table(Table(["effect", "planted", "recovered", "95% CI", "how"], rows, digits=3))
    atomic_write_json(Path(out_dir) / "planted_effects.json", effects)
    return write_report(report, Path(out_dir))


def rating_summary(config: RatingConfig, effects: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline agreement numbers of the t=0 context-carry condition and the planted effects."""
    path = Path(config.out) / "analysis" / "analysis.json"
    if not path.is_file():
        raise DataError(f"{path}: missing; the rating analysis did not run (re-run the demo)")
    analysis = json.loads(path.read_text(encoding="utf-8"))
    conditions = analysis["conditions"]
    key = next((k for k in conditions if "/context-carry/t0/r0" in k), next(iter(conditions)))
    c = conditions[key]
    return {
        "condition": key,
        "conditions": len(conditions),
        "n": c["n"],
        "parse_failure_rate": c["parse_failure_rate"],
        "emotion_accuracy": (c.get("emotion") or {}).get("accuracy", {}).get("value"),
        "kappa": (c.get("emotion") or {}).get("kappa", {}).get("value"),
        "valence_r": (c.get("valence") or {}).get("pearson", {}).get("value"),
        "arousal_r": (c.get("arousal") or {}).get("pearson", {}).get("value"),
        "effects": effects,
    }
