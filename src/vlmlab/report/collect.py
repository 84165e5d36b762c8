"""One report for a folder of runs: `vlmlab runs report DIR`.

Each run folder that wrote a `report.json` contributes its blocks; a run folder without one
contributes its status and `metrics.json` as a table. Nothing is recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path

from vlmlab.errors import RunError
from vlmlab.report.browser import find_chromium, screenshot
from vlmlab.report.document import Report, Table, metrics_table, report_from_json, write_report
from vlmlab.runs import find_runs, summarize_run


def _report_folders(root: Path) -> list[Path]:
    """Folders holding a report.json under root (excluding root's own), sorted."""
    return sorted({p.parent for p in root.rglob("report.json") if p.parent != root})


def collect_report(root: Path, title: str | None = None) -> Report:
    root = Path(root)
    if not root.is_dir():
        raise RunError(f"{root}: no such folder")
    runs = find_runs(root)
    with_reports = _report_folders(root)
    if not runs and not with_reports:
        raise RunError(f"{root}: no run folders or reports found; pass a folder written by a vlmlab command")
    report = Report(title or f"vlmlab report: {root.name}")
    if runs:
        rows = []
        for folder in runs:
            s = summarize_run(folder)
            rows.append([str(folder.relative_to(root)) or ".", s["stage"], s["status"], s["items"], s["config_hash"]])
        report.heading("Runs")
        report.table(Table(["run", "stage", "status", "items", "config"], rows))
    covered: set[Path] = set()
    for folder in with_reports:
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        sub = report_from_json(data, folder)
        sub.title = f"{folder.relative_to(root)}: {sub.title}"
        _prefix_figures(sub, folder.relative_to(root))
        report.extend(sub)
        covered.add(folder)
    for folder in runs:
        if folder in covered or not (folder / "metrics.json").exists():
            continue
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        report.heading(str(folder.relative_to(root)))
        report.table(metrics_table(metrics))
    return report


def _prefix_figures(report: Report, prefix: Path) -> None:
    """Give figures unique names when many reports are written into one folder."""
    from vlmlab.report.document import Figure

    tag = "_".join(prefix.parts).replace(".", "_")
    for block in report.blocks:
        if isinstance(block, Figure):
            block.name = f"{tag}__{block.name}" if tag else block.name


def build_folder_report(root: Path, *, title: str | None = None, png: bool = False) -> dict[str, Path]:
    """Write `report.md`, `report.html` (and `report.png` when asked and Chromium exists) at root."""
    report = collect_report(root, title)
    figures = Path(root) / "figures"
    for block in report.blocks:
        if hasattr(block, "png"):
            block.name = f"figures/{block.name}"
    figures.mkdir(parents=True, exist_ok=True)
    paths = write_report(report, Path(root))
    if png:
        if find_chromium() is None:
            raise RunError("--png needs headless Chromium; install Debian's 'chromium' package")
        paths["png"] = screenshot(paths["html"], Path(root) / "report.png")
    return paths
