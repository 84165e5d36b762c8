"""How the hf backend's `generate` holds its KV cache, and whether it compiles the decode step.

    model:
      kind: hf
      ref: qwen2-vl-2b
      options: {cache_implementation: static, compile_decode: true}   # GPU

- `cache_implementation: dynamic` (default): HF's `DynamicCache`, grown token by token.
- `cache_implementation: static`: a `StaticCache` preallocated to prompt + `max_new_tokens`, so
  every decode step has the same shapes. On its own it does not compile (transformers would
  compile a static-cache decode on a GPU by itself; vlmlab passes `disable_compile` so that only
  `compile_decode` decides).
- `compile_decode: true` (static cache only, GPU only): transformers `torch.compile`s the
  model's forward for the decode steps (`CompileConfig`, mode `reduce-overhead`: CUDA graphs).
  The first batch of each new shape pays the compilation.

Greedy output with a static cache equals the dynamic cache's (tested on CPU on tiny models).
"""

from __future__ import annotations

from typing import Any

from vlmlab.errors import ModelError

CACHE_IMPLEMENTATIONS = ("dynamic", "static")
_COMPILING_DEVICES = ("cuda", "xpu", "mps")  # where transformers compiles generate's forward


def check_decode_options(cache_implementation: str, compile_decode: bool) -> None:
    """Refuse an unknown cache or `compile_decode` without a static cache (before the model loads)."""
    if cache_implementation not in CACHE_IMPLEMENTATIONS:
        raise ModelError(f"option cache_implementation must be one of {', '.join(CACHE_IMPLEMENTATIONS)}, got {cache_implementation!r}")
    if compile_decode and cache_implementation != "static":
        raise ModelError("option compile_decode needs cache_implementation: static (a dynamic cache changes shape every step)")


def decode_options(model: Any, cache_implementation: str, compile_decode: bool) -> dict[str, Any]:
    """The `generate` keyword arguments for the chosen cache and compile settings (see module doc).

    Raises:
        ModelError: the settings `check_decode_options` refuses, or `compile_decode` off a GPU.
    """
    check_decode_options(cache_implementation, compile_decode)
    if cache_implementation == "dynamic":
        return {}
    if not compile_decode:
        return {"cache_implementation": "static", "disable_compile": True}
    device = next(model.parameters()).device
    if device.type not in _COMPILING_DEVICES:
        raise ModelError(
            f"option compile_decode: the model is on {device.type}, and transformers compiles the decode step on "
            f"{', '.join(_COMPILING_DEVICES)} only; drop compile_decode (cache_implementation: static works anywhere)"
        )
    from transformers.generation import CompileConfig

    return {"cache_implementation": "static", "compile_config": CompileConfig()}
