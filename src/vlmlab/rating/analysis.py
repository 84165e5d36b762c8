"""Analysis of rating runs: agreement with humans, collapse, dark knowledge, bias, representations.

Per condition: Cohen's kappa and the confusion matrix for emotion, per-class accuracy, Pearson /
Spearman r and MAE for valence and arousal against the human mean, within-category SD and number of
distinct values ("dimensional collapse"), entropy of the 1–9 distribution from logprobs ("dark
knowledge"), false-positive rate per category by group, and CKA/RSA of hidden states against the
human ratings. Across conditions: agreement between repeats and the repeat noise SD, the effect of
temperature on SD, and text-only vs image ratings. Every estimate carries a seeded bootstrap CI.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from vlmlab.errors import DataError
from vlmlab.metrics import agreement as ag
from vlmlab.metrics import representation as rep
from vlmlab.rating.capture import load_npz
from vlmlab.report import Report, Table, write_report
from vlmlab.report.plots import confusion_matrix_plot, line_chart, scatter_plot
from vlmlab.runs import atomic_write_json, read_ledger, read_run_info

DIMENSIONS = ("valence", "arousal")


@dataclass
class ConditionRun:
    folder: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def label(self) -> str:
        c = self.config
        return f"{c['model']['name']}/{c['variant']['name']}/{c['mode']}/t{c['temperature']:g}/r{c['repeat']}"

    @property
    def family(self) -> tuple[str, str, str]:
        """(model, variant, mode): conditions that differ only in temperature/repeat."""
        c = self.config
        return (c["model"]["name"], c["variant"]["name"], c["mode"])


def load_condition(folder: Path) -> ConditionRun:
    folder = Path(folder)
    config_path = folder / "config.yaml"
    if not config_path.exists():
        raise DataError(f"{folder}: not a rating run folder (no config.yaml)")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    if not isinstance(config, dict) or config.get("stage") != "rating.condition":
        raise DataError(f"{folder}: not a rating condition run (stage {config.get('stage') if isinstance(config, dict) else None!r})")
    records = read_ledger(folder / "ledger.jsonl")
    if not records:
        raise DataError(f"{folder}: no rated items yet; run `vlmlab rating run` first")
    return ConditionRun(folder, config, records)


def _est(value: ag.Estimate) -> dict[str, float | None]:
    return value.to_dict()


def _fmt(e: dict[str, float | None] | None) -> str:
    if not e or e.get("value") is None:
        return "–"
    low, high = e.get("low"), e.get("high")
    if low is None or high is None:
        return f"{e['value']:.3f}"
    return f"{e['value']:.3f} [{low:.3f}, {high:.3f}]"


def analyze_condition(run: ConditionRun, emotions: Sequence[str], seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """All per-condition statistics as a JSON-able dict."""
    recs = run.records
    status = defaultdict(int)
    for r in recs:
        status[r["status"]] += 1
    out: dict[str, Any] = {"label": run.label, "n": len(recs), "status": dict(status)}
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
            "accuracy": _est(ag.estimate(ag.accuracy, human, model, seed=seed, n_boot=n_boot)),
            "kappa": _est(ag.estimate(ag.cohen_kappa, human, model, seed=seed, n_boot=n_boot, labels=list(emotions))),
            "confusion": ag.confusion_matrix(human, model, labels=list(emotions)).tolist(),
            "labels": list(emotions),
            "per_class_accuracy": {k: (None if math.isnan(v) else v) for k, v in ag.per_class_accuracy(human, model, labels=list(emotions)).items()},
        }
        groups = [r.get("group") for r in labelled]
        if any(g is not None for g in groups):
            fpr = ag.false_positive_rates(human, model, np.array([str(g) for g in groups]), labels=list(emotions), seed=seed, n_boot=n_boot)
            out["emotion"]["fpr"] = {
                "all": {c: _est(e) for c, e in fpr["all"].items()},
                "by_group": {g: {c: _est(e) for c, e in cats.items()} for g, cats in fpr.get("by_group", {}).items()},
            }
            out["emotion"]["misclassification_by_group"] = _misclassification_by_group(human, model, np.array([str(g) for g in groups]), seed, n_boot)
            out["emotion"]["confusion_by_group"] = {
                g: ag.confusion_matrix(human[np.array(groups) == g], model[np.array(groups) == g], labels=list(emotions)).tolist()
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
            "pearson": _est(ag.estimate(ag.pearson_r, human, model, seed=seed, n_boot=n_boot)),
            "spearman": _est(ag.estimate(ag.spearman_r, human, model, seed=seed, n_boot=n_boot)),
            "mae": _est(ag.estimate(ag.mae, human, model, seed=seed, n_boot=n_boot)),
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
                "mean_entropy_bits": _est(ag.estimate(np.mean, entropies, seed=seed, n_boot=n_boot)),
                "mean_digit_mass": float(np.mean([d["mass"] for d in dists])),
                "expected_rating_sd": float(np.mean([_dist_sd(d["probs"]) for d in dists])),
            }
        out[dim] = block
    hidden = _hidden_analysis(run, seed)
    if hidden:
        out["representation"] = hidden
    return out


def _misclassification_by_group(human: np.ndarray, model: np.ndarray, groups: np.ndarray, seed: int, n_boot: int) -> list[dict[str, Any]]:
    """P(model says d | human says c, group g) for every off-diagonal cell that occurs in any group.

    This is the bias reviewers ask about ("neutral faces called angry, by group"), with CIs.
    """
    cells = sorted({(c, d) for c, d in zip(human.tolist(), model.tolist()) if c != d})
    out = []
    for c, d in cells:
        entry: dict[str, Any] = {"human": c, "model": d, "by_group": {}}
        for g in sorted(set(groups.tolist())):
            mask = (human == c) & (groups == g)
            if mask.any():
                hits = (model[mask] == d).astype(float)
                entry["by_group"][g] = {**_est(ag.estimate(np.mean, hits, seed=seed, n_boot=n_boot)), "n": int(mask.sum())}
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
            a, b = reps[0], reps[1]
            entry: dict[str, Any] = {"family": "/".join(family), "temperature": temp, "repeats": len(reps)}
            ea, eb = _by_image(a, "emotion"), _by_image(b, "emotion")
            common = sorted(set(ea) & set(eb))
            if common:
                x, y = np.array([ea[i] for i in common]), np.array([eb[i] for i in common])
                entry["emotion_agreement"] = _est(ag.estimate(ag.accuracy, x, y, seed=seed, n_boot=n_boot))
            for dim in DIMENSIONS:
                va, vb = _by_image(a, dim), _by_image(b, dim)
                common = sorted(set(va) & set(vb))
                if len(common) >= 3:
                    x, y = np.array([va[i] for i in common], float), np.array([vb[i] for i in common], float)
                    entry[f"{dim}_exact_agreement"] = float(np.mean(x == y))
                    # SD of one repeat's noise: var(a - b) = 2 var(noise) for independent repeats.
                    entry[f"{dim}_repeat_noise_sd"] = _est(ag.estimate(lambda p, q: float(np.std(p - q, ddof=1) / math.sqrt(2)), x, y, seed=seed, n_boot=n_boot))
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
                        entry[dim] = _est(ag.estimate(ag.pearson_r, x, y, seed=seed, n_boot=n_boot))
                out["text_only_vs_image"].append(entry)
    return out


def human_rater_noise(ratings_path: Path, images: Path | None) -> dict[str, Any] | None:
    """Pooled within-image SD of the human raters per dimension (the raters' own noise level)."""
    from vlmlab.data.ratings import read_ratings

    if not Path(ratings_path).exists():
        return None
    records = read_ratings(ratings_path, images)
    out: dict[str, Any] = {}
    for dim in DIMENSIONS:
        by_image: dict[str, list[float]] = defaultdict(list)
        for r in records:
            value = getattr(r, dim)
            if value is not None:
                by_image[r.image_id].append(value)
        variances = [np.var(v, ddof=1) for v in by_image.values() if len(v) > 1]
        if variances:
            out[dim] = {"pooled_sd": float(np.sqrt(np.mean(variances))), "images": len(variances), "raters_per_image": float(np.mean([len(v) for v in by_image.values()]))}
    return out or None


def analyze_runs(folders: Sequence[Path], out_dir: Path, *, seed: int = 0, n_boot: int = 1000) -> dict[str, Path]:
    """Analyse condition runs and write `analysis.json`, `report.md`/`.html` and plots into `out_dir`."""
    if not folders:
        raise DataError("no rating condition runs to analyse; pass condition folders or a study folder")
    runs = [load_condition(f) for f in folders]
    emotions = runs[0].config["emotions"]
    per_condition = {run.label: analyze_condition(run, emotions, seed=seed, n_boot=n_boot) for run in runs}
    cross = cross_condition(runs, seed=seed, n_boot=n_boot)
    data_cfg = runs[0].config["data"]
    human = human_rater_noise(Path(data_cfg["ratings"]), Path(data_cfg["images"]) if data_cfg.get("images") else None)
    result = {"conditions": per_condition, "cross": cross, "human_rater_noise": human, "seed": seed, "n_boot": n_boot}
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / "analysis.json", result)
    paths = write_report(build_report(runs, per_condition, cross, human), out_dir)
    return {"json": out_dir / "analysis.json", **paths}


