"""`vlmlab demo`: run the caption, ICL and rating studies on the toy world and write one report."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="All three studies on the built-in toy world in minutes, with one report.")


@app.callback(invoke_without_command=True)
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Demo folder (re-running the same command resumes)."),
    quick: bool = typer.Option(False, "--quick", help="The small plan: about a minute instead of about five."),
    seed: int = typer.Option(0, "--seed", help="The one seed of the demo (data, sampling, training, bootstrap)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over when --out holds a demo with other settings."),
    png: bool = typer.Option(True, "--png/--no-png", help="Screenshot the report with headless Chromium when installed."),
    workers: int = typer.Option(3, "--workers", min=1, help="Processes running the three studies side by side (1: one after another)."),
) -> None:
    """Toy data -> toy models -> caption, ICL and rating studies -> report.md / report.html / report.png."""
    from rich.console import Console
    from rich.table import Table

    from vlmlab.demo import run_demo
    from vlmlab.demo.summary import summary_rows

    result = run_demo(out, quick=quick, seed=seed, overwrite=overwrite, png=png, workers=workers)
    console = Console()
    table = Table("study", "result", "value", title="vlmlab demo")
    for row in summary_rows(result.summary):
        table.add_row(*row)
    console.print(table)
    timing = result.timings
    skipped = f" ({len(result.skipped)} finished stages resumed)" if result.skipped else ""
    console.print(f"time: {timing['wall_seconds']:.0f} s{skipped}; seconds per stage in {Path(out) / 'timings.json'}")
    for key in ("md", "html", "png"):
        if key in result.report:
            console.print(f"report: {result.report[key]}")
    if "png" not in result.report and png:
        console.print("note: no report.png (headless Chromium not found; install Debian's 'chromium' package)")
