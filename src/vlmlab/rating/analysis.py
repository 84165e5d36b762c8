"""Analysis of rating runs: agreement with humans, collapse, dark knowledge, bias, representations.

Per condition: Cohen's kappa and the confusion matrix for emotion, per-class accuracy, Pearson /
Spearman r and MAE for valence and arousal against the human mean, within-category SD and number of
distinct values ("dimensional collapse"), entropy of the 1–9 distribution from logprobs ("dark
knowledge"), false-positive rate per category by group, and CKA/RSA of hidden states against the
human ratings. Across conditions: agreement between repeats and the repeat noise SD, the effect of
temperature on SD, and text-only vs image ratings. Bias by group: mixed models of the human and of
each model's ratings (`vlmlab.rating.bias`), and false-positive-rate differences between groups.

Every CI says how it was made (method and resampling unit, e.g. "95% percentile bootstrap over
images"): a condition has one row per image, so its bootstrap resamples images; rates of counts use
Wilson intervals. Every statistic carries the n it was computed on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vlmlab.errors import DataError
from vlmlab.metrics import agreement as ag
from vlmlab.metrics import label_agreement as la
from vlmlab.metrics import representation as rep
from vlmlab.metrics.inference import bootstrap_ci, proportion_ci
from vlmlab.rating import bias
from vlmlab.rating.capture import load_npz
from vlmlab.rating.analysis_report import build_report, model_rows  # noqa: F401  (model_rows: part of this module's API)
from vlmlab.rating.conditions import ConditionRun, load_condition  # noqa: F401  (ConditionRun: part of this module's API)
from vlmlab.report import write_report
from vlmlab.runs import atomic_write_json, read_run_info

DIMENSIONS = ("valence", "arousal")


def _boot(statistic: Any, *arrays: Any, seed: int, n_boot: int, method: str = "percentile", **kwargs: Any) -> dict[str, Any]:
    """A statistic of one condition's rows (one per image) with a seeded bootstrap CI over images."""
    return bootstrap_ci(statistic, *arrays, unit="images", method=method, resamples=n_boot, seed=seed, **kwargs).to_dict()


