"""`ollama` backend: a model served by Ollama's native `/api/chat`.

    backend = OllamaBackend("http://localhost:11434", "qwen2.5vl:3b")
    results = backend.generate([GenerationRequest("q1", [Turn("user", [image, "Describe it."])])])

Each `Turn` becomes one message `{role, content, images}`: the text parts joined with newlines
(as vLLM joins text parts) and the images as plain base64 strings. Ollama's message format has
no place for an image *between* two text parts, so the model's template decides where the images
go (usually before the text).

Sampling goes in `options`: `temperature`, `top_p`, `seed`, `num_predict` (= max_new_tokens);
`extra_options` adds others (e.g. `{"num_ctx": 8192}`). With `request.top_logprobs > 0` the
request sets `logprobs: true, top_logprobs: k`; servers that support it answer with a top-level
`logprobs` list. Ollama computes these from the model's logits before its sampler applies
temperature (ollama/ollama issue #16196: identical logprobs at every temperature), so they are
recorded as `logprob_source="raw"`. It is a constructor option because an open pull request
(ollama/ollama #16321) would make them temperature-scaled; pass `logprob_source="processed"` for a
server that does that. Servers without logprob support give results with `logprobs=None`.

`score()` raises `ModelError`, as for every chat endpoint.
"""

from __future__ import annotations

from typing import Any

from vlmlab.models.base import GenerationRequest, GenerationResult, LogprobSource, StepLogprobs, Turn
from vlmlab.models.http import HTTP_OPTIONS, HttpBackend, RequestFailed, check_options, image_base64


def turn_to_ollama_message(turn: Turn) -> dict[str, Any]:
    """One Ollama chat message: joined text plus base64 images (no data-URL prefix)."""
    texts = [c for c in turn.content if isinstance(c, str)]
    message: dict[str, Any] = {"role": turn.role, "content": "\n".join(texts)}
    if turn.images:
        message["images"] = [image_base64(im)[1] for im in turn.images]
    return message


def parse_ollama_logprobs(entries: list | None) -> list[StepLogprobs] | None:
    """Ollama's top-level `logprobs` list -> one `StepLogprobs` per generated token."""
    if entries is None:
        return None
    steps = []
    for entry in entries:
        top = sorted(((t["token"], float(t["logprob"])) for t in entry.get("top_logprobs") or []), key=lambda x: -x[1])
        steps.append(StepLogprobs(token=entry["token"], logprob=float(entry["logprob"]), top=top))
    return steps


class OllamaBackend(HttpBackend):
    """Backend for Ollama's `/api/chat` (non-streaming).

    Args:
        base_url: the Ollama server, e.g. `http://localhost:11434` (no `/api`).
        model: the Ollama model tag, e.g. `qwen2.5vl:3b`.
        api_key_env: environment variable holding a bearer token for a proxy in front of Ollama,
            or None (default: plain Ollama needs no key).
        logprob_source: `raw` (Ollama's logprobs are taken before temperature) or `processed`.
        extra_options: more Ollama `options` sent with every request (e.g. `num_ctx`).
        **options: `max_concurrency`, `timeout`, `max_retries`, `backoff_base`, `backoff_max`,
            `jitter`, `max_retry_after`, `retry_seed`, `extra_body` (see `HttpBackend`); e.g.
            `extra_body={"keep_alive": "30m"}`.
    """

    name = "ollama"
    supports_score = False

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        logprob_source: LogprobSource = "raw",
        extra_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        check_options(self.name, options, (*HTTP_OPTIONS, "extra_options"))
        super().__init__(base_url, model, api_key_env=api_key_env, logprob_source=logprob_source, **options)
        self.extra_options = dict(extra_options or {})

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "extra_options": self.extra_options}

    def _endpoint(self) -> str:
        return f"{self.base_url}/api/chat"

    def _payload(self, request: GenerationRequest) -> dict:
        options: dict[str, Any] = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "num_predict": request.max_new_tokens,
        }
        if request.seed is not None:
            options["seed"] = request.seed
        options.update(self.extra_options)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [turn_to_ollama_message(t) for t in request.conversation],
            "stream": False,
            "options": options,
        }
        if request.top_logprobs > 0:
            payload["logprobs"] = True
            payload["top_logprobs"] = request.top_logprobs
        return payload

    def _parse(self, body: dict, request: GenerationRequest) -> GenerationResult:
        if "error" in body:
            raise RequestFailed(f"server error: {body['error']}")
        text = body["message"].get("content") or ""
        steps = parse_ollama_logprobs(body.get("logprobs")) if request.top_logprobs > 0 else None
        return GenerationResult(
            id=request.id,
            status=GenerationResult.status_for(text),
            text=text,
            logprobs=steps,
            logprob_source=self.logprob_source if steps is not None else None,
            prompt_tokens=body.get("prompt_eval_count"),
            generated_tokens=body.get("eval_count"),
        )
