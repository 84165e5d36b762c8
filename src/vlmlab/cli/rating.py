"""`vlmlab rating`: run a rating study's conditions, list them, analyse finished runs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from vlmlab.progress import make_console
from rich.table import Table

from vlmlab.cli import outcome

app = typer.Typer(help="Do VLMs rate facial expressions like humans? Conditions matrix, capture, analysis.", no_args_is_help=True)
_console = make_console()


def _load(config: Path, overrides: list[str] | None):
    from vlmlab.config import load_config
    from vlmlab.rating.config import RatingConfig

    return load_config(config, RatingConfig, overrides or [])


@app.command("conditions")
def conditions(
    config: Path = typer.Argument(..., help="Study config (YAML)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a key: a.b=c (repeatable)."),
) -> None:
    """List every condition with its priority and whether its run is finished."""
    from vlmlab.rating.conditions import condition_dir, expand_conditions
    from vlmlab.runs import read_run_info

    study = _load(config, set_)
    table = Table("priority", "condition", "status")
    for c in sorted(expand_conditions(study), key=lambda c: (c.priority, c.name)):
        info = read_run_info(condition_dir(study.out, c))
        table.add_row(str(c.priority), c.name, info.get("status", "not started"))
    from vlmlab.rating.baselines import baseline_dir

    for b in study.baselines:
        folder = baseline_dir(study.out, b)
        table.add_row("baseline", str(folder.relative_to(study.out)), read_run_info(folder).get("status", "not started"))
    _console.print(table)


@app.command("run")
def run(
    config: Path = typer.Argument(..., help="Study config (YAML)."),
    priority: Optional[int] = typer.Option(None, "--priority", help="Run conditions with priority <= N (default: all)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a key: a.b=c (repeatable)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace run folders made with another config."),
    analyze_after: bool = typer.Option(True, "--analyze/--no-analyze", help="Write the analysis report when done."),
    dry_run: bool = outcome.DRY_RUN,
    keep_errors: bool = outcome.KEEP_ERRORS,
    max_error_share: Optional[float] = outcome.MAX_ERROR_SHARE,
) -> None:
    """Run the selected conditions (each resumable) and analyse them.

    Exit codes: 0 finished, 2 bad input, 3 finished but degraded (failed items counted by message).
    """
    from vlmlab.rating import run as rating_run
    from vlmlab.runs import read_run_info

    study = _load(config, set_)
    if dry_run:
        table = Table("priority", "condition", "backend", "done", "pending")
        plan = rating_run.dry_run(study, max_priority=priority, overwrite=overwrite, keep_errors=keep_errors)
        for row in plan:
            table.add_row(str(row["priority"]), row["condition"], row["kind"], str(row["done"]), str(row["pending"]))
        _console.print(table)
        _console.print(f"dry run: {len(plan)} condition(s), {plan[0]['items']} items each, nothing written")
        return
    folders = rating_run.run_study(study, max_priority=priority, overwrite=overwrite, keep_errors=keep_errors)
    _console.print(f"{len(folders)} condition run(s) under {study.out}")
    outcome.warn([
        f"{folder.relative_to(study.out)}: logprobs {info['logprobs']}; the dark-knowledge columns stay empty"
        for folder in folders
        if (info := read_run_info(folder)).get("logprobs", "captured") != "captured"
    ])
    if analyze_after:
        from vlmlab.rating.analysis import analyze_runs

        paths = analyze_runs(folders, Path(study.out) / "analysis", seed=study.seed)
        _console.print(f"analysis: {paths['md']}")
    outcome.finish(folders, max_error_share, root=Path(study.out))


@app.command("analyze")
def analyze(
    runs: List[Path] = typer.Argument(..., help="Condition run folders, or a study folder holding them."),
    out: Path = typer.Option(None, "--out", help="Where to write the analysis (default: <first>/analysis)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap confidence intervals."),
    factor: Optional[List[str]] = typer.Option(None, "--factor", help="Fixed factor of the mixed models: a column of the human ratings or of --stimuli (repeatable; default: the group column)."),
    stimuli: Optional[Path] = typer.Option(None, "--stimuli", help="Per-image attributes (image_id + columns, e.g. the toy faces' stimuli.csv): factors, and the intended emotion."),
) -> None:
    """Agreement with humans, collapse, dark knowledge, FPR by group, CKA/RSA — one report."""
    from vlmlab.rating.analysis import analyze_runs
    from vlmlab.runs import find_runs

    folders: list[Path] = []
    for path in runs:
        folders += [p for p in find_runs(path) if p.name != "analysis"]
    target = out or (runs[0] / "analysis")
    paths = analyze_runs(folders, target, seed=seed, factors=factor or None, stimuli=stimuli)
    _console.print(f"analysis: {paths['md']}")
