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

from vlmlab.errors import DataError
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


def planted_effects(config: RatingConfig, folders: Sequence[Path], truth_path: Path) -> list[dict[str, Any]]:
    """Planted value vs what the analysis recovers, one dict per effect (mixed-model / GEE CIs)."""
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
        rows += _valence_offset(offset, faces, human, truth["raters"].get("rater_bias_sd"))
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


MID_SCALE = (3.5, 6.5)  # true valences whose ratings are rarely clipped at 1 or 9


def _human_frame(faces: dict[str, dict[str, str]], ratings: list[Any]) -> Any:
    """Human ratings with the faces' true parameters (true_valence, true_emotion, occlusion) per row."""
    from vlmlab.rating.bias import human_frame

    frame = human_frame([r for r in ratings if r.image_id in faces])
    frame["true_valence"] = [float(faces[i]["valence"]) for i in frame["image"]]
    frame["true_emotion"] = [faces[i]["emotion"] for i in frame["image"]]
    frame["occlusion"] = [faces[i].get("occlusion", "none") for i in frame["image"]]
    frame["face_group"] = [faces[i]["group"] for i in frame["image"]]
    return frame


def _valence_offset(effect: dict[str, Any], faces: dict[str, dict[str, str]], ratings: list[Any], rater_sd: float | None) -> list[dict[str, Any]]:
    """Group effect on valence from `valence ~ group + true valence + (1|image) + (1|rater)`.

    The planted offset applies to one group only, so the effect against the reference group (A)
    is the planted delta. The mixed model's CI accounts for faces and raters being sampled (a
    bootstrap over single ratings covered the truth ~78% of the time).
    """
    from vlmlab.rating.mixed import linear_mixed

    frame = _human_frame(faces, ratings)
    # Ratings are clipped to 1-9: near the ends a shift of -0.5 shows up smaller (about -0.47 over
    # all faces, CI coverage 89% in 60 simulated worlds). Faces with a true valence in the middle of
    # the scale keep the planted shift whole.
    frame = frame[(frame["true_valence"] >= MID_SCALE[0]) & (frame["true_valence"] <= MID_SCALE[1])]
    fit = linear_mixed(frame, "valence", ["face_group", "true_valence"], random=["image", "rater"])
    term = next(e for e in fit["fixed_effects"] if e["term"].startswith(f"face_group[{effect['group']} vs"))
    rows = [{"effect": f"group {effect['group']} valence offset", "planted": effect["delta"], "recovered": term["estimate"],
             "low": term["low"], "high": term["high"], "warnings": fit["warnings"], "n_obs": fit["n_obs"], "n_groups": fit["n_groups"],
             "how": f"linear mixed model {fit['formula'].replace('face_group', 'group')}, term {term['term'].replace('face_group', 'group')}, "
                    f"faces with true valence {MID_SCALE[0]:g}-{MID_SCALE[1]:g} (away from the 1-9 clipping), Wald 95% CI"}]
    if rater_sd is not None:
        rows.append({"effect": "human rater bias SD (valence)", "planted": rater_sd, "recovered": fit["sd_components"]["rater"], "low": None, "high": None,
                     "how": "SD of the rater random intercept in the same mixed model"})
    return rows


def _neutral_angry(effect: dict[str, Any], faces: dict[str, dict[str, str]], ratings: list[Any], seed: int) -> dict[str, Any]:
    """P(a rater says angry | the face is neutral), group B minus group A, from an image-clustered GEE."""
    from vlmlab.rating.mixed import binary_gee

    frame = _human_frame(faces, ratings).dropna(subset=["emotion"])
    frame = frame[frame["true_emotion"] == effect["true_emotion"]].assign(labelled=lambda d: (d["emotion"] == effect["rated_emotion"]).astype(int))
    row = {"effect": f"group {effect['group']} {effect['true_emotion']} faces labelled {effect['rated_emotion']}",
           "planted": effect["delta_pp"] / 100.0, "recovered": None, "low": None, "high": None,
           "how": f"GEE (linear probability, clustered by face, occlusion as a covariate): P({effect['rated_emotion']} | true "
                  f"{effect['true_emotion']}), group {effect['group']} minus group A"}
    if frame["face_group"].nunique() < 2 or frame["labelled"].nunique() < 2:
        return row
    fit = binary_gee(frame, "labelled", ["face_group", "occlusion"], cluster="image")
    term = next((e for e in fit["risk_difference"] if e["term"].startswith(f"face_group[{effect['group']} vs")), None)
    if term is not None:
        row.update(recovered=term["estimate"], low=term["low"], high=term["high"], warnings=fit["warnings"], n_obs=fit["n_obs"], n_groups=fit["n_groups"])
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
    for e in effects:
        for warning in e.get("warnings", []):
            report.text(f"Warning ({e['effect']}): {warning}")
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
        "failure_rate": c.get("failure_rate"),
        "emotion_accuracy": (c.get("emotion") or {}).get("accuracy", {}).get("value"),
        "kappa": (c.get("emotion") or {}).get("kappa", {}).get("value"),
        "valence_r": (c.get("valence") or {}).get("pearson", {}).get("value"),
        "arousal_r": (c.get("arousal") or {}).get("pearson", {}).get("value"),
        "effects": effects,
    }
