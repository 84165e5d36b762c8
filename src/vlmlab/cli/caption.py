"""`vlmlab caption`: run a multi-model caption study, rebuild its report (parsing only; see vlmlab.caption)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from vlmlab.progress import make_console

from vlmlab.cli.outcome import KEEP_ERRORS, MAX_ERROR_SHARE, finish, keep_errors

app = typer.Typer(help="Caption study: fine-tune, generate, score and compare VLM captioners.", no_args_is_help=True)
_console = make_console()


def _split(text: Optional[str]) -> list[str] | None:
    return [p.strip() for p in text.split(",") if p.strip()] if text else None


@app.command("run")
def run(
    config: Path = typer.Argument(..., help="Study config (YAML)."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated config model names to run (default: all)."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Shortcut for --set image.size=N."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Shortcut for --set generation.max_new_tokens=N."),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="Shortcut for --set finetune.max_length=N."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Shortcut for --set finetune.epochs=N."),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="Comma-separated GPU ids: one process per model, spread over them."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a key: a.b=c (repeatable)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start stages over where their folder holds another config."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the comparison report when done."),
    human: bool = typer.Option(True, "--human/--no-human", help="Score the human leave-one-out row (if scoring.human)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Read the data and resolve every model, then stop; write nothing."),
    max_error_share: Optional[float] = MAX_ERROR_SHARE,
    keep: bool = KEEP_ERRORS,
) -> None:
    """Prepare data once, then per model: fine-tune, generate, score; then the comparison report.

    Exits 1 when a model failed (the others' results are kept and reported), 3 when a model's
    captions mostly ended in error (counts by error message printed; retried by the next run).
    """
    from vlmlab.caption.config import CaptionConfig, cli_overrides
    from vlmlab.caption.study import run_study
    from vlmlab.config import load_config

    overrides = cli_overrides(image_size=image_size, max_tokens=max_tokens, max_length=max_length, epochs=epochs) + list(set_ or [])
    if not human:
        overrides.append("scoring.human=false")
    study = load_config(config, CaptionConfig, overrides)
    if dry_run:
        from vlmlab.cli.dry_run import caption_plan

        for line in caption_plan(study, _split(models)):
            _console.print(line, highlight=False, soft_wrap=True)
        _console.print("caption run: dry run, nothing written")
        return
    gpu_ids = [int(g) for g in _split(gpus) or []] or None
    with keep_errors(keep):
        outcome = run_study(study, models=_split(models), gpus=gpu_ids, overwrite=overwrite, config_path=config,
                            overrides=overrides, report=report)
    for name, status in outcome.statuses.items():
        colour = {"complete": "green", "degraded": "yellow"}.get(status, "red")
        _console.print(f"[{colour}]{status:9}[/{colour}] {name}" + (f": {outcome.errors[name]}" if name in outcome.errors else ""),
                       highlight=False)
    if outcome.report:
        _console.print(f"report: {outcome.report['md']}")
    if outcome.failed:
        raise typer.Exit(1)
    generated = [study.model_dir(m) / "generate" for m in study.models if m.name in outcome.statuses]
    finish([g for g in generated if (g / "ledger.jsonl").exists()], max_error_share, root=study.study_dir())


@app.command("report")
def report_cmd(
    study_dir: Path = typer.Argument(..., help="A study folder (runs/caption/<name>)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where to write the report (default: the study folder)."),
) -> None:
    """Rebuild the comparison tables (Markdown, CSV, bar chart) from the run folders."""
    from vlmlab.caption.report import build_report

    paths = build_report(study_dir, out)
    _console.print(f"report: {paths['md']}")
