"""`ollama` backend: a model served by Ollama's native `/api/chat`.

    backend = OllamaBackend("http://localhost:11434", "qwen2.5vl:3b")
    results = backend.generate([GenerationRequest("q1", [Turn("user", [image, "Describe it."])])])

Each `Turn` becomes one message `{role, content, images}`: the text parts joined with newlines
(as vLLM joins text parts) and the images as plain base64 strings. Ollama's message format has
no place for an image *between* two text parts, so the model's template decides where the images
go (usually before the text).

Sampling goes in `options`: `temperature`, `top_p`, `seed`, `num_predict` (= max_new_tokens);
`extra_options` adds others. Three request fields keep Ollama from silently changing the prompt or
the answer (field names from Ollama's `api.ChatRequest`):

- `think: false` unless the config asks for thinking (`think=True` or "low"/"medium"/"high"): a
  thinking model would otherwise spend `num_predict` on reasoning, answer with empty content and
  give logprobs of its thinking tokens;
- `options.num_ctx` from the prompt's size: an upper estimate (2 tokens per 3 UTF-8 bytes of text,
  `image_tokens` per image, 16 per turn, plus `num_predict`) rounded up to a power of two, at
  least 4096 (so most prompts share one value and Ollama does not reload the model). A fixed
  `extra_options={"num_ctx": N}` wins;
- `truncate: false` and `shift: false`: a prompt longer than the context is refused (the item
  records Ollama's error) instead of Ollama dropping its oldest turns or shifting the window. With `request.top_logprobs > 0` the
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

from vlmlab.errors import ConfigError
from vlmlab.models.base import GenerationRequest, GenerationResult, LogprobSource, StepLogprobs, Turn
from vlmlab.models.http import HTTP_OPTIONS, OLLAMA_FORMATS, HttpBackend, check_options, image_base64
from vlmlab.models.http_retry import RequestFailed
from vlmlab.models.openai_compat import parse_step

# What an ollama model block's `options` may hold: the HTTP options and Ollama's own.
OLLAMA_OPTIONS = (*HTTP_OPTIONS, "extra_options", "think", "image_tokens")


def turn_to_ollama_message(turn: Turn) -> dict[str, Any]:
    """One Ollama chat message: joined text plus base64 images (no data-URL prefix)."""
    texts = [c for c in turn.content if isinstance(c, str)]
    message: dict[str, Any] = {"role": turn.role, "content": "\n".join(texts)}
    if turn.images:
        message["images"] = [image_base64(im, keep=OLLAMA_FORMATS)[1] for im in turn.images]
    return message


def parse_ollama_logprobs(entries: list | None) -> list[StepLogprobs] | None:
    """Ollama's top-level `logprobs` list -> one `StepLogprobs` per generated token."""
    if entries is None:
        return None
    return [parse_step(entry) for entry in entries]


class OllamaBackend(HttpBackend):
    """Backend for Ollama's `/api/chat` (non-streaming).

    Args:
        base_url: the Ollama server, e.g. `http://localhost:11434` (no `/api`).
        model: the Ollama model tag, e.g. `qwen2.5vl:3b`.
        api_key_env: environment variable holding a bearer token for a proxy in front of Ollama,
            or None (default: plain Ollama needs no key).
        logprob_source: `raw` (Ollama's logprobs are taken before temperature) or `processed`.
        extra_options: more Ollama `options` sent with every request (e.g. a fixed `num_ctx`).
        think: Ollama's `think` (False: no thinking; True or "low"/"medium"/"high" for thinking models).
        image_tokens: tokens one image may take in the context, for the `num_ctx` estimate.
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
        think: bool | str = False,
        image_tokens: int = 1024,
        **options: Any,
    ) -> None:
        check_options(self.name, options, OLLAMA_OPTIONS)
        if not isinstance(think, bool) and think not in ("low", "medium", "high"):
            raise ConfigError(f"think must be true, false, low, medium or high, got {think!r}")
        if image_tokens < 1:
            raise ConfigError(f"image_tokens must be >= 1, got {image_tokens}")
        super().__init__(base_url, model, api_key_env=api_key_env, logprob_source=logprob_source, **options)
        self.extra_options = dict(extra_options or {})
        self.think = think
        self.image_tokens = image_tokens

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "extra_options": self.extra_options, "think": self.think, "image_tokens": self.image_tokens}

    def num_ctx(self, request: GenerationRequest) -> int:
        """Context size for `request`: a fixed `extra_options["num_ctx"]`, else the estimate above."""
        if "num_ctx" in self.extra_options:
            return int(self.extra_options["num_ctx"])
        text_bytes = sum(len(c.encode("utf-8")) for t in request.conversation for c in t.content if isinstance(c, str))
        images = sum(len(t.images) for t in request.conversation)
        need = -(-2 * text_bytes // 3) + images * self.image_tokens + 16 * len(request.conversation) + request.max_new_tokens
        return max(4096, 1 << (need - 1).bit_length())

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
        options["num_ctx"] = self.num_ctx(request)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [turn_to_ollama_message(t) for t in request.conversation],
            "stream": False,
            "options": options,
            "think": self.think,
            "truncate": False,
            "shift": False,
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
