"""What a backend kind can do, checked when a config loads and once against a live server.

Two kinds of mistakes should stop a study before it writes anything:

- contradictions in the config itself (`capture_problems`): hidden states from an HTTP backend
  (no server returns them), more `top_logprobs` than the server accepts (Ollama: 20), hidden
  states pooled over image tokens for prompts that have no image;
- a server that cannot serve the run (`preflight`): unreachable, the model not in its list, or a
  test request with an image refused. One request each, before the first item.

The checks take a backend kind and plain options, so any study config can call them.
`connection_keys` names the options that only say how to reach a server; a run resumes when only
those change.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import httpx
import PIL.Image

from vlmlab.data.images import Image
from vlmlab.errors import ModelError
from vlmlab.models.base import GenerationRequest, Turn

# How to reach the server: changing these does not change results, so a run resumes across them.
CONNECTION_OPTIONS = (
    "api_key_env", "max_concurrency", "timeout", "max_retries", "backoff_base", "backoff_max", "jitter",
    "max_retry_after", "retry_seed",
)
# Largest `top_logprobs` a server accepts (Ollama rejects more than 20; see ollama/server/routes.go).
TOP_LOGPROBS_LIMIT = {"ollama": 20}
HTTP_KINDS = ("openai", "ollama")
PREFLIGHT_PROMPT = "Reply with one word."  # the text of the preflight request (scripted test servers answer it)


def connection_keys(kind: str) -> tuple[str, ...]:
    """Config keys of a backend kind that only say how to reach it (`base_url` and `CONNECTION_OPTIONS`)."""
    return ("base_url", *CONNECTION_OPTIONS) if kind in HTTP_KINDS else ()


def capture_problems(
    kind: str,
    *,
    top_logprobs: int = 0,
    hidden_layers: Sequence[int] = (),
    hidden_pool: str = "last",
    prompts_without_image: Sequence[str] = (),
) -> list[str]:
    """Contradictions between what a config asks a backend to capture and what it can.

    Args:
        kind: `hf`, `openai` or `ollama`.
        top_logprobs: alternatives per generated token.
        hidden_layers / hidden_pool: hidden states asked for, and how they are pooled.
        prompts_without_image: names of the prompt kinds the study sends without any image
            (e.g. the rating study's `text-only` mode).
    Returns:
        One sentence per problem, saying what to change (empty when the config is consistent).
    """
    problems = []
    limit = TOP_LOGPROBS_LIMIT.get(kind)
    if limit is not None and top_logprobs > limit:
        problems.append(f"top_logprobs {top_logprobs} is more than the {kind} backend accepts ({limit}); set it to {limit} or less")
    if hidden_layers and kind in HTTP_KINDS:
        problems.append(
            f"hidden states (hidden_layers {list(hidden_layers)}) are asked of a {kind} backend, and no server returns them; "
            "capture them with an hf model or drop hidden_layers"
        )
    if hidden_layers and hidden_pool == "image" and prompts_without_image:
        problems.append(
            f"hidden_pool: image needs image tokens, but {', '.join(prompts_without_image)} prompts have no image; "
            "use hidden_pool: last or text, or drop those prompts"
        )
    return problems


def _probe_image() -> Image:
    """A small opaque PNG: enough for any vision encoder to accept it."""
    picture = PIL.Image.new("RGB", (64, 64), (200, 40, 40))
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return Image(data=buf.getvalue())


def _served_models(backend: Any) -> list[str] | None:
    """Names the server lists (None when it has no model list, e.g. a proxy answering 404)."""
    url = f"{backend.base_url}/models" if backend.name == "openai" else f"{backend.base_url}/api/tags"
    try:
        response = backend._client.get(url, headers=backend._headers())
    except httpx.HTTPError as exc:
        raise ModelError(
            f"cannot reach the {backend.name} server at {backend.base_url} ({type(exc).__name__}); "
            "start the server or fix base_url"
        ) from None
    if response.status_code in (401, 403):
        where = f"environment variable {backend.api_key_env}" if backend.api_key_env else "api_key_env"
        raise ModelError(f"the {backend.name} server at {backend.base_url} refused the API key (HTTP {response.status_code}); check {where}")
    if response.status_code != 200:
        return None
    try:
        body = response.json()
        if backend.name == "openai":
            return [str(m["id"]) for m in body["data"]]
        return list(dict.fromkeys(str(name) for m in body["models"] for name in (m.get("name"), m.get("model")) if name))
    except (ValueError, KeyError, TypeError):
        return None


def _listed(model: str, names: Sequence[str], kind: str) -> bool:
    if kind == "ollama" and ":" not in model:
        return model in names or f"{model}:latest" in names
    return model in names


def preflight(backend: Any, *, image: bool = True, top_logprobs: int = 0) -> dict[str, Any]:
    """One model-list request and one tiny chat request, before a long run.

    Raises `ModelError` (one line) when the server is unreachable, does not list the model, or
    refuses the test request (with an image when `image`). Returns what was learnt:
    `{"models": [...] or None, "logprobs": bool}` (whether the answer carried logprobs when
    `top_logprobs > 0`). Backends without an HTTP server (hf, scripted test raters) pass.
    """
    if getattr(backend, "name", None) not in HTTP_KINDS:
        return {"models": None, "logprobs": True}
    names = _served_models(backend)
    if names is not None and not _listed(backend.model, names, backend.name):
        shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "") if names else "none"
        raise ModelError(
            f"the {backend.name} server at {backend.base_url} does not serve model {backend.model!r} (it lists: {shown}); "
            "fix the model ref"
        )
    content: list[Any] = [_probe_image(), PREFLIGHT_PROMPT] if image else [PREFLIGHT_PROMPT]
    request = GenerationRequest("preflight", [Turn("user", content)], max_new_tokens=1, top_logprobs=top_logprobs)
    result = backend._generate_one(request)
    if result.status == "error":
        what = "a test request with an image" if image else "a test request"
        raise ModelError(f"the {backend.name} server at {backend.base_url} refused {what} for model {backend.model!r}: {result.error}")
    return {"models": names, "logprobs": result.logprobs is not None}
