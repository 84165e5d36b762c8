"""One report for a folder of runs: `vlmlab runs report DIR`.

Each folder that wrote a `report.json` (DIR itself included) contributes its blocks; a run folder
without one contributes its `metrics.json`: scalars as one table, and every list of records (such
as an ICL eval's `cells`, with accuracy, CI and n) as a table of its own. Nothing is recomputed.
The result is written as `combined-report.{md,html,json}` (+ `combined-figures/`), so a stage's
own `report.md` is never overwritten.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from vlmlab.errors import RunError
from vlmlab.report.browser import find_chromium, full_page_screenshot
from vlmlab.report.document import Report, Table, metrics_table, report_from_json, write_report
from vlmlab.runs import find_runs, summarize_run


COMBINED_STEM = "combined-report"
COMBINED_FIGURES = "combined-figures"


def _report_folders(root: Path) -> list[Path]:
    """Folders holding a stage's report.json under root (root's own included), sorted."""
    return sorted({p.parent for p in root.rglob("report.json")})


def collect_report(root: Path, title: str | None = None, *, include_root: bool = True) -> Report:
    """Every run and stage report under `root` as one Report (root's own report.json too, unless
    `include_root` is False: a caller that writes its own report.json at root)."""
    root = Path(root)
    if not root.is_dir():
        raise RunError(f"{root}: no such folder")
    runs = find_runs(root)
    with_reports = [f for f in _report_folders(root) if include_root or f != root]
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
        sub.title = f"{folder.relative_to(root).as_posix() if folder != root else root.name}: {sub.title}"
        _prefix_figures(sub, folder.relative_to(root))
        report.extend(sub)
        covered.add(folder)
    for folder in runs:
        if folder in covered or not (folder / "metrics.json").exists():
            continue
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        report.heading(str(folder.relative_to(root)) if folder != root else root.name)
        report.table(metrics_table(metrics))
        for key, records in _record_lists(metrics):
            report.table(records_table(records, caption=key))
    return report


def _record_lists(metrics: Any, prefix: str = "") -> list[tuple[str, list[dict[str, Any]]]]:
    """(dotted key, records) for every non-empty list of flat dicts in a metrics mapping."""
    found = []
    if isinstance(metrics, dict):
        for key, value in metrics.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                found.append((f"{prefix}{key}", value))
            elif isinstance(value, dict):
                found += _record_lists(value, f"{prefix}{key}.")
    return found


def records_table(records: list[dict[str, Any]], caption: str = "") -> Table:
    """A table of records: label (text) columns first, then numbers, each in first-seen order;
    nested values as compact JSON."""
    columns: list[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    columns.sort(key=lambda c: 0 if any(isinstance(r.get(c), str) for r in records) else 1)
    rows = [[_cell(record.get(c)) for c in columns] for record in records]
    return Table(columns, rows, caption=caption)


def _cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def _prefix_figures(report: Report, prefix: Path) -> None:
    """Give figures unique names when many reports are written into one folder."""
    from vlmlab.report.document import Figure

    tag = "_".join(prefix.parts).replace(".", "_")
    for block in report.blocks:
        if isinstance(block, Figure):
            block.name = f"{tag}__{block.name}" if tag else block.name


def build_folder_report(root: Path, *, title: str | None = None, png: bool = False) -> dict[str, Path]:
    """Write `combined-report.md/.html/.json` (and `.png` when asked) at root; see the module docstring."""
    if png and find_chromium() is None:  # checked first: nothing is written when it cannot finish
        raise RunError("--png needs headless Chromium; install Debian's 'chromium' package")
    report = collect_report(root, title)
    figures = Path(root) / COMBINED_FIGURES
    try:
        for block in report.blocks:
            if hasattr(block, "png"):
                block.name = f"{COMBINED_FIGURES}/{block.name}"
                figures.mkdir(parents=True, exist_ok=True)  # only when there is a figure: no empty folder
        paths = write_report(report, Path(root), stem=COMBINED_STEM)
        if png:
            paths["png"] = full_page_screenshot(paths["html"], Path(root) / f"{COMBINED_STEM}.png")
    except BaseException:  # a full disk or an interrupt: no half-written combined report
        remove_combined_report(Path(root))
        raise
    return paths


def remove_combined_report(root: Path) -> None:
    """Delete the combined report's own files (never a stage's report)."""
    for suffix in (".md", ".html", ".json", ".png"):
        (root / f"{COMBINED_STEM}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(root / COMBINED_FIGURES, ignore_errors=True)
