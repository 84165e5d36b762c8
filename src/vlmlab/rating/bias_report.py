"""Report sections of the rating study's bias analysis: raters compared, FPR differences, mixed models.

Kept apart from `analysis.build_report` so each file stays one idea: this one turns the dicts of
`vlmlab.rating.bias` into tables, with every CI's method and unit and every model's n and warnings.
"""

from __future__ import annotations

from typing import Any

from vlmlab.report import Report, Table


def _ci(e: dict[str, Any] | None, key: str = "value") -> str:
    if not e or e.get(key) is None:
        return "–"
    if e.get("low") is None or e.get("high") is None:
        return f"{e[key]:.3f}"
    return f"{e[key]:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def _focus_difference(fpr: dict[str, Any], category: str = "angry") -> str:
    diffs = [d for d in fpr.get("differences", []) if d["category"] == category]
    return "; ".join(f"{d['group']}−{d['reference']} {_ci(d, 'estimate')} p={d['p']:.3g}" for d in diffs) or "–"


def comparison_rows(per: dict[str, Any], models: dict[str, Any]) -> list[list[Any]]:
    """One row per rater: every VLM condition, every classifier baseline, and the human raters."""
    rows = []
    for label, s in per.items():
        emo = s.get("emotion", {})
        kind = "baseline (classifier)" if s.get("kind") == "classifier" else "VLM"
        rows.append([label, kind, emo.get("n", 0), _ci(emo.get("accuracy")), _ci(emo.get("kappa")), _ci(s.get("valence", {}).get("pearson")),
                     _ci(s.get("arousal", {}).get("pearson")), _focus_difference(emo.get("fpr", {}))])
    human = models.get("human_agreement") or {}
    if human:
        emo = human.get("emotion", {})
        rows.append(["human raters (each vs the others)", "human", emo.get("n", 0), _ci(emo.get("accuracy")), _ci(emo.get("kappa")),
                     _ci(human.get("valence", {}).get("pearson")), _ci(human.get("arousal", {}).get("pearson")), "see mixed models"])
    return rows


def _fixed_rows(name: str, fit: dict[str, Any], key: str = "fixed_effects") -> list[list[Any]]:
    if "error" in fit:
        return [[name, "–", fit["error"], "", "", ""]]
    n = f"{fit['n_obs']} obs; " + ", ".join(f"{k} {v}" for k, v in fit["n_groups"].items())
    return [[name, e["term"], "–" if e["estimate"] is None else f"{e['estimate']:.3f}",
             "–" if e["low"] is None or e["high"] is None else f"[{e['low']:.3f}, {e['high']:.3f}]", "–" if e["p"] is None else f"{e['p']:.3g}", n]
            for e in fit.get(key, []) if e["term"] != "Intercept"]


def add_bias_sections(report: Report, per: dict[str, Any], models: dict[str, Any]) -> None:
    """Append the rater comparison, FPR differences and mixed-model tables (with their warnings)."""
    report.heading("VLMs, classifier baselines and human raters")
    report.text("Agreement with the human consensus (humans: each rating against the majority / mean of the other raters of "
                "the same image). Last column: P(called angry | not angry) of each group minus the reference group.")
    report.table(Table(["rater", "kind", "n", "emotion acc", "kappa", "valence r", "arousal r", "FPR(angry) difference [95% CI]"],
                       comparison_rows(per, models)))
    rows = [[label, d["category"], f"{d['group']} − {d['reference']}", f"{d['k']}/{d['n']} vs {d['k_reference']}/{d['n_reference']}",
             _ci(d, "estimate"), f"{d['p']:.3g}"]
            for label, s in per.items() for d in s.get("emotion", {}).get("fpr", {}).get("differences", [])]
    if rows:
        report.heading("False-positive-rate differences between groups")
        report.text("Difference of proportions with Newcomb 95% CIs and Agresti–Caffo tests (statsmodels), one rating per image.")
        report.table(Table(["condition", "called", "groups", "counts", "difference [95% CI]", "p"], rows))
    warnings: list[str] = list(models.get("warnings", []))
    sections = [("human raters", models.get("human", {}))] + [(f"model {k}", v) for k, v in models.get("models", {}).items()]
    fixed, components, binary = [], [], []
    for who, fits in sections:
        for outcome, fit in fits.items():
            if not isinstance(fit, dict):
                continue
            name = f"{who}: {outcome}"
            warnings += [f"{name}: {w}" for w in fit.get("warnings", [])]
            if outcome.startswith("labelled_"):
                binary += _fixed_rows(f"{name} ({fit.get('among', '')})", fit, "risk_difference")
                binary += [[f"{name}, two-way clustered (image, rater)", e["term"], f"{e['estimate']:.3f}",
                            f"[{e['two_way']['low']:.3f}, {e['two_way']['high']:.3f}]", f"{e['two_way']['p']:.3g}", ""]
                           for e in fit.get("risk_difference", []) if e["term"] != "Intercept" and e.get("two_way")]
                binary += [[f"{name}, odds ratio", e["term"], "–" if e["odds_ratio"] is None else f"{e['odds_ratio']:.3f}",
                            "not estimable" if e["odds_ratio"] is None else f"[{e['odds_ratio_low']:.3f}, {e['odds_ratio_high']:.3f}]",
                            "–" if e["p"] is None else f"{e['p']:.3g}", ""] for e in fit.get("logistic", []) if e["term"] != "Intercept"]
            else:
                fixed += _fixed_rows(name, fit)
                if "variance_components" in fit:
                    components.append([name, fit["formula"], ", ".join(f"{k} {v:.3f}" for k, v in fit["sd_components"].items()),
                                       fit["n_obs"], ", ".join(f"{k} {v}" for k, v in fit["n_groups"].items()), "yes" if fit["converged"] else "NO"])
    if not (fixed or binary):
        return
    report.heading("Mixed models of bias")
    factors = ", ".join(models.get("factors", [])) or "none"
    report.text(f"Linear mixed models (REML) with crossed random intercepts for image and rater (human ratings) or image (a model's "
                f"repeats); fixed factors: {factors}. Wald 95% CIs. \"Labelled angry\" among neutral faces and \"labelled correctly\": GEEs clustered by image, "
                "as risk differences (linear probability, robust SE) and odds ratios (logistic, exchangeable); for human raters also with "
                "a two-way (image and rater) cluster-robust CI, since raters are crossed with images. \"Neutral\" and \"correctly\" "
                "refer to the intended emotion when a stimuli table is given, else to the other raters' majority (a rating never "
                "votes on its own reference) or, for a model, to the human consensus.")
    if fixed:
        report.table(Table(["outcome", "term", "estimate", "95% CI", "p", "n"], fixed))
    if components:
        report.table(Table(["outcome", "model", "SD components", "observations", "groups", "converged"], components))
    if binary:
        report.table(Table(["outcome", "term", "estimate", "95% CI", "p", "n"], binary))
    if warnings:
        report.heading("Warnings")
        for w in warnings:
            report.text(f"Warning: {w}")
