"""`vlmlab runs`: list and inspect run folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from vlmlab.progress import make_console
from rich.table import Table

from vlmlab.errors import VlmlabError
from vlmlab.runs import find_runs, summarize_run

app = typer.Typer(help="List and inspect run folders.", no_args_is_help=True)
_console = make_console()


def _flat_metrics(metrics: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(_flat_metrics(value, f"{prefix}{key}."))
        elif not isinstance(value, list):
            out[f"{prefix}{key}"] = value
    return out


@app.command("list")
def list_runs(root: Path = typer.Argument(Path("runs"), help="Folder to search for run folders.")) -> None:
    """Every run folder under ROOT with its stage, status and item count; a broken one says why."""
    table = Table("run", "stage", "config", "status", "items")
    broken = 0
    for folder in find_runs(root):
        try:
            s = summarize_run(folder)
        except VlmlabError as exc:  # one corrupt run.json/ledger must not hide every other run
            broken += 1
            table.add_row(str(folder), "", "", "[red]broken[/red]", "", end_section=False)
            table.add_row("", "", "", str(exc).replace(f"{folder}/", "").replace(f"{folder}: ", ""), "")
            continue
        table.add_row(str(folder), s["stage"], s["config_hash"], s["status"], str(s["items"]))
    _console.print(table)
    if broken:
        typer.echo(f"{broken} broken run folder(s); re-run their stage with --overwrite", err=True)


@app.command("show")
def show_run(
    folder: Path = typer.Argument(..., help="A run folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Stage, config hash, item statuses and metrics of one run folder."""
    s = summarize_run(folder)
    if as_json:
        typer.echo(json.dumps(s, indent=2, sort_keys=True, default=str))
        return
    _console.print(f"[bold]{s['dir']}[/bold]  stage={s['stage']}  config={s['config_hash']}  status={s['status']}")
    if s.get("error"):
        _console.print(f"failed because: {s['error']}", markup=False)
    _console.print(f"items: {s['items']}  " + "  ".join(f"{k}={v}" for k, v in sorted(s["item_status"].items())))
    flat = _flat_metrics(s["metrics"])
    if flat:
        table = Table("metric", "value")
        for key, value in flat.items():
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
        _console.print(table)
    if s["report"]:
        _console.print(f"report: {s['report']}")


@app.command("report")
def report_runs(
    folder: Path = typer.Argument(..., help="A run folder or a folder of runs."),
    title: str = typer.Option(None, "--title", help="Title of the report."),
    png: bool = typer.Option(False, "--png", help="Also render report.png with headless Chromium."),
) -> None:
    """One report.md + self-contained report.html for every run under FOLDER."""
    from vlmlab.report.collect import build_folder_report

    paths = build_folder_report(folder, title=title, png=png)
    for kind, path in paths.items():
        _console.print(f"{kind}: {path}")


@app.command("compare")
def compare_runs_cmd(
    runs: list[Path] = typer.Argument(..., help="Eval run folders; the first is the baseline A."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write compare.md and CSVs into this folder."),
    seed: int = typer.Option(0, "--seed", help="Seed of the paired bootstrap / random sign flips."),
    n_boot: int = typer.Option(2000, "--n-boot", min=100, help="B: resamples of the paired bootstrap (p below 1/B shows as '< 1/B')."),
    unit: str = typer.Option("image", "--unit", help="Resampling unit: image (questions sharing an image move together) or question."),
    test: str = typer.Option("bootstrap", "--test", help="Paired test: bootstrap (with a CI) or permutation (sign flips)."),
    correction: str = typer.Option("holm", "--correction", help="Multiple-comparison correction over cells x runs: holm or none."),
    allow_different_subsets: bool = typer.Option(False, "--allow-different-subsets",
                                                 help="Compare runs evaluated on different questions on the ones they share, and show each run on its own."),
) -> None:
    """Runs side by side on the questions they share: n, differences with CIs, p (Holm), minimum detectable difference."""
    from vlmlab.icl.compare import compare_runs

    tables = compare_runs(runs, n_boot=n_boot, seed=seed, unit=unit, test=test, correction=correction,
                          allow_different_subsets=allow_different_subsets)
    typer.echo(tables.to_markdown())
    if out is not None:
        for path in tables.write(out):
            _console.print(f"wrote {path}")
