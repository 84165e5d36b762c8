"""The comparison report of a caption study, rebuilt from its run folders by one command.

`vlmlab caption report DIR` (or `build_report(DIR)`) reads every `<model>_img<size>_tok<n>/`
folder under DIR (its `model.json` and `score/metrics.json`) and the `human/` row, and writes the
tables in the shape the panorama-captioning baseline publishes them:

1. main metrics (BLEU-4, METEOR, ROUGE-L, CIDEr, SPICE) in the headline mode, best model per
   column in bold — the human leave-one-out row is shown beside the models but not ranked;
2. the same metrics in the other mode;
3. BLEU-1..4;
4. token statistics: mean predicted vs reference tokens and their ratio, empty-prediction rate;
5. models that failed, with their error.

Outputs in DIR: report.md / report.html / report.json, `main_metrics.csv`, `other_mode.csv`,
`bleu.csv`, `token_stats.csv` and the bar chart `caption_scores.png`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlmlab.errors import RunError
from vlmlab.report import Report, Table, write_report

MAIN = ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE")
BLEU = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")
HUMAN = "human (leave-one-out)"


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise RunError(f"{path}: not valid JSON; re-run the stage that writes it") from None


def collect_rows(study_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]:
    """(scored model rows, failed/unfinished model rows, human metrics or None) under `study_dir`."""
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise RunError(f"{study_dir}: no such folder; pass a caption study folder (runs/caption/<name>)")
    scored, broken = [], []
    folders = sorted(p.parent for p in study_dir.glob("*/model.json"))
    names = [(_read_json(f / "model.json") or {}).get("model", f.name) for f in folders]
    for folder, name in zip(folders, names):
        info = _read_json(folder / "model.json") or {}
        label = name if names.count(name) == 1 else folder.name
        metrics = _read_json(folder / "score" / "metrics.json")
        if info.get("status") in ("complete", "degraded") and metrics is not None:
            scored.append({"label": label, "folder": folder, "info": info, "metrics": metrics})
        else:
            broken.append({"label": label, "folder": folder, "status": info.get("status", "unknown"),
                           "error": info.get("error") or "did not finish; re-run the same command to resume"})
    human = _read_json(study_dir / "human" / "metrics.json")
    if not scored and not broken:
        raise RunError(f"{study_dir}: no model folders (<model>_img<size>_tok<n>/model.json); run `vlmlab caption run` first")
    return scored, broken, human


def _fmt(value: Any, digits: int = 4) -> Any:
    """Human-row cells as text, so that `Table.best` never ranks the human row."""
    return None if value is None else f"{value:.{digits}f}" if isinstance(value, float) else value


CI_SHOWN = ("CIDEr", "ROUGE-L")  # means of per-item scores: `caption.scoring.mean_metric_cis` bootstraps them
NO_CI_NOTE = ("95% CIs: percentile bootstrap over the mode's items (ids grouped, reference rows per-row; B=1000, method and "
              "unit also in metrics.json), for CIDEr and ROUGE-L (means of per-item scores). "
              "BLEU and METEOR are corpus statistics (n-gram counts pooled before the ratio), not item means, "
              "so an item bootstrap of them is not shown")


def _n_and_ci(scores: dict[str, Any], ci_keys: tuple[str, ...] = ("CIDEr",)) -> list[Any]:
    """The n a mode's scores were computed on, and the bootstrap CI of each of `ci_keys` ("–" when
    absent, e.g. runs scored before CIs were recorded)."""
    from vlmlab.caption.scoring import ci_bounds

    cis = [ci_bounds(scores.get(f"{key}_ci")) for key in ci_keys]  # a dict with its method, or the older bare [low, high]
    return [scores.get("n"), *(f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else None for ci in cis)]


def build_report(study_dir: Path, out_dir: Path | None = None) -> dict[str, Path]:
    """Write the comparison report of the study in `study_dir` (into `out_dir`, default the same folder)."""
    from vlmlab.report.plots import panel_bar_chart

    study_dir = Path(study_dir)
    out = Path(out_dir) if out_dir is not None else study_dir
    scored, broken, human = collect_rows(study_dir)
    modes = {r["metrics"]["headline_mode"] for r in scored} | ({human["headline_mode"]} if human else set())
    if len(modes) > 1:
        raise RunError(f"{study_dir}: runs use different headline modes ({', '.join(sorted(modes))}); re-score them with one")
    mode = modes.pop() if modes else "per-row"
    other = "grouped" if mode == "per-row" else "per-row"

    def row(label: str, scores: dict[str, Any], keys: tuple[str, ...], is_human: bool) -> list[Any]:
        cells = [scores.get(k) for k in keys]
        return [label] + ([_fmt(c) for c in cells] if is_human else cells)

    def score_table(which: str, keys: tuple[str, ...], caption: str) -> Table:
        ci_keys = tuple(k for k in CI_SHOWN if k in keys)
        rows = [row(r["label"], r["metrics"]["modes"][which], keys, False) + _n_and_ci(r["metrics"]["modes"][which], ci_keys)
                for r in scored]
        if human is not None:
            rows.append(row(HUMAN, human["modes"][which], keys, True) + _n_and_ci(human["modes"][which], ci_keys))
        note = "; " + NO_CI_NOTE if ci_keys else "; no CI: BLEU is a corpus statistic, not a mean of per-item scores"
        return Table(["model", *keys, "n", *(f"{k} 95% CI" for k in ci_keys)], rows, caption=caption + note,
                     best={k: "max" for k in keys})

    main = score_table(mode, MAIN, f"Main metrics ({mode} references); best model per column in bold; human row not ranked")
    second = score_table(other, MAIN, f"Main metrics ({other} references)")
    bleu = score_table(mode, BLEU, f"BLEU-1..4 ({mode})")
    stat_cols = ["model", "pred tokens", "ref tokens", "ratio", "empty rate", "errors", "status"]
    stat_rows = []
    for r in scored:
        s = r["metrics"]["modes"][mode]
        stat_rows.append([r["label"], s.get("mean_prediction_tokens"), s.get("mean_reference_tokens"), s.get("token_ratio"),
                          s.get("empty_prediction_rate"), s.get("error_predictions", 0), r["metrics"].get("status")])
    if human is not None:
        s = human["modes"][mode]
        stat_rows.append([HUMAN, _fmt(s.get("mean_prediction_tokens"), 3), _fmt(s.get("mean_reference_tokens"), 3),
                          _fmt(s.get("token_ratio"), 3), None, None, "reference"])
    stats = Table(stat_cols, stat_rows, caption="Token statistics (PTB tokens) and empty predictions", digits=3)

    report = Report(f"Caption study: {study_dir.name}")
    report.text(f"Headline mode: {mode} (the other mode is listed too). Scores from {len(scored)} model run(s).")
    degraded = [r["label"] for r in scored if r["metrics"].get("status") == "degraded"]
    if degraded:
        report.text(f"WARNING: degraded runs (empty or failed predictions, scored as empty captions): {', '.join(degraded)}.")
    report.heading("Main metrics").table(main)
    report.heading("BLEU-1..4").table(bleu)
    report.heading("Token statistics").table(stats)
    report.heading(f"Main metrics, {other} mode").table(second)
    labels = [r["label"] for r in scored] + ([HUMAN] if human is not None else [])
    sources = [r["metrics"]["modes"][mode] for r in scored] + ([human["modes"][mode]] if human is not None else [])
    if labels:
        series = {k: [src.get(k) for src in sources] for k in ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr")}
        report.figure(panel_bar_chart(labels, series, title=f"Caption scores ({mode})"), "caption_scores.png",
                      caption=f"BLEU-4, METEOR, ROUGE-L and CIDEr per model ({mode}), one panel and y axis per metric")
    if broken:
        failed = Table(["model", "status", "error"], [[b["label"], b["status"], b["error"]] for b in broken],
                       caption="Models without scores")
        report.heading("Failed or unfinished models").table(failed)
    out.mkdir(parents=True, exist_ok=True)
    paths = write_report(report, out)
    for name, table in (("main_metrics", main), ("other_mode", second), ("bleu", bleu), ("token_stats", stats)):
        table.write_csv(out / f"{name}.csv")
        paths[name] = out / f"{name}.csv"
    if labels:
        paths["png"] = out / "caption_scores.png"
    return paths