def build_report(runs: Sequence[ConditionRun], per: dict[str, Any], cross: dict[str, Any], human: dict[str, Any] | None) -> Report:
    report = Report("Rating study: do VLMs rate facial expressions like humans?")
    report.text("Estimates are followed by 95% bootstrap confidence intervals in brackets (seeded).")
    rows = []
    for label, s in per.items():
        emo = s.get("emotion", {})
        rows.append([label, s["n"], s["parse_failure_rate"], _fmt(emo.get("accuracy")), _fmt(emo.get("kappa")),
                     _fmt(s.get("valence", {}).get("pearson")), _fmt(s.get("valence", {}).get("mae")),
                     _fmt(s.get("arousal", {}).get("pearson")), _fmt(s.get("arousal", {}).get("mae"))])
    report.heading("Agreement with humans")
    report.table(Table(["condition", "n", "parse failures", "emotion acc", "kappa", "valence r", "valence MAE", "arousal r", "arousal MAE"], rows))
    rows = []
    for label, s in per.items():
        for dim in DIMENSIONS:
            if dim in s:
                b = s[dim]
                dk = b.get("dark_knowledge", {})
                missing = f"– (logprobs {s['logprobs']})" if s.get("logprobs") else None
                rows.append([label, dim, b["sd_model"], b["sd_human_means"], b["mean_within_category_sd_model"], b["mean_distinct_values_model"],
                             missing or _fmt(dk.get("mean_entropy_bits")), missing or dk.get("expected_rating_sd")])
    if rows:
        report.heading("Dimensional collapse and dark knowledge")
        report.text("Within-category SD and distinct values show whether the model collapses ratings to one value per category; "
                    "the entropy of its 1–9 distribution (from logprobs) shows spread the argmax hides.")
        report.table(Table(["condition", "dimension", "SD model", "SD human means", "within-cat SD", "distinct values", "entropy (bits)", "E[SD] from logprobs"], rows))
    rows = []
    for label, s in per.items():
        for cell in s.get("emotion", {}).get("misclassification_by_group", []):
            for group, e in cell["by_group"].items():
                rows.append([label, f"{cell['human']} → {cell['model']}", group, e["n"], _fmt(e)])
    if rows:
        report.heading("Misclassification by group")
        report.text("P(model label | human label, group): e.g. neutral faces called angry, per group.")
        report.table(Table(["condition", "human → model", "group", "n", "rate"], rows))
    rows = []
    for label, s in per.items():
        for group, cats in s.get("emotion", {}).get("fpr", {}).get("by_group", {}).items():
            for cat, e in cats.items():
                rows.append([label, group, cat, _fmt(e)])
    if rows:
        report.heading("False-positive rate by group")
        report.table(Table(["condition", "group", "called", "FPR"], rows))
    if cross["repeats"]:
        report.heading("Agreement across repeats")
        report.table(Table(["family", "temperature", "repeats", "emotion agreement", "valence exact", "valence noise SD", "arousal noise SD"],
                           [[e["family"], e["temperature"], e["repeats"], _fmt(e.get("emotion_agreement")), e.get("valence_exact_agreement"),
                             _fmt(e.get("valence_repeat_noise_sd")), _fmt(e.get("arousal_repeat_noise_sd"))] for e in cross["repeats"]]))
    if cross["temperature"]:
        report.heading("Temperature and spread")
        report.table(Table(["family", "dimension", "temperature", "SD", "repeats"], [[e["family"], e["dimension"], e["temperature"], e["sd"], e["repeats"]] for e in cross["temperature"]]))
        series: dict[str, dict[float, float]] = defaultdict(dict)
        for e in cross["temperature"]:
            series[f"{e['family']} {e['dimension']}"][e["temperature"]] = e["sd"]
        temps = sorted({e["temperature"] for e in cross["temperature"]})
        if len(temps) > 1:
            report.figure(line_chart(temps, {k: [v.get(t, float("nan")) for t in temps] for k, v in series.items()}, title="rating SD by temperature", xlabel="temperature", ylabel="SD"), "sd_by_temperature")
    if cross["text_only_vs_image"]:
        report.heading("Text-only vs image ratings")
        report.table(Table(["text-only", "image", "valence r", "arousal r"], [[e["text_only"], e["image"], _fmt(e.get("valence")), _fmt(e.get("arousal"))] for e in cross["text_only_vs_image"]]))
    reps = [(label, layer, v) for label, s in per.items() for layer, v in s.get("representation", {}).items()]
    if reps:
        report.heading("Hidden states vs human ratings (CKA, RSA)")
        report.table(Table(["condition", "layer", "linear CKA", "debiased CKA", "RBF CKA", "RSA (Spearman)", "n"], [[l, layer, v["linear_cka"], v["debiased_cka"], v["rbf_cka"], v["rsa_spearman"], v["n"]] for l, layer, v in reps]))
    if human:
        report.heading("Human raters")
        report.table(Table(["dimension", "pooled within-image SD", "images", "raters per image"], [[d, v["pooled_sd"], v["images"], v["raters_per_image"]] for d, v in human.items()]))
    figures = 0
    for run in runs:
        s = per[run.label]
        slug = run.label.replace("/", "_").replace(".", "p")
        if "emotion" in s and figures < 12:
            report.figure(confusion_matrix_plot(np.array(s["emotion"]["confusion"]), s["emotion"]["labels"], title=run.label), f"confusion_{slug}", caption=f"emotion confusion, {run.label}")
            figures += 1
        rows = [r for r in run.records if r.get("valence") is not None and r["human"].get("valence") is not None]
        if len(rows) >= 3 and figures < 12:
            report.figure(scatter_plot([r["human"]["valence"] for r in rows], [r["valence"] for r in rows], title=run.label, xlabel="human valence (mean)", ylabel="model valence"), f"valence_{slug}", caption=f"valence, {run.label}")
            figures += 1
    return report
