"""`vlmlab icl`: the ICL study's stages (index, candidates, beam, rl-data, train, eval), compare, Lever-LM files.

Each stage: `vlmlab icl STAGE CONFIG [--set key=value ...] [--out DIR] [--overwrite]`. Without
`--out` the run goes to `runs/icl-STAGE/<config hash>`. Re-running the same command resumes.
Data-parallel (beam, eval): `torchrun --nproc_per_node N -m vlmlab icl beam CONFIG --out DIR`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="In-context demonstration study: index, candidates, beam, rl-data, train, eval, compare.", no_args_is_help=True)

_SET = typer.Option(None, "--set", help="Override a config key: --set beam_size=3 (repeatable).")
_OUT = typer.Option(None, "--out", help="Run folder (default runs/icl-STAGE/<config hash>).")
_OVERWRITE = typer.Option(False, "--overwrite", help="Replace a run folder that holds another config.")


def _run(stage: str, config: Path, overrides: Optional[list[str]], out: Optional[Path], overwrite: bool) -> None:
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
    done = fn(cfg, folder, overwrite=overwrite)
    if done is not None:
        typer.echo(f"icl {stage}: {done}")


@app.command("index")
def index_cmd(config: Path = typer.Argument(..., help="Index config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE) -> None:
    """Embed the support set (text + image), cached by content hash."""
    _run("index", config, set_, out, overwrite)


@app.command("candidates")
def candidates_cmd(config: Path = typer.Argument(..., help="Candidates config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE) -> None:
    """Sample anchors and a pool of K candidates per anchor."""
    _run("candidates", config, set_, out, overwrite)


@app.command("beam")
def beam_cmd(config: Path = typer.Argument(..., help="Beam config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE) -> None:
    """InfoScore beam search per anchor (data-parallel under torchrun)."""
    _run("beam", config, set_, out, overwrite)


@app.command("rl-data")
def rl_data_cmd(config: Path = typer.Argument(..., help="RL-data config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE) -> None:
    """Answer beams + sampled sequences, VQA-score and balance them."""
    _run("rl-data", config, set_, out, overwrite)


@app.command("eval")
def eval_cmd(config: Path = typer.Argument(..., help="Eval config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE,
             allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Run a selector on an index/embedder/pools it was not trained on (warns, records it).")) -> None:
    """VQA accuracy of zero-shot / random / retrieval / selector demonstrations at 1..N shots."""
    _run("eval", config, [*(set_ or []), *(["allow_mismatch=true"] if allow_mismatch else [])], out, overwrite)


@app.command("compare")
def compare_cmd(runs: list[Path] = typer.Argument(..., help="Eval run folders; the first is the baseline."), out: Optional[Path] = typer.Option(None, "--out", help="Write compare.md and CSVs here.")) -> None:
    """Compare eval runs cell by cell (same as `vlmlab runs compare`)."""
    from vlmlab.icl.compare import compare_runs

    tables = compare_runs(runs)
    typer.echo(tables.to_markdown())
    if out is not None:
        for p in tables.write(out):
            typer.echo(f"wrote {p}")


@app.command("train")
def train_cmd(config: Path = typer.Argument(..., help="Train config YAML."), set_: Optional[list[str]] = _SET, out: Optional[Path] = _OUT, overwrite: bool = _OVERWRITE) -> None:
    """Train a selector (v0-v4) on the beams (and rl-data for v4)."""
    _run("train", config, set_, out, overwrite)


@app.command("export-lever-lm")
def export_cmd(beam_run: Path = typer.Argument(..., help="A beam run folder."), out: Path = typer.Argument(..., help="Upstream Lever-LM JSON to write.")) -> None:
    """Write a beam run's beams.jsonl as upstream Lever-LM JSON (id_list / score_list)."""
    from vlmlab.icl.lever_lm import write_lever_lm
    from vlmlab.icl.stages import read_jsonl

    typer.echo(f"wrote {write_lever_lm(read_jsonl(beam_run / 'beams.jsonl'), out)}")


@app.command("import-lever-lm")
def import_cmd(
    upstream: Path = typer.Argument(..., help="Upstream Lever-LM JSON."),
    out: Path = typer.Argument(..., help="beams.jsonl to write."),
    candidates: Optional[Path] = typer.Option(None, "--candidates", help="Candidates run whose pools the beams came from."),
) -> None:
    """Convert upstream Lever-LM JSON into our beams.jsonl format."""
    from vlmlab.icl.lever_lm import import_lever_lm
    from vlmlab.icl.stages import read_jsonl, write_jsonl

    pools = {r["id"]: r["pool"] for r in read_jsonl(candidates / "candidates.jsonl")} if candidates is not None else None
    write_jsonl(out, import_lever_lm(upstream, pools))
    typer.echo(f"wrote {out}")
