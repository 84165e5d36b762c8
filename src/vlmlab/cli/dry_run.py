"""`--dry-run` of the ICL stages and the caption study: resolve models, data and inputs; write nothing.

A dry run reads every data file the command would read (with the same readers, so a bad row or
a missing image is the same one-line error), resolves every hf model name or checkpoint folder
without loading weights, reports the upstream stage folders the command will read, and refuses an
output folder that holds a run of another config. It never contacts a server and never writes. The
rating study has its own (`vlmlab.rating.run.dry_run`), which also lists every condition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from vlmlab.errors import ModelError
from vlmlab.models.backend_checks import HTTP_KINDS

# Fields of ICL stage configs that name the run folder of an earlier stage.
UPSTREAM_FIELDS = ("index", "candidates", "beams", "rl", "selector")


def resolve_model(ref: str | Path, kind: str = "hf") -> str:
    """One line about a model: its family for hf (name or folder, nothing loaded), the server for HTTP."""
    if kind in HTTP_KINDS:
        return f"{kind} model {ref} (the server is checked when the run starts)"
    if kind != "hf":
        raise ModelError(f"unknown backend kind {kind!r}; use hf, openai or ollama")
    from vlmlab.models.names import get_spec

    spec = get_spec(ref)
    return f"hf model {ref} ({spec.family.family}{', tiny, built on first use' if spec.tiny and spec.path is None else ''})"


def describe_block(block: Any) -> str:
    """One line about a `ModelBlock`: what `resolve_model` says, plus its precision."""
    if block.kind in HTTP_KINDS:
        return f"{block.kind} model {block.ref} at {block.base_url} (the server is checked when the run starts)"
    return f"{resolve_model(block.ref, block.kind)}, {block.precision()}"


def upstream_status(name: str, folder: Path) -> str:
    from vlmlab.runs import read_run_info

    info = read_run_info(folder) if folder.is_dir() else {}
    state = info.get("status", "not run yet") if info else "not run yet"
    return f"{name}: {folder} ({info.get('stage', '') + ' ' if info else ''}{state})"


def icl_plan(config: BaseModel, out: Path, *, overwrite: bool = False) -> list[str]:
    """Lines describing what an ICL stage would read and resolve; raises on any problem."""
    from vlmlab.icl.data import VQADataConfig, load_split
    from vlmlab.models.spec import ModelBlock
    from vlmlab.runs import check_folder

    lines: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, VQADataConfig):
            lines.append(f"{where}: {len(load_split(node))} questions from {node.questions} (every image found)")
        elif isinstance(node, ModelBlock):
            lines.append(f"{where}: {describe_block(node)}")
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                value = getattr(node, name)
                if name in UPSTREAM_FIELDS and isinstance(value, Path):
                    lines.append(upstream_status(f"{where}.{name}".lstrip("."), value))
                else:
                    walk(value, f"{where}.{name}".lstrip("."))

    walk(config, "")
    if overwrite:
        lines.append(f"out: {out} (replaced: --overwrite)")
    else:
        _, old = check_folder(out, config.model_dump(mode="json"))
        lines.append(f"out: {out} ({'resumes the run there' if old is not None else 'new'})")
    return lines


def caption_plan(study: Any, models: list[str] | None) -> list[str]:
    """Lines describing the caption study's data and models; raises on any problem."""
    from vlmlab.data.captions import read_caption_table

    data = study.data
    lines = []
    test = read_caption_table(data.test, data.images, url_map=data.url_map)
    lines.append(f"test: {len(test)} (image, query) pairs from {data.test}" + (f", first {data.max_test_pairs} used" if data.max_test_pairs else ""))
    if data.train is not None:
        train = read_caption_table(data.train, data.images, url_map=data.url_map, per_row=True)
        lines.append(f"train: {len(train)} rows from {data.train}" + (f", first {data.max_train_rows} used" if data.max_train_rows else ""))
    chosen = [m for m in study.models if models is None or m.name in models]
    unknown = sorted(set(models or []) - {m.name for m in study.models})
    if unknown:
        raise ModelError(f"--models: {', '.join(unknown)} not in the config (models: {', '.join(m.name for m in study.models)})")
    for model in chosen:
        lines.append(f"model {model.name}: {describe_block(model)}")
    return lines


def preflight_servers(config: BaseModel) -> None:
    """One preflight request (model listed, image accepted) per HTTP model of an ICL stage config."""
    from vlmlab.models.backend_checks import preflight
    from vlmlab.models.spec import ModelBlock

    def walk(node: Any) -> None:
        if isinstance(node, ModelBlock):
            if node.kind in HTTP_KINDS:
                with node.load() as backend:
                    preflight(backend)
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                walk(getattr(node, name))

    walk(config)
