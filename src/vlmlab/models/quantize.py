"""Weight quantization options of the `hf` backend: the `from_pretrained` arguments for each.

- "4bit" / "8bit": bitsandbytes (CUDA GPUs only).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from vlmlab.errors import ModelError

QUANTIZATIONS = ("4bit", "8bit")


def quantization_kwargs(quantization: str | None, device_map: str | None = None) -> dict[str, Any]:
    """The `from_pretrained` keyword arguments for a quantization name (empty for None)."""
    if quantization is None:
        return {}
    if quantization not in QUANTIZATIONS:
        raise ModelError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    import transformers

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError(f"quantization={quantization} needs bitsandbytes; pip install bitsandbytes (needs a CUDA GPU)")
    return {"quantization_config": transformers.BitsAndBytesConfig(
        load_in_4bit=quantization == "4bit", load_in_8bit=quantization == "8bit")}
