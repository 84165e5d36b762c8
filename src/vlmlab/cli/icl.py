"""`vlmlab icl`: the ICL study's stages (index, candidates, beam, rl-data, train, eval), compare, Lever-LM/Lever-Plus files.

Each stage: `vlmlab icl STAGE CONFIG [--set key=value ...] [--out DIR] [--overwrite]`. Without
`--out` the run goes to `runs/icl-STAGE/<config hash>`. Re-running the same command resumes.
Data-parallel (beam, eval): `torchrun --nproc_per_node N -m vlmlab icl beam CONFIG --out DIR`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vlmlab.cli.runs import compare_runs_cmd

app = typer.Typer(help="In-context demonstration study: index, candidates, beam, rl-data, train, eval, compare.", no_args_is_help=True)

_SET = typer.Option(None, "--set", help="Override a config key: --set beam_size=3 (repeatable).")
_OUT = typer.Option(None, "--out", help="Run folder (default runs/icl-STAGE/<config hash>).")
_OVERWRITE = typer.Option(False, "--overwrite", help="Replace a run folder that holds another config.")
_DRY_RUN = typer.Option(False, "--dry-run", help="Resolve data, models and upstream stages, then stop; write nothing.")
_KEEP = typer.Option(False, "--keep-errors", help="Keep items that ended in error as finished (default: retry them).")


def _run(stage: str, config: Path, overrides: Optional[list[str]], out: Optional[Path], overwrite: bool, dry_run: bool = False,
         keep: bool = False) -> None:
    from vlmlab.config import config_hash, load_config
    from vlmlab.icl import configs
    from vlmlab.icl import eval_stage, stages, train_stage

    model, fn = {
        "index": (configs.IndexConfig, stages.run_index),
        "candidates": (configs.CandidatesConfig, stages.run_candidates),
        "beam": (configs.BeamConfig, stages.run_beam),
        "rl-data": (configs.RLDataConfig, stages.run_rl_data),
        "train": (configs.TrainStageConfig, train_stage.run_train),
        "eval": (configs.EvalConfig, eval_stage.run_eval),
    }[stage]
    cfg = load_config(config, model, overrides or [])
    folder = out if out is not None else Path("runs") / f"icl-{stage}" / config_hash(cfg)
    if dry_run:
        from vlmlab.cli.dry_run import icl_plan

        for line in icl_plan(cfg, folder, overwrite=overwrite):
            typer.echo(line)
        typer.echo(f"icl {stage}: dry run, nothing written")
        return
    from vlmlab.cli.dry_run import preflight_servers
    from vlmlab.cli.outcome import finish, keep_errors

    preflight_servers(cfg)  # a wrong server address or model name: one line, before anything is written
    with keep_errors(keep):
        done = fn(cfg, folder, overwrite=overwrite)
    if done is not None:
        typer.echo(f"icl {stage}: {done}")
        finish([Path(done)], None)  # exit 3 when the stage's items mostly failed


@app.command("index")
def index_cmd(config: Path = typer.Argument(..., help="Index config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE, dry_run: bool = _DRY_RUN, keep: bool = _KEEP) -> None:
    """Embed the support set (text + image), cached by content hash."""
    _run("index", config, set_, out, overwrite, dry_run, keep)


@app.command("candidates")
def candidates_cmd(config: Path = typer.Argument(..., help="Candidates config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE, dry_run: bool = _DRY_RUN, keep: bool = _KEEP) -> None:
    """Sample anchors and a pool of K candidates per anchor."""
    _run("candidates", config, set_, out, overwrite, dry_run, keep)


@app.command("beam")
def beam_cmd(config: Path = typer.Argument(..., help="Beam config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE, dry_run: bool = _DRY_RUN, keep: bool = _KEEP) -> None:
    """InfoScore beam search per anchor (data-parallel under torchrun)."""
    _run("beam", config, set_, out, overwrite, dry_run, keep)


@app.command("rl-data")
def rl_data_cmd(config: Path = typer.Argument(..., help="RL-data config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE, dry_run: bool = _DRY_RUN, keep: bool = _KEEP) -> None:
    """Answer beams + sampled sequences, VQA-score and balance them."""
    _run("rl-data", config, set_, out, overwrite, dry_run, keep)


@app.command("eval")
def eval_cmd(config: Path = typer.Argument(..., help="Eval config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE, dry_run: bool = _DRY_RUN, keep: bool = _KEEP) -> None:
    """VQA accuracy of zero-shot / random / retrieval / selector demonstrations at 1..N shots."""
    _run("eval", config, set_, out, overwrite, dry_run, keep)


# `vlmlab icl compare` is `vlmlab runs compare`: the same function, the same options.
app.command("compare", help="Same as `vlmlab runs compare`: eval runs side by side on the questions they share.")(compare_runs_cmd)


@app.command("train")
def train_cmd(config: Path = typer.Argument(..., help="Train config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE, dry_run: bool = _DRY_RUN, keep: bool = _KEEP) -> None:
    """Train a selector (v0-v4) on the beams (and rl-data for v4)."""
    _run("train", config, set_, out, overwrite, dry_run, keep)


_INDEX = typer.Option(None, "--index", help="Index run of the support set whose ROW POSITIONS the upstream ids are (default: the run's own).")
_ROWS = typer.Option(None, "--row-order", help="Upstream row order: 'file' (questions file order, default) or 'question_id' (upstream's hub loader sorts by it).")


@app.command("export-lever-lm")
def export_cmd(beam_run: Path = typer.Argument(..., help="A beam run folder (or an imported one)."),
               out: Path = typer.Argument(..., help="Upstream Lever-LM JSON to write (a .vlmlab.json with the support rows goes beside it)."),
               index: Optional[Path] = _INDEX, row_order: Optional[str] = _ROWS) -> None:
    """Write a beam run's beams as upstream Lever-LM JSON (id_list of support ROW positions, score_list)."""
    from vlmlab.icl.lever_io import export_beams

    typer.echo(f"wrote {export_beams(beam_run, out, index=index, row_order=row_order)}")  # type: ignore[arg-type]


