"""How a study command ends: warnings, failed items counted by message, and exit code 3.

Exit codes (README "Exit codes"): 0 finished; 2 bad input (one line, nothing written); 3 finished
but degraded (too many items failed; the counts by error message are printed); 130 interrupted.
Failed items are retried by the next run of the same command unless `--keep-errors` is given.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Optional, Sequence

import typer

from vlmlab.health import DEGRADED_EXIT_CODE, FailurePolicy, RunHealth, assess_folders

KEEP_ERRORS = typer.Option(False, "--keep-errors", help="Keep items that ended in error as finished (default: retry them).")
MAX_ERROR_SHARE = typer.Option(
    None, "--max-error-share", min=0.0, max=1.0,
    help="Exit 3 when more than this share of a run's items failed (default: only when all failed, or over 50% with one error).",
)
DRY_RUN = typer.Option(False, "--dry-run", help="Resolve models, data and every condition, report the plan, write nothing.")


@contextlib.contextmanager
def keep_errors(keep: bool) -> Iterator[None]:
    """`--keep-errors`: run folders opened inside (subprocesses and ranks too) keep failed items."""
    from vlmlab.runs import KEEP_ERRORS_ENV

    before = os.environ.get(KEEP_ERRORS_ENV)
    if keep:
        os.environ[KEEP_ERRORS_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(KEEP_ERRORS_ENV, None)
        else:
            os.environ[KEEP_ERRORS_ENV] = before


def warn(lines: Sequence[str]) -> None:
    """Print warnings on stderr, one line each."""
    for line in lines:
        typer.secho(f"warning: {line}", fg=typer.colors.YELLOW, err=True)


def finish(folders: Sequence[Path], max_error_share: Optional[float], root: Path | None = None) -> list[RunHealth]:
    """Assess the run folders; print the failed items by message and exit 3 when any run is degraded."""
    healths = assess_folders(folders, FailurePolicy(max_error_share=max_error_share), root=root)
    degraded = [h for h in healths if h.degraded]
    for health in healths:
        if health.failed and not health.degraded:
            warn([f"{health.name}: {health.failed}/{health.n} items failed (retried on the next run)"])
    if degraded:
        for health in degraded:
            for line in health.lines():
                typer.secho(line, fg=typer.colors.RED, err=True)
        typer.secho(
            f"{len(degraded)} run(s) finished degraded (exit {DEGRADED_EXIT_CODE}); fix the cause and re-run the same command: "
            "finished items are kept and failed ones retried",
            fg=typer.colors.RED, err=True,
        )
        raise typer.Exit(DEGRADED_EXIT_CODE)
    return healths
