"""Weight quantization of the `hf` backend: the `from_pretrained` arguments for each option.

- "int8" / "int4": weight-only quantization by torchao (runs on CPU and GPU): int8 per channel,
  int4 in groups of 32 input features (held in int8 storage with a scale per group, so on CPU it
  saves about as much memory as int8; it is the precision that differs). Activations stay in the
  model's dtype. torchao over optimum-quanto: quanto's int4 hangs on CPU here (transformers 5.25).
- "8bit" / "4bit": bitsandbytes (CUDA GPUs only), as before.

A model the quantizer cannot handle (e.g. int4 on linear layers whose input size is not a multiple
of the group size) fails at load with one line (`quantization_error`).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from vlmlab.errors import ModelError

QUANTIZATIONS = ("int8", "int4", "8bit", "4bit")
INT4_GROUP = 32


def quantization_kwargs(quantization: str | None, device_map: str | None = None) -> dict[str, Any]:
    """The `from_pretrained` keyword arguments for a quantization name (empty for None)."""
    if quantization is None:
        return {}
    if quantization not in QUANTIZATIONS:
        raise ModelError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    import transformers

    if quantization in ("int8", "int4"):
        if importlib.util.find_spec("torchao") is None:
            raise ModelError(f"quantization={quantization} needs torchao; pip install torchao")
        import torch
        from torchao.quantization import Int8WeightOnlyConfig, IntxWeightOnlyConfig
        from torchao.quantization.granularity import PerGroup

        config = (Int8WeightOnlyConfig() if quantization == "int8"
                  else IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(INT4_GROUP)))
        return {"quantization_config": transformers.TorchAoConfig(config)}
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError(f"quantization={quantization} needs bitsandbytes; pip install bitsandbytes (needs a CUDA GPU), "
                         "or use int8/int4 (torchao, CPU and GPU)")
    return {"quantization_config": transformers.BitsAndBytesConfig(
        load_in_4bit=quantization == "4bit", load_in_8bit=quantization == "8bit")}


def check_quantizable(path: Any, quantization: str | None) -> None:
    """Fail before loading when int4 cannot quantize a linear layer of the model: its input size
    must be a multiple of the group size (checked on an empty, meta-device copy of the model)."""
    if quantization != "int4":
        return
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(path))
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module.in_features % INT4_GROUP:
            raise ModelError(f"{path}: quantization=int4 quantizes weights in groups of {INT4_GROUP} input features, but "
                             f"{name} has {module.in_features}; use int8 or no quantization for this model")


def quantization_error(path: Any, quantization: str, exc: BaseException) -> ModelError:
    """One line for a model the quantizer could not convert."""
    how = f"int4 weight-only in groups of {INT4_GROUP} input features" if quantization == "int4" else quantization
    first = " ".join(str(exc).split())[:200]
    return ModelError(f"{path}: quantization={quantization} ({how}) cannot convert this model ({type(exc).__name__}: {first}); "
                      "use int8 or no quantization")
