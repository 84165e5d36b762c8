"""`vlmlab toymodels`: list the toy model recipes and build (or find) their cached models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from vlmlab.progress import make_console
from rich.table import Table

app = typer.Typer(help="Tiny VLMs trained on the toy world (built once, cached).", no_args_is_help=True)


@app.command("list")
def list_recipes(
    cache_root: Optional[Path] = typer.Option(None, "--cache-root", help="Cache folder (default $VLMLAB_HOME/toymodels)."),
) -> None:
    """Every recipe with its hash, training steps and whether it is already built."""
    from vlmlab.toymodels import RECIPE_NAMES, get_recipe, is_built, recipe_hash

    table = Table()
    for header in ("recipe", "hash", "steps", "built", "description"):
        table.add_column(header)
    for name in RECIPE_NAMES:
        r = get_recipe(name)
        steps = "+".join(str(s.steps) for s in r.stages)
        table.add_row(name, recipe_hash(r), steps, "yes" if is_built(r, cache_root) else "no", r.description)
    make_console().print(table)


@app.command("build")
def build(
    recipe: str = typer.Argument(..., help="Recipe name, e.g. icl-vqa or icl-vqa-quick."),
    cache_root: Optional[Path] = typer.Option(None, "--cache-root", help="Cache folder (default $VLMLAB_HOME/toymodels)."),
) -> None:
    """Build RECIPE's model (or find it in the cache) and print its folder."""
    from vlmlab.toymodels import build_toy_model

    typer.echo(str(build_toy_model(recipe, cache_root=cache_root)))
