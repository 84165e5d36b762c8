"""The one model block of every study config and of `vlmlab models check`.

    model:
      kind: hf                 # hf | openai | ollama
      ref: qwen2-vl-2b         # hf: registered name, folder or hub id; openai/ollama: the server's model name
      base_url: null           # openai/ollama: the server URL
      dtype: auto
      device_map: null
      adapter: null
      quantization: null       # int8 | int4 (torchao) | 8bit | 4bit (bitsandbytes)
      batch_size: 8
      options: {}              # any other parameter of the backend, checked when the config loads

`options` are bound against the backend's own parameters when the block is validated, so a typo
is a one-line error (with a "did you mean") before anything loads. `ModelBlock.load()` hands the
block to `loading.load_backend`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from vlmlab.config import StrictModel
from vlmlab.registry import did_you_mean

BackendKind = Literal["hf", "openai", "ollama"]
_BLOCK_FIELDS = ("dtype", "device_map", "adapter", "quantization", "batch_size")


def backend_parameters(kind: str) -> list[str]:
    """The keyword parameters a backend takes (what `options` may name)."""
    if kind == "hf":
        from vlmlab.models.hf import HFBackend

        skip = {"self", "path", "spec", "processor"}
        return [p for p in inspect.signature(HFBackend.__init__).parameters if p not in skip]
    if kind == "ollama":
        from vlmlab.models.ollama import OLLAMA_OPTIONS

        return sorted(set(OLLAMA_OPTIONS))
    from vlmlab.models.http import HTTP_OPTIONS

    return sorted(set(HTTP_OPTIONS))


class ModelBlock(StrictModel):
    """Which model, through which backend, with which loading options (see module doc)."""

    kind: BackendKind = "hf"
    ref: str
    base_url: str | None = None
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device_map: str | None = None
    adapter: Path | None = None
    quantization: Literal["int8", "int4", "8bit", "4bit"] | None = None
    batch_size: int = Field(8, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "ModelBlock":
        if self.kind != "hf" and not self.base_url:
            raise ValueError(f"model {self.ref!r}: kind {self.kind} needs base_url (the server URL)")
        if self.kind != "hf" and (self.adapter is not None or self.quantization is not None or self.dtype != "auto"):
            raise ValueError(f"model {self.ref!r}: dtype, adapter and quantization apply to kind hf only; the server decides them")
        allowed = backend_parameters(self.kind)
        for key in self.options:
            if key in _BLOCK_FIELDS:
                raise ValueError(f"model option {key!r} belongs in the model block itself, not under options")
            if key not in allowed:
                hint = did_you_mean(key, allowed) or f"valid: {', '.join(allowed)}"
                raise ValueError(f"unknown option {key!r} for the {self.kind} backend; {hint}")
        return self

    def backend_options(self) -> dict[str, Any]:
        """The keyword arguments `load_backend` passes to the backend."""
        if self.kind == "hf":
            out: dict[str, Any] = {"dtype": self.dtype, "batch_size": self.batch_size}
            out |= {k: getattr(self, k) for k in ("device_map", "adapter", "quantization") if getattr(self, k) is not None}
            return out | self.options
        return {"model": self.ref} | self.options

    def precision(self) -> str:
        """How the weights are held, for report model lines: `float32`, `auto, int4`, `server`."""
        if self.kind != "hf":
            return "server"
        return self.dtype + (f", {self.quantization}" if self.quantization else "")

    def load(self, tiny_root: Path | None = None) -> Any:
        """The backend this block describes."""
        from vlmlab.models.loading import load_backend

        target = self.ref if self.kind == "hf" else str(self.base_url)
        return load_backend(target, kind=self.kind, tiny_root=tiny_root, **self.backend_options())
