"""Loading a model for training (LoRA or full) and saving what training produced.

Family differences come from `models.families`, never from the model's name: the LoRA targets are
the language model's projections found in the module tree, the dtype a family needs (Gemma 3
overflows in float16) is its registry override.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vlmlab.errors import ConfigError, ModelError
from vlmlab.train.args import DtypeName

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
_MIXED = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "no"}


def _spec(model_path: Path) -> Any:
    from vlmlab.models.families import family_for_model_type, read_model_type

    return family_for_model_type(read_model_type(model_path))


def _checkpoint_dtype(model_path: Path) -> str | None:
    try:
        config = json.loads((model_path / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    value = config.get("dtype") or config.get("torch_dtype")
    return value if value in _DTYPES else None


def resolve_dtype(dtype: DtypeName, model_path: Path) -> tuple[torch.dtype, str]:
    """(weight dtype of the frozen base, accelerate mixed-precision mode) for a dtype name.

    "auto" on a GPU is the registry's dtype for the family (bfloat16 for Gemma 3, which overflows in
    float16), else the checkpoint's own dtype; on a CPU it is float32 (CPUs have no float16 overflow
    to avoid, and half-precision autocast there is slower, not faster).
    """
    if dtype == "auto":
        if not torch.cuda.is_available():
            return torch.float32, "no"
        chosen = _DTYPES[_spec(model_path).default_dtype or _checkpoint_dtype(model_path) or "float32"]
    elif dtype in _DTYPES:
        chosen = _DTYPES[dtype]
    else:
        raise ConfigError(f"fine_tune: dtype must be auto, bfloat16, float16 or float32, got {dtype!r}")
    if chosen == torch.float16 and not torch.cuda.is_available():
        raise ConfigError("fine_tune: dtype float16 needs a GPU; use bfloat16 or float32 on a CPU")
    return chosen, _MIXED[chosen]


def default_target_modules(model: torch.nn.Module) -> str:
    """The language model's attention/MLP projections, found in the module tree (a PEFT regex)."""
    from vlmlab.models.families import lora_targets

    return lora_targets(model)


def load_for_training(
    model_path: Path,
    *,
    method: str,
    torch_dtype: torch.dtype,
    lora_r: int,
    lora_alpha: int,
    lora_dropout: float,
    target_modules: list[str] | str | None,
    gradient_checkpointing: bool,
) -> torch.nn.Module:
    """The model with exactly the parameters to train requiring grad.

    LoRA: the base is loaded in `torch_dtype` and frozen; the adapter (PEFT, float32) trains.
    Full: every weight is float32 master weights (half precision comes from autocast).
    """
    from transformers import AutoModelForImageTextToText

    load_dtype = torch_dtype if method == "lora" else torch.float32
    from vlmlab.models.checkpoint import check_safetensors_files

    check_safetensors_files(model_path)
    try:
        model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=load_dtype)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{model_path}: cannot load the model for training ({exc})") from None
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    modules = target_modules if target_modules is not None else default_target_modules(model)
    config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=modules, bias="none")
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as exc:
        raise ConfigError(f"{model_path}: LoRA target_modules {modules!r} do not fit this model ({exc})") from None
    if gradient_checkpointing:
        peft_model.enable_input_require_grads()
    return peft_model


def save_trained(model: torch.nn.Module, processor: Any, output: Path, *, method: str, train_config: dict[str, Any]) -> None:
    """Write the adapter (LoRA) or the full model plus processor (full) as safetensors, atomically."""
    from vlmlab.runs import atomic_write_text

    tmp = output.with_name(output.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    if method == "full":
        processor.save_pretrained(tmp)
    atomic_write_text(tmp / "train_config.json", json.dumps(train_config, indent=1, sort_keys=True))
    if output.exists():
        import shutil

        shutil.rmtree(output)
    tmp.rename(output)
