"""Caption reports: metrics on their own axes, n and a bootstrap CI for CIDEr, ties not bold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.stats import bootstrap

from vlmlab.caption.scoring import mean_metric_cis, score_predictions
from vlmlab.metrics.caption import score_captions
from vlmlab.report.plots import panel_figure

REPO = Path(__file__).resolve().parents[2]


def _example() -> tuple[dict[str, str], dict[str, list[str]]]:
    preds = {r["id"]: r["prediction"] for r in map(json.loads, (REPO / "examples/caption_preds.jsonl").read_text().splitlines())}
    refs = {r["id"]: r["references"] for r in map(json.loads, (REPO / "examples/caption_refs.jsonl").read_text().splitlines())}
    return preds, refs


def test_cider_ci_is_scipys_percentile_bootstrap_of_per_item_scores() -> None:
    preds, refs = _example()
    scores = score_captions(preds, refs, mode="per-row", metrics=["CIDEr", "ROUGE-L", "BLEU"])
    cis = mean_metric_cis(scores)
    items = np.asarray(scores.per_item["CIDEr"], dtype=np.float64)
    assert np.isclose(items.mean(), scores.scores["CIDEr"])          # CIDEr-D is the mean of per-item scores
    ref = bootstrap((items,), np.mean, n_resamples=1000, method="percentile", random_state=np.random.default_rng(0))
    ci = cis["CIDEr_ci"]  # an interval that says how it was made (was a bare [low, high])
    assert [ci["low"], ci["high"]] == [ref.confidence_interval.low, ref.confidence_interval.high]
    assert ci["low"] <= scores.scores["CIDEr"] <= ci["high"] and ci["estimate"] == scores.scores["CIDEr"]
    assert (ci["method"], ci["unit"], ci["n_units"], ci["resamples"]) == ("percentile", "reference rows", 6, 1000)
    assert ci["ci"] == "95% percentile bootstrap over reference rows (n=6, B=1000)"
    assert "ROUGE-L_ci" in cis and "BLEU-4_ci" not in cis           # BLEU is a corpus statistic: no per-item CI


def test_metrics_json_carries_n_and_ci() -> None:
    preds, refs = _example()
    rows = [{"id": i, "prediction": preds[i], "references": refs[i], "status": "ok"} for i in preds]
    out = score_predictions(rows, headline="grouped", metrics=["CIDEr"])
    assert out["modes"]["grouped"]["n"] == 3 and out["modes"]["per-row"]["n"] == 6
    grouped = out["modes"]["grouped"]["CIDEr_ci"]
    assert grouped["low"] <= grouped["estimate"] <= grouped["high"] and (grouped["unit"], grouped["n_units"]) == ("items", 3)


def test_each_metric_gets_its_own_axis() -> None:
    fig = panel_figure(["zero-shot", "fine-tuned"], {"BLEU-4": [0.01, 0.2], "CIDEr": [0.04, 2.7]})
    axes = fig.get_axes()
    assert [a.get_title() for a in axes] == ["BLEU-4", "CIDEr"]
    assert axes[0].get_ylim()[1] < 0.5 and axes[1].get_ylim()[1] > 2.5   # BLEU stays visible next to CIDEr


def test_report_tables_show_n_and_the_rouge_ci_and_say_why_bleu_has_none(tmp_path: Path) -> None:
    from vlmlab.caption.report import build_report

    preds, refs = _example()
    rows = [{"id": i, "prediction": preds[i], "references": refs[i], "status": "ok"} for i in preds]
    metrics = score_predictions(rows, headline="per-row", metrics=["CIDEr", "ROUGE-L", "BLEU"])
    run = tmp_path / "study" / "m_img56_tok32"
    (run / "score").mkdir(parents=True)
    (run / "model.json").write_text(json.dumps({"model": "m", "status": "complete"}))
    (run / "score" / "metrics.json").write_text(json.dumps(metrics))
    build_report(tmp_path / "study")
    md = (tmp_path / "study" / "report.md").read_text()
    rouge = metrics["modes"]["per-row"]["ROUGE-L_ci"]
    assert f"[{rouge['low']:.3f}, {rouge['high']:.3f}]" in md and "ROUGE-L 95% CI" in md
    assert "BLEU and METEOR are corpus statistics" in md and "no CI: BLEU is a corpus statistic" in md
    header = (tmp_path / "study" / "main_metrics.csv").read_text().splitlines()[0].split(",")
    assert header[-3:] == ["n", "CIDEr 95% CI", "ROUGE-L 95% CI"]
    assert (tmp_path / "study" / "bleu.csv").read_text().splitlines()[1].split(",")[-1] == "6"  # n, per-row items


def test_report_reads_runs_scored_before_cis_named_their_method(tmp_path: Path) -> None:
    """Older metrics.json files hold `<metric>_ci` as a bare [low, high]: the report still shows them."""
    from vlmlab.caption.report import build_report

    preds, refs = _example()
    rows = [{"id": i, "prediction": preds[i], "references": refs[i], "status": "ok"} for i in preds]
    metrics = score_predictions(rows, headline="per-row", metrics=["CIDEr", "ROUGE-L", "BLEU"])
    for mode in metrics["modes"].values():
        for key in ("CIDEr_ci", "ROUGE-L_ci"):
            mode[key] = [mode[key]["low"], mode[key]["high"]]
    run = tmp_path / "study" / "m_img56_tok32"
    (run / "score").mkdir(parents=True)
    (run / "model.json").write_text(json.dumps({"model": "m", "status": "complete"}))
    (run / "score" / "metrics.json").write_text(json.dumps(metrics))
    build_report(tmp_path / "study")
    low, high = metrics["modes"]["per-row"]["CIDEr_ci"]
    assert f"[{low:.3f}, {high:.3f}]" in (tmp_path / "study" / "report.md").read_text()
