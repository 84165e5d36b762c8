"""The one entry point from a model reference to a `Backend`, above `names`, `hf` and `tiny`.

    backend = load_backend("qwen2-vl-2b", batch_size=8)
    backend = load_backend("tiny-mllama")                      # built offline on first use
    backend = load_backend("http://localhost:8000/v1", kind="openai", model="Qwen/Qwen2-VL-2B-Instruct")

`check_model` (used by `vlmlab models check`) loads a model and runs one generate and one score.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

from vlmlab.errors import ModelError
from vlmlab.models.names import get_spec

BackendKind = Literal["hf", "openai", "ollama"]


def vlmlab_home() -> Path:
    """vlmlab's cache root: `$VLMLAB_HOME`, else ~/.cache/vlmlab."""
    home = os.environ.get("VLMLAB_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "vlmlab"


def default_tiny_root() -> Path:
    """Where `tiny-*` names are built and cached: `$VLMLAB_HOME/tiny`."""
    return vlmlab_home() / "tiny"


def checkpoint_location(ref: str | Path, tiny_root: Path | None = None) -> str | Path:
    """A local folder or hub id for a registered name, tiny name or folder (tiny models are built)."""
    spec = get_spec(ref)
    if spec.tiny and spec.path is None:
        from vlmlab.models.tiny import tiny_model_path

        return tiny_model_path(spec.name.removeprefix("tiny-"), tiny_root if tiny_root is not None else default_tiny_root())
    if spec.path is not None:
        return spec.path
    assert spec.hf_id is not None
    return spec.hf_id


def load_backend(ref: str | Path, *, kind: BackendKind = "hf", tiny_root: Path | None = None, **options: Any) -> Any:
    """The one entry point studies call to get a `Backend`.

    Args:
        ref: for kind="hf", a registered name (`qwen2-vl-2b`, `tiny-qwen2-vl`, ...) or a checkpoint
            folder; for "openai"/"ollama", the server's base URL.
        kind: which backend.
        tiny_root: where `tiny-*` names are built and cached (default `$VLMLAB_HOME/tiny`).
        **options: passed to the backend (`HFBackend`: dtype, device_map, adapter, quantization,
            batch_size, vision_cache, max_length; HTTP backends: model, and their own options).
    """
    if kind == "openai":
        from vlmlab.models.openai_compat import OpenAIBackend

        return OpenAIBackend(base_url=str(ref), **options)
    if kind == "ollama":
        from vlmlab.models.ollama import OllamaBackend

        return OllamaBackend(base_url=str(ref), **options)
    if kind != "hf":
        raise ModelError(f"unknown backend kind {kind!r}; use hf, openai or ollama")
    from vlmlab.models.hf import HFBackend, open_checkpoint, resolve_checkpoint

    spec = get_spec(ref)
    path = resolve_checkpoint(checkpoint_location(ref, tiny_root))
    processor, resolved = open_checkpoint(path)
    if spec.dtype is not None and resolved.dtype != spec.dtype:
        from dataclasses import replace

        resolved = replace(resolved, dtype=spec.dtype)
    return HFBackend(path, spec=resolved, processor=processor, **options)


def check_model(ref: str | Path, *, kind: BackendKind = "hf", tiny_root: Path | None = None, **options: Any) -> dict[str, Any]:
    """Load a model, run one generate and one score on a generated image; timings and token counts.

    Used by `vlmlab models check`; returns a flat dict (seconds, token counts, texts, facts).
    A backend that cannot score (`supports_score` False) reports `score: unsupported`.
    """
    import PIL.Image

    from vlmlab.data.images import Image
    from vlmlab.models.base import GenerationRequest, ScoreRequest, Turn

    t0 = time.perf_counter()
    backend = load_backend(ref, kind=kind, tiny_root=tiny_root, **options)
    load_s = time.perf_counter() - t0
    picture = PIL.Image.new("RGB", (224, 224), (255, 255, 255))
    picture.paste((220, 30, 30), (56, 56, 168, 168))
    image = Image.from_pil(picture)
    conv = [Turn("user", [image, "What colour is the square? Answer in one word."])]
    t1 = time.perf_counter()
    gen = backend.generate([GenerationRequest(id="check", conversation=conv, max_new_tokens=16)])[0]
    gen_s = time.perf_counter() - t1
    if gen.status == "error":
        raise ModelError(f"{ref}: generate failed: {gen.error}")
    facts = backend.describe() if hasattr(backend, "describe") else {}
    facts |= {
        "load_seconds": round(load_s, 3),
        "generate_seconds": round(gen_s, 3),
        "prompt_tokens": gen.prompt_tokens,
        "generated_tokens": gen.generated_tokens,
        "generated_text": gen.text,
        "generate_status": gen.status,
    }
    if not getattr(backend, "supports_score", False):
        return facts | {"score": "unsupported by this backend"}
    t2 = time.perf_counter()
    sc = backend.score([ScoreRequest(id="check", conversation=conv, target="red")])[0]
    if sc.status == "error":
        raise ModelError(f"{ref}: score failed: {sc.error}")
    return facts | {
        "score_seconds": round(time.perf_counter() - t2, 3),
        "score_target_tokens": len(sc.token_ids),
        "score_mean_logprob": round(sc.mean_logprob, 4),
    }
