"""The demo's one report: a summary of the three studies on top, then every study's own report.

`write_demo_report(out, summary, timings)` writes `report.md`, a self-contained `report.html` and,
when headless Chromium is installed, `report.png` (a screenshot of the page) at the top of the demo
folder. The summary rows are also what `summary_rows` returns for the terminal table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlmlab.report import Report, Table, write_report


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summary_rows(summary: dict[str, Any]) -> list[list[str]]:
    """[study, result, value] rows: the few numbers a person reads first."""
    rows: list[list[str]] = []
    cap = summary.get("caption")
    if cap:
        mode = cap.get("mode", "")
        for key in ("CIDEr", "BLEU-4"):
            rows.append(["caption", f"{key} ({mode}) before -> after LoRA fine-tuning",
                         f"{_fmt(cap['before'][key])} -> {_fmt(cap['after'][key])}"])
        if cap.get("human"):
            rows.append(["caption", f"CIDEr of a human reference (leave-one-out)", _fmt(cap["human"]["CIDEr"])])
    icl = summary.get("icl")
    if icl:
        acc = icl["accuracy"]
        if "zero-shot" in acc:
            rows.append(["icl", "VQA accuracy, zero-shot", _fmt(acc["zero-shot"]["0"]["accuracy"])])
        for method in ("random", "text", "image", "selector"):
            cell = acc.get(method, {}).get("2")
            if cell:
                rows.append(["icl", f"VQA accuracy, 2 shots, {method}", _fmt(cell["accuracy"])])
        info = icl.get("infoscore") or {}
        if info.get("anchors"):
            rows.append(["icl", "anchors: best InfoScore beam vs random demonstrations",
                         f"{_fmt(info['beam_accuracy'])} vs {_fmt(info['random_accuracy'])}"])
    rating = summary.get("rating")
    if rating:
        rows.append(["rating", "emotion kappa / valence r / arousal r (t=0)",
                     f"{_fmt(rating['kappa'])} / {_fmt(rating['valence_r'])} / {_fmt(rating['arousal_r'])}"])
        for e in rating.get("effects", []):
            if e.get("low") is not None:
                rows.append(["rating", f"planted {e['effect']}", f"{_fmt(e['planted'])} -> {_fmt(e['recovered'])} "
                             f"[{_fmt(e['low'])}, {_fmt(e['high'])}]"])
    return rows


def build_summary_report(summary: dict[str, Any], timings: dict[str, Any]) -> Report:
    """The summary section: headline numbers per study and seconds per stage."""
    plan = summary.get("plan", {})
    report = Report("vlmlab demo: three studies on the toy world")
    report.text("Synthetic data with known ground truth (vlmlab.toyworld) and tiny real-architecture VLMs trained on it "
                f"(vlmlab.toymodels); {'quick' if plan.get('quick') else 'full'} plan, seed {plan.get('seed', 0)}. "
                "Every number below comes from a study's own run folders, reproducible with the configs in configs/.")
    report.heading("Summary")
    report.table(Table(["study", "result", "value"], summary_rows(summary)))
    stages = timings.get("stages", {})
    if stages:
        rows = [[name, seconds] for name, seconds in stages.items()]
        rows.append(["sum of stages", timings.get("total_seconds")])
        if timings.get("wall_seconds") is not None:
            rows.append([f"wall clock ({timings.get('workers', 1)} worker processes)", timings["wall_seconds"]])
        report.heading("Time per stage")
        report.table(Table(["stage", "seconds"], rows, digits=1,
                           caption="Seconds each stage took when it ran (finished stages are resumed, not re-run; "
                                   "the three studies run side by side)"))
    return report


def write_demo_report(out: Path, summary: dict[str, Any], timings: dict[str, Any], *, png: bool = True) -> dict[str, Path]:
    """Summary + every study report under `out` -> `out/report.{md,html,json}` (+ `report.png`)."""
    from vlmlab.report.browser import find_chromium, screenshot
    from vlmlab.report.collect import collect_report
    from vlmlab.report.document import Figure

    out = Path(out)
    report = build_summary_report(summary, timings)
    studies = collect_report(out, title="Study reports", include_root=False)  # not our own previous report.json
    for block in studies.blocks:  # figures of the stitched reports live in out/figures/
        if isinstance(block, Figure):
            block.name = f"figures/{block.name}"
    report.blocks.extend(studies.blocks)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    paths = write_report(report, out)
    if png and find_chromium() is not None:
        paths["png"] = screenshot(paths["html"], out / "report.png", height=page_height(report))
    return paths


def page_height(report: Report) -> int:
    """A screenshot height (pixels) that holds the whole rendered page, estimated from its blocks."""
    from vlmlab.report.document import Figure

    height = 200
    for block in report.blocks:
        if isinstance(block, Table):
            height += 60 + 27 * (len(block.rows) + 1)
        elif isinstance(block, Figure):
            height += 480
        else:
            height += 40 + 22 * (len(str(block.get("text", ""))) // 110)
    return max(1200, min(height, 30000))