@app.command("import-lever-lm")
def import_cmd(
    upstream: Path = typer.Argument(..., help="Upstream Lever-LM JSON (generate_data.py output)."),
    out: Path = typer.Argument(..., help="Folder to write beams.jsonl + lever_lm_import.json into (use it as train `beams:`)."),
    index: Path = typer.Option(..., "--index", help="Index run of the support set upstream's row positions refer to."),
    candidates: Optional[Path] = typer.Option(None, "--candidates", help="vlmlab candidates run whose pools the beams came from."),
    pools: Optional[Path] = typer.Option(None, "--pools", help="Upstream's sampler cache JSON (anchor row -> candidate rows)."),
    order: Optional[str] = typer.Option(None, "--order", help="construct_order (left/right) when the file name does not say it."),
    row_order: str = typer.Option("file", "--row-order", help="'file' (default) or 'question_id' (upstream's hub loader)."),
) -> None:
    """Convert upstream Lever-LM beams (row positions, prepended picks) into a vlmlab beams folder."""
    from vlmlab.icl.lever_io import import_beams

    typer.echo(f"wrote {import_beams(upstream, out, index, candidates=candidates, pools=pools, order=order, row_order=row_order)}")  # type: ignore[arg-type]


@app.command("import-lever-plus")
def import_plus_cmd(
    upstream: Path = typer.Argument(..., help="Upstream Lever-Plus rl_data JSON (generate_rl_data.py output)."),
    out: Path = typer.Argument(..., help="Folder to write rl.jsonl + lever_plus_import.json into (use it as train `rl:`)."),
    index: Path = typer.Option(..., "--index", help="Index run of the support set upstream's row positions refer to."),
    beams: Optional[Path] = typer.Option(None, "--beams", help="Beams folder whose pools the candidates must lie in."),
    row_order: str = typer.Option("file", "--row-order", help="'file' (default) or 'question_id' (upstream's hub loader)."),
) -> None:
    """Convert upstream Lever-Plus RL data (pointer_candidates, _meta) into a vlmlab rl folder."""
    from vlmlab.icl.lever_io import import_rl

    typer.echo(f"wrote {import_rl(upstream, out, index, beams=beams, row_order=row_order)}")  # type: ignore[arg-type]


@app.command("export-lever-plus")
def export_plus_cmd(
    rl_run: Path = typer.Argument(..., help="An rl-data run folder (or an imported one)."),
    out: Path = typer.Argument(..., help="Upstream Lever-Plus rl_data JSON to write."),
    index: Optional[Path] = _INDEX, row_order: Optional[str] = _ROWS,
    balanced: bool = typer.Option(False, "--balanced", help="Export rl.jsonl (balanced) instead of rl_raw.jsonl (all candidates, as upstream keeps)."),
) -> None:
    """Write an rl-data run as upstream Lever-Plus rl_data JSON (with `_meta`)."""
    from vlmlab.icl.lever_io import export_rl

    typer.echo(f"wrote {export_rl(rl_run, out, index=index, row_order=row_order, balanced=balanced)}")  # type: ignore[arg-type]
