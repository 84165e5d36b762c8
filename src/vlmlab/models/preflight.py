"""Everything about a model block that can fail cheaply, checked before a study writes anything.

    preflight_model(block)              # a ModelBlock (or a study's model entry): raises ModelError or returns
    preflight_model(block, tiny_root=root)  # tiny-* names are built there

A study calls it for each of its hf models before it opens its first run folder, so that a gated
or missing hub id, a checkpoint whose family facts cannot be derived, or a quantization the model
cannot take ends the command with one line and leaves nothing behind, instead of folders marked
`failed`. It does what `loading.load_backend` does up to the weights:

1. the name resolves (a registered name, a tiny name — built if needed — a folder or a hub id);
2. a hub id is reachable: its config, processor and chat-template files are fetched (not its
   weights), so no token / licence not accepted / offline and not cached is reported here;
3. the config is an image-text-to-text architecture of this transformers;
4. the processor loads and the family facts resolve (chat template, image placeholder, images
   per prompt): the one-line "which fact is missing and how to supply it";
5. the quantization's library is installed and the model's layers can take it (int4 groups);
6. an adapter folder holds a PEFT adapter.

Weights are neither read nor checked (a damaged file still fails at load, inside the run, which
marks its folders failed). HTTP backends (openai, ollama) pass: their server is checked by
`backend_checks.preflight` against the live server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmlab.errors import ModelError
from vlmlab.models.families import ResolvedSpec


@dataclass(frozen=True)
class Checked:
    """What preflight found: the folder it read (for a hub id: its config files) and the family facts."""

    path: Path
    spec: ResolvedSpec


def preflight_model(block: Any, tiny_root: Path | None = None) -> Checked | None:
    """Check a model block (`kind`, `ref`, `quantization`, `device_map`, `adapter`) before any run
    folder is written; None for HTTP kinds.

    Raises:
        ModelError: one line naming the model, what is wrong and what to do.
    """
    if block.kind != "hf":
        return None
    from vlmlab.models.checkpoint import model_class, open_checkpoint, resolve_configs
    from vlmlab.models.loading import checkpoint_location
    from vlmlab.models.quantize import check_quantizable, quantization_kwargs

    path = resolve_configs(checkpoint_location(block.ref, tiny_root))
    model_class(path)
    _, spec = open_checkpoint(path)
    quantization_kwargs(block.quantization, block.device_map)
    check_quantizable(path, block.quantization)
    if block.adapter is not None and not (Path(block.adapter) / "adapter_config.json").is_file():
        raise ModelError(f"{block.adapter}: no adapter_config.json; pass a PEFT LoRA adapter folder")
    return Checked(path, spec)


__all__ = ["Checked", "preflight_model"]
