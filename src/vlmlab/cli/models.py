"""`vlmlab models`: list the model names, check that a model loads and runs, build tiny models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from vlmlab.progress import make_console
from rich.table import Table

from vlmlab.models.loading import check_model
from vlmlab.models.names import list_specs

app = typer.Typer(help="Model names, checks and tiny offline models.", no_args_is_help=True)


@app.command("list")
def list_models() -> None:
    """Every model name you can pass to a study, with its source and family, then every family with
    a tiny build and what it supports.

    dtype "ckpt" = the checkpoint's own; overrides = the facts its family's registry entry states
    instead of deriving them from the checkpoint.
    """
    table = Table()
    for header in ("name", "source", "family", "model_type", "dtype", "overrides"):
        table.add_column(header, no_wrap=True)
    short = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", None: "ckpt"}
    for spec in list_specs():
        table.add_row(
            spec.name,
            spec.hf_id or "local",
            spec.family.family,
            spec.family.model_type,
            short.get(spec.dtype, spec.dtype),
            ", ".join(spec.family.overrides) or "-",
        )
    make_console().print(table)
    make_console().print(_families_table())


def _families_table() -> Table:
    """Every family with a tiny build and what it supports, derived by the code the backend runs at
    load (`vlmlab.models.support`, the facts the conformance matrix holds each family to): images per
    prompt, the vision-feature cache, the linear layers LoRA adapts, interleaved prompts (IDEFICS),
    a module the processor needs that is missing here, and the registry's overrides.
    """
    from vlmlab.models.families import family_for_model_type
    from vlmlab.models.loading import default_tiny_root
    from vlmlab.models.support import SUPPORT_COLUMNS, all_family_support

    table = Table(title="families (generate and score for all; a model_type not listed takes the same generic path)")
    for header in ("family", "model_type", *SUPPORT_COLUMNS, "image tokens"):
        table.add_column(header, no_wrap=True)
    for support in all_family_support(default_tiny_root()):  # cached there: building every recipe takes seconds
        cells = support.cells()
        table.add_row(support.family, support.model_type, *(cells[c] for c in SUPPORT_COLUMNS),
                      family_for_model_type(support.model_type).image_tokens or "-")
    return table


@app.command("check")
def check(
    ref: str = typer.Argument(..., help="hf: a name from `vlmlab models list`, a checkpoint folder or a hub id; openai/ollama: the server URL."),
    kind: str = typer.Option("hf", help="hf, openai or ollama."),
    model: Optional[str] = typer.Option(None, help="openai/ollama: the server-side model name."),
    dtype: str = typer.Option("auto", help="auto, bfloat16, float16 or float32."),
    device_map: Optional[str] = typer.Option(None, help="e.g. auto, cpu, cuda:0."),
    adapter: Optional[Path] = typer.Option(None, help="A PEFT LoRA adapter folder."),
    quantization: Optional[str] = typer.Option(None, help="int8 / int4 (torchao, CPU or GPU) or 8bit / 4bit (bitsandbytes, GPU)."),
    batch_size: int = typer.Option(8, help="Requests per forward pass."),
    option: list[str] = typer.Option([], "--option", help="Any other backend parameter, KEY=VALUE (YAML value); repeatable."),
    tiny_root: Optional[Path] = typer.Option(None, help="Where tiny-* models are built (default $VLMLAB_HOME/tiny)."),
) -> None:
    """Load a model (the same model block as the study configs), run one generate and one score
    on a generated image, print timings."""
    import yaml

    from vlmlab.config import validate_config
    from vlmlab.errors import ConfigError
    from vlmlab.models.spec import ModelBlock

    options = {}
    for item in option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--option {item!r}: expected KEY=VALUE")
        options[key] = yaml.safe_load(value)
    raw = {"kind": kind, "ref": model if kind != "hf" else ref, "base_url": ref if kind != "hf" else None,
           "dtype": dtype, "device_map": device_map, "adapter": adapter, "quantization": quantization,
           "batch_size": batch_size, "options": options}
    if kind != "hf" and model is None:
        raise ConfigError(f"models check --kind {kind}: pass --model NAME (the server-side model name)")
    block = validate_config({k: v for k, v in raw.items() if v is not None}, ModelBlock, "models check")
    target = block.ref if block.kind == "hf" else str(block.base_url)
    facts = check_model(target, kind=block.kind, tiny_root=tiny_root, **block.backend_options())
    table = Table("fact", "value")
    for key, value in facts.items():
        table.add_row(key, repr(value) if isinstance(value, str) and key == "generated_text" else str(value))
    make_console().print(table)


@app.command("tiny")
def tiny(
    family: str = typer.Argument(..., help="A family of `vlmlab models list` (e.g. qwen2-vl, mllama, paligemma, smolvlm)."),
    out: Path = typer.Option(..., "--out", help="Folder to write the checkpoint to."),
    seed: int = typer.Option(0, help="Seed of the weight initialisation."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty folder that holds no checkpoint."),
) -> None:
    """Build a tiny offline checkpoint of FAMILY (real architecture, locally trained tokenizer)."""
    from vlmlab.errors import DataError
    from vlmlab.models.tiny import build_tiny

    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder; choose another --out")
    is_checkpoint = (out / "config.json").is_file() and any(out.glob("*.safetensors"))
    if out.is_dir() and any(out.iterdir()) and not is_checkpoint and not overwrite:
        # e.g. a dataset folder: its files would be mixed with (or replaced by) model files
        raise DataError(f"{out}: folder is not empty and holds no model checkpoint; choose an empty --out or pass --overwrite")
    path = build_tiny(family, out, seed=seed)
    typer.echo(f"built tiny {family} (seed {seed}) in {path}")
