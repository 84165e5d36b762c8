"""`vlmlab toyworld`: generate synthetic datasets with known ground truth."""

from __future__ import annotations

import time
from pathlib import Path

import typer

app = typer.Typer(help="Synthetic datasets with known ground truth (captions, panorama, vqa, faces).", no_args_is_help=True)


@app.command("generate")
def generate_command(
    kind: str = typer.Argument(..., help="captions, panorama, vqa or faces."),
    out: Path = typer.Option(..., "--out", help="Output folder (empty, or a previous toy-world output)."),
    n: int = typer.Option(None, "--n", help="Images (questions for vqa); default 2000/1000/3000/1200."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same bytes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow a non-empty folder that is not a toy-world output."),
    context_strength: float = typer.Option(None, "--context-strength",
                                           help="vqa: P(favoured attribute | image context) of ambiguous questions (default 0.65-0.70)."),
) -> None:
    """Write one toy dataset and its manifest.json (every file with its sha256)."""
    from vlmlab.toyworld import generate

    start = time.perf_counter()
    options = {"context_strength": context_strength} if context_strength is not None else None
    manifest = generate(kind, out, n=n, seed=seed, overwrite=overwrite, options=options)
    counts = " ".join(f"{k}={v}" for k, v in sorted(manifest.counts.items()))
    typer.echo(f"{kind}: {len(manifest.files)} files in {out} ({counts}) in {time.perf_counter() - start:.1f}s; digest {manifest.digest[:12]}")
