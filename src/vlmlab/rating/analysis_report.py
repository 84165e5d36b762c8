"""The rating analysis report: agreement, collapse and dark knowledge, repeats, temperature, CKA.

`build_report` turns the dicts of `vlmlab.rating.analysis` into tables and figures; the bias
sections (raters compared, FPR differences, mixed models) are `vlmlab.rating.bias_report`'s.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from vlmlab.report import Report, Table
from vlmlab.report.plots import confusion_matrix_plot, line_chart, scatter_plot

if TYPE_CHECKING:
    from vlmlab.rating.conditions import ConditionRun

DIMENSIONS = ("valence", "arousal")


def _fmt(e: dict[str, float | None] | None) -> str:
    if not e or e.get("value") is None:
        return "–"
    low, high = e.get("low"), e.get("high")
    if low is None or high is None:
        return f"{e['value']:.3f}"
    return f"{e['value']:.3f} [{low:.3f}, {high:.3f}]"


def model_rows(runs: Sequence[ConditionRun]) -> list[list[Any]]:
    """One row per model variant: its ref, backend kind and precision (dtype, quantization) as run."""
    from vlmlab.models.spec import ModelBlock

    rows: dict[str, list[Any]] = {}
    for run in runs:
        m = run.config["model"]
        # Runs from before the model block (and classifier baselines) record no precision.
        precision = ModelBlock.model_validate({k: m[k] for k in ModelBlock.model_fields if k in m}).precision() if "dtype" in m else "–"
        rows.setdefault(f"{m['name']}/{run.config['variant']['name']}", [m.get("ref"), m.get("kind"), precision])
    return [[label, *row] for label, row in rows.items()]


def build_report(runs: Sequence[ConditionRun], per: dict[str, Any], cross: dict[str, Any], human: dict[str, Any] | None) -> Report:
    report = Report("Rating study: do VLMs rate facial expressions like humans?")
    report.text("Estimates are followed by 95% confidence intervals in brackets (seeded). Each condition has one rating per image, "
                "so images are the unit: emotion accuracy and every rate by Wilson intervals, Pearson r by Fisher z, Spearman r by "
                "BCa bootstrap over images, kappa and MAE by percentile bootstrap over images; analysis.json names each interval's "
                "method, unit, n and B. Each statistic's n is the number of images it was computed on.")
    report.heading("Models")
    report.table(Table(["model/variant", "ref", "kind", "precision"], model_rows(runs)))
    rows = []
    for label, s in per.items():
        emo = s.get("emotion", {})
        failed = ", ".join(f"{k} {v}" for k, v in sorted(s["status"].items()) if k != "ok") or "none"
        rows.append([label, s["n"], f"{s['failure_rate']:.3f} ({failed})", emo.get("n", 0), _fmt(emo.get("accuracy")), _fmt(emo.get("kappa")),
                     s.get("valence", {}).get("n", 0), _fmt(s.get("valence", {}).get("pearson")), _fmt(s.get("valence", {}).get("mae")),
                     s.get("arousal", {}).get("n", 0), _fmt(s.get("arousal", {}).get("pearson")), _fmt(s.get("arousal", {}).get("mae"))])
    report.heading("Agreement with humans")
    report.table(Table(["condition", "images", "failed (empty, error, parse)", "n emotion", "emotion acc", "kappa", "n valence", "valence r",
                        "valence MAE", "n arousal", "arousal r", "arousal MAE"], rows))
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
        for cat, groups in s.get("emotion", {}).get("fpr", {}).get("rates", {}).items():
            for group, e in groups.items():
                rows.append([label, group, cat, e["n_units"], _fmt(e)])
    if rows:
        report.heading("False-positive rate by group")
        report.text("P(called c | human consensus is not c), Wilson 95% intervals over images.")
        report.table(Table(["condition", "group", "called", "n", "FPR"], rows))
    if cross["repeats"]:
        report.heading("Agreement across repeats")
        report.text("Noise SD: within-image SD pooled over all repeats and images (percentile bootstrap over images); "
                    "emotion agreement: share of images labelled alike in every repeat (Wilson).")
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
        report.text("Pooled within-image SD: within-image sums of squares over their degrees of freedom (the residual SD of "
                    "rating ~ image), percentile bootstrap over images.")
        report.table(Table(["dimension", "pooled within-image SD [95% CI]", "images", "raters per image"],
                           [[d, _fmt(v), v["images"], v["raters_per_image"]] for d, v in human.items()]))
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