def analyze_condition(run: ConditionRun, emotions: Sequence[str], seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """All per-condition statistics as a JSON-able dict."""
    recs = run.records
    status = defaultdict(int)
    for r in recs:
        status[r["status"]] += 1
    out: dict[str, Any] = {"label": run.label, "kind": run.config["model"].get("kind", "hf"), "n": len(recs), "status": dict(status)}
    # Every failure kind counts: empty answers, HTTP/backend errors and unparseable answers.
    out["failure_rate"] = (len(recs) - status.get("ok", 0)) / len(recs)
    out["parse_failure_rate"] = status.get("parse_error", 0) / len(recs)
    logprobs = read_run_info(run.folder).get("logprobs")
    if logprobs not in (None, "captured"):
        out["logprobs"] = logprobs  # e.g. "unavailable (server returned none)": shown in the dark-knowledge columns
    labelled = [r for r in recs if r.get("emotion") and r["human"].get("emotion")]
    if labelled:
        human = np.array([r["human"]["emotion"] for r in labelled])
        model = np.array([r["emotion"] for r in labelled])
        out["emotion"] = {
            "n": len(labelled),
            # A 0/1 proportion over independent images: Wilson, as every rate of the study.
            "accuracy": proportion_ci(int((human == model).sum()), len(labelled), unit="images").to_dict(),
            # estimate() adds why kappa is undefined (one class) to the JSON.
            "kappa": ag.estimate(ag.cohen_kappa, human, model, labels=list(emotions), seed=seed, n_boot=n_boot, unit="images").to_dict(),
            "confusion": la.confusion_matrix(human, model, labels=list(emotions)).tolist(),
            "labels": list(emotions),
            "per_class_accuracy": {k: (None if math.isnan(v) else v) for k, v in la.per_class_accuracy(human, model, labels=list(emotions)).items()},
        }
        groups = [r.get("group") for r in labelled]
        if any(g is not None for g in groups):
            out["emotion"]["fpr"] = bias.fpr_by_group(human, model, [str(g) for g in groups], list(emotions))
            out["emotion"]["misclassification_by_group"] = _misclassification_by_group(human, model, np.array([str(g) for g in groups]))
            out["emotion"]["confusion_by_group"] = {
                g: la.confusion_matrix(human[np.array(groups) == g], model[np.array(groups) == g], labels=list(emotions)).tolist()
                for g in sorted({str(x) for x in groups})
            }
    for dim in DIMENSIONS:
        rows = [r for r in recs if r.get(dim) is not None and r["human"].get(dim) is not None]
        if len(rows) < 3:
            continue
        human = np.array([r["human"][dim] for r in rows], float)
        model = np.array([r[dim] for r in rows], float)
        cats = [r["human"].get("emotion") or "?" for r in rows]
        block: dict[str, Any] = {
            "n": len(rows),
            # One row per image: Fisher z for r (coverage tested at n = 30), BCa for Spearman.
            "pearson": ag.estimate(ag.pearson_r, human, model, seed=seed, n_boot=n_boot, unit="images").to_dict(),
            "spearman": ag.estimate(ag.spearman_r, human, model, seed=seed, n_boot=n_boot, unit="images").to_dict(),
            "mae": _boot(ag.mae, human, model, seed=seed, n_boot=n_boot),
            "sd_model": float(np.std(model, ddof=1)),
            "sd_human_means": float(np.std(human, ddof=1)),
            "within_category_model": ag.within_category_spread(model, cats),
            "within_category_human": ag.within_category_spread(human, cats),
        }
        block["mean_within_category_sd_model"] = _nanmean([v["sd"] for v in block["within_category_model"].values()])
        block["mean_distinct_values_model"] = float(np.mean([v["n_distinct"] for v in block["within_category_model"].values()]))
        dists = [r["digit_distribution"][dim] for r in rows if dim in r.get("digit_distribution", {})]
        if dists:
            entropies = np.array([d["entropy_bits"] for d in dists])
            block["dark_knowledge"] = {
                "n": len(dists),
                "mean_entropy_bits": _boot("mean", entropies, seed=seed, n_boot=n_boot),
                "mean_digit_mass": float(np.mean([d["mass"] for d in dists])),
                "expected_rating_sd": float(np.mean([_dist_sd(d["probs"]) for d in dists])),
            }
        out[dim] = block
    hidden = _hidden_analysis(run, seed)
    if hidden:
        out["representation"] = hidden
    return out


def _misclassification_by_group(human: np.ndarray, model: np.ndarray, groups: np.ndarray) -> list[dict[str, Any]]:
    """P(model says d | human says c, group g) for every off-diagonal cell that occurs in any group.

    This is the bias reviewers ask about ("neutral faces called angry, by group"), with Wilson CIs
    (one rating per image: the unit is the image).
    """
    cells = sorted({(c, d) for c, d in zip(human.tolist(), model.tolist()) if c != d})
    out = []
    for c, d in cells:
        entry: dict[str, Any] = {"human": c, "model": d, "by_group": {}}
        for g in sorted(set(groups.tolist())):
            mask = (human == c) & (groups == g)
            if mask.any():
                entry["by_group"][g] = {**proportion_ci(int((model[mask] == d).sum()), int(mask.sum()), unit="images").to_dict(), "n": int(mask.sum())}
        out.append(entry)
    return out


def _nanmean(values: Sequence[float]) -> float | None:
    arr = np.array([v for v in values if v is not None and not math.isnan(v)], float)
    return float(arr.mean()) if arr.size else None


def _dist_sd(probs: Sequence[float]) -> float:
    p = np.asarray(probs, float)
    if p.sum() <= 0:
        return 0.0
    p = p / p.sum()
    x = np.arange(1, 10)
    mean = (p * x).sum()
    return float(np.sqrt((p * (x - mean) ** 2).sum()))


def _hidden_analysis(run: ConditionRun, seed: int) -> dict[str, Any] | None:
    rows = [r for r in run.records if r.get("hidden_file") and r["human"].get("valence") is not None and r["human"].get("arousal") is not None]
    if len(rows) < 4:
        return None
    per_layer: dict[str, list[np.ndarray]] = defaultdict(list)
    for r in rows:
        for key, value in load_npz(run.folder / r["hidden_file"]).items():
            per_layer[key].append(value)
    human = np.array([[r["human"]["valence"], r["human"]["arousal"]] for r in rows], float)
    out = {}
    for layer, vectors in sorted(per_layer.items()):
        X = np.stack(vectors)
        out[layer] = {
            "linear_cka": rep.linear_cka(X, human),
            "debiased_cka": rep.linear_cka(X, human, debiased=True),
            "rbf_cka": rep.rbf_cka(X, human),
            "rsa_spearman": rep.rsa(X, human, metric="correlation", metric_y="euclidean"),
            "n": len(rows),
        }
    return out


def _by_image(run: ConditionRun, key: str) -> dict[str, Any]:
    return {r["image_id"]: r.get(key) for r in run.records if r.get(key) is not None}


def cross_condition(runs: Sequence[ConditionRun], seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """Repeats, temperature and text-only comparisons between conditions."""
    out: dict[str, Any] = {"repeats": [], "temperature": [], "text_only_vs_image": []}
    families: dict[tuple, list[ConditionRun]] = defaultdict(list)
    for run in runs:
        families[run.family].append(run)
    for family, members in sorted(families.items()):
        by_temp: dict[float, list[ConditionRun]] = defaultdict(list)
        for m in members:
            by_temp[float(m.config["temperature"])].append(m)
        for temp, reps in sorted(by_temp.items()):
            reps = sorted(reps, key=lambda m: m.config["repeat"])
            for dim in DIMENSIONS:
                pooled = [v for m in reps for v in _by_image(m, dim).values()]
                if len(pooled) >= 2:
                    out["temperature"].append({"family": "/".join(family), "temperature": temp, "dimension": dim, "sd": float(np.std(pooled, ddof=1)), "repeats": len(reps)})
            if len(reps) < 2:
                continue
            entry: dict[str, Any] = {"family": "/".join(family), "temperature": temp, "repeats": len(reps)}
            labels = {i: v for i, v in bias.values_by_image(reps, "emotion").items() if len(v) == len(reps)}
            if labels:
                same = np.array([float(len(set(v)) == 1) for v in labels.values()])
                entry["emotion_agreement"] = {**proportion_ci(int(same.sum()), len(same), unit="images").to_dict(), "definition": "share of images labelled alike in every repeat"}
            for dim in DIMENSIONS:
                values = {i: v for i, v in bias.values_by_image(reps, dim).items() if len(v) > 1}
                if len(values) >= 3:
                    entry[f"{dim}_exact_agreement"] = float(np.mean([len(set(v)) == 1 for v in values.values()]))
                    # SD of one repeat's noise: within-image variance pooled over all repeats and images.
                    entry[f"{dim}_repeat_noise_sd"] = bias.pooled_repeat_sd(values, seed=seed, n_boot=n_boot)
            out["repeats"].append(entry)
    image_modes = {"context-carry", "single-shot"}
    for run in runs:
        c = run.config
        if c["mode"] != "text-only":
            continue
        for other in runs:
            o = other.config
            if o["mode"] in image_modes and (o["model"]["name"], o["variant"]["name"], o["temperature"], o["repeat"]) == (c["model"]["name"], c["variant"]["name"], c["temperature"], c["repeat"]):
                entry = {"text_only": run.label, "image": other.label}
                for dim in DIMENSIONS:
                    t, i = _by_image(run, dim), _by_image(other, dim)
                    common = sorted(set(t) & set(i))
                    if len(common) >= 3:
                        x, y = np.array([t[k] for k in common], float), np.array([i[k] for k in common], float)
                        entry[dim] = ag.estimate(ag.pearson_r, x, y, seed=seed, n_boot=n_boot, unit="images").to_dict()
                out["text_only_vs_image"].append(entry)
    return out


def human_rater_noise(ratings_path: Path, images: Path | None, format: str = "ratings", *, seed: int = 0,
                      n_boot: int = 1000) -> dict[str, Any] | None:
    """Pooled within-image SD of the human raters per dimension (the raters' own noise level).

    Pooled as the repeat noise of a model is (`bias.pooled_repeat_sd`): within-image sums of squares
    over their degrees of freedom, so an image with 6 raters weighs more than one with 2 — the
    residual SD of `rating ~ C(image)` by least squares. (A plain mean of per-image variances gives
    every image the same weight and differs when raters per image vary.) CI over images.
    """
    from vlmlab.data.expressions import read_face_ratings

    if not Path(ratings_path).exists():
        return None
    records = read_face_ratings(ratings_path, images, format)
    out: dict[str, Any] = {}
    for dim in DIMENSIONS:
        by_image: dict[str, list[float]] = defaultdict(list)
        for r in records:
            value = getattr(r, dim)
            if value is not None:
                by_image[r.image_id].append(value)
        pooled = bias.pooled_repeat_sd(by_image, seed=seed, n_boot=n_boot)
        if pooled is not None:
            per_image = pooled.pop("repeats_per_image")
            out[dim] = {"pooled_sd": pooled["value"], **pooled, "images": pooled["n_units"], "raters_per_image": per_image}
    return out or None


def bias_models(runs: Sequence[ConditionRun], factors: Sequence[str] | None, *, seed: int = 0, n_boot: int = 1000,
                stimuli: Path | None = None) -> dict[str, Any]:
    """Mixed models of the human ratings and of each model family's ratings, and humans vs humans.

    `factors` are columns of the human ratings file or of the `stimuli` table (per-image
    attributes, `vlmlab.rating.stimuli`; default: the study's group column); a name that is not a
    column raises a one-line DataError.
    """
    from vlmlab.data.expressions import read_face_ratings
    from vlmlab.rating.stimuli import INTENDED_EMOTION, join_stimuli, read_stimuli

    data_cfg = runs[0].config["data"]
    path = Path(data_cfg["ratings"])
    if not path.exists():
        return {"warnings": [f"{path}: human ratings not found; mixed models of the human ratings skipped"]}
    frame = bias.human_frame(read_face_ratings(path, Path(data_cfg["images"]) if data_cfg.get("images") else None, data_cfg.get("format", "ratings")))
    everyone, notes = frame, []
    if stimuli is not None:  # before any fit: a table of another data set fails at once
        frame, left_out = join_stimuli(frame, read_stimuli(stimuli), stimuli)
        if left_out:
            notes.append(f"{stimuli}: {left_out} rated images have no row; the mixed models and GEEs leave them out")
    group_col = data_cfg.get("group_column")
    chosen = list(factors) if factors is not None else ([group_col] if group_col and group_col in frame.columns else [])
    out: dict[str, Any] = {"factors": chosen, "human": bias.human_models(frame, chosen), "models": {}, "warnings": notes,
                           "human_agreement": bias.human_agreement(everyone, seed=seed, n_boot=n_boot)}  # every rated face
    if stimuli is not None:
        out["stimuli"] = {"path": str(stimuli), "images": int(frame["image"].nunique()), "rated_images_left_out": left_out}
    per_image = frame.drop_duplicates("image").set_index("image")
    image_columns = [f for f in chosen if f != "group"] + ([INTENDED_EMOTION] if INTENDED_EMOTION in per_image.columns else [])
    families: dict[tuple, list[ConditionRun]] = defaultdict(list)
    for run in runs:
        families[run.family].append(run)
    for family, members in sorted(families.items()):
        # With a stimuli table every model frame keeps only the faces it lists (an inner join).
        extra = per_image[list(dict.fromkeys(image_columns))] if image_columns or stimuli is not None else None
        out["models"]["/".join(family)] = bias.rater_models(members, chosen, image_factors=extra)
    return out


def analyze_runs(folders: Sequence[Path], out_dir: Path, *, seed: int = 0, n_boot: int = 1000, factors: Sequence[str] | None = None,
                 stimuli: Path | None = None) -> dict[str, Path]:
    """Analyse condition runs and write `analysis.json`, `report.md`/`.html` and plots into `out_dir`.

    `factors`: fixed factors of the mixed models (columns of the human ratings or of `stimuli`;
    default the group column). `stimuli`: a table of per-image attributes (e.g. the toy world's
    `stimuli.csv`); its intended emotion, if any, is what "labelled correctly" means.
    """
    if not folders:
        raise DataError("no rating condition runs to analyse; pass condition folders or a study folder")
    runs = [load_condition(f) for f in folders]
    emotions = runs[0].config["emotions"]
    models = bias_models(runs, factors, seed=seed, n_boot=n_boot, stimuli=stimuli)  # first: a bad factor fails before any work
    per_condition = {run.label: analyze_condition(run, emotions, seed=seed, n_boot=n_boot) for run in runs}
    cross = cross_condition(runs, seed=seed, n_boot=n_boot)
    data_cfg = runs[0].config["data"]
    human = human_rater_noise(Path(data_cfg["ratings"]), Path(data_cfg["images"]) if data_cfg.get("images") else None, data_cfg.get("format", "ratings"),
                              seed=seed, n_boot=n_boot)
    result = {"conditions": per_condition, "cross": cross, "human_rater_noise": human, "mixed_models": models, "seed": seed, "n_boot": n_boot}
    out_dir = Path(out_dir)
    report = build_report(runs, per_condition, cross, human)
    from vlmlab.rating.bias_report import add_bias_sections

    add_bias_sections(report, per_condition, models)
    atomic_write_json(out_dir / "analysis.json", result)
    paths = write_report(report, out_dir)
    return {**paths, "report_json": paths["json"], "json": out_dir / "analysis.json"}
