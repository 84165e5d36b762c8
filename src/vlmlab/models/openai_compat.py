"""`openai` backend: any OpenAI-compatible chat-completions server (vLLM, SGLang, LM Studio, ...).

    backend = OpenAIBackend("http://localhost:8000/v1", "Qwen/Qwen2-VL-2B-Instruct", max_concurrency=16)
    results = backend.generate([GenerationRequest("q1", [Turn("user", [image, "Describe it."])])])

`base_url` is what the OpenAI client calls `base_url`, i.e. it already ends in `/v1`; requests go
to `{base_url}/chat/completions`. Each `Turn` becomes one message: a turn with images becomes a
list of `text` and `image_url` parts (images as base64 data URLs, original bytes where the format
allows) in the turn's order; a text-only turn is a plain string.

Logprobs: with `request.top_logprobs > 0` the request asks for `logprobs: true` and
`top_logprobs: k`, and each generated step becomes a `StepLogprobs`. What those numbers mean
depends on the server, so it is a constructor option recorded on every result. vLLM's engine
argument `--logprobs-mode` (choices raw_logprobs, processed_logprobs, raw_logits,
processed_logits) defaults to `raw_logprobs`: "raw" = before any logit processor, "processed" =
after all of them including temperature and top-k/top-p (vLLM engine-args docs). Hence the default
`logprob_source="raw"`; a vLLM server started with `--logprobs-mode processed_logprobs` needs
`logprob_source="processed"`. (Older vLLM V0 servers returned logprobs after sampling parameters
were applied, vLLM issue #9453: use "processed" for those too.) Servers that ignore the
`logprobs` field give results without logprobs (`logprobs=None`). vLLM's
`return_tokens_as_token_ids` tokens (`token_id:123`) fill `StepLogprobs.token_id`.

`score()` raises `ModelError`: a chat endpoint cannot teacher-force a target continuation (the
legacy completions endpoint with `echo` could on some servers, but it bypasses the chat template
and image handling, so it is not offered).
"""

from __future__ import annotations

from typing import Any

from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, GenerationResult, LogprobSource, StepLogprobs, Turn
from vlmlab.models.http import HTTP_OPTIONS, HttpBackend, check_options, image_data_url


def turn_to_message(turn: Turn) -> dict[str, Any]:
    """One OpenAI chat message; image turns use content parts, text-only turns a string."""
    if not turn.images:
        return {"role": turn.role, "content": turn.text}
    parts: list[dict[str, Any]] = []
    for item in turn.content:
        if isinstance(item, Image):
            parts.append({"type": "image_url", "image_url": {"url": image_data_url(item)}})
        else:
            parts.append({"type": "text", "text": item})
    return {"role": turn.role, "content": parts}


def token_and_id(value: Any) -> tuple[str, int | None]:
    """A logprob entry's token as (text, id).

    Servers spell tokens as text, as vLLM's `token_id:<id>` (`return_tokens_as_token_ids`), or as a
    bare integer id; an integer becomes the text `token_id:<id>` so no id is ever read as a digit.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"token must be a string or an integer id, got {type(value).__name__}")
    if isinstance(value, int):
        return f"token_id:{value}", value
    prefix, sep, rest = value.partition("token_id:")
    return value, (int(rest) if sep and not prefix and rest.isdigit() else None)


def parse_step(entry: dict) -> StepLogprobs:
    """One `{token, logprob, top_logprobs}` entry (OpenAI and Ollama share the shape)."""
    token, token_id = token_and_id(entry["token"])
    top = sorted(((*token_and_id(t["token"]), float(t["logprob"])) for t in entry.get("top_logprobs") or []), key=lambda x: -x[2])
    top_ids = [i for _, i, _ in top]
    return StepLogprobs(
        token=token,
        logprob=float(entry["logprob"]),
        top=[(t, lp) for t, _, lp in top],
        token_id=token_id,
        top_ids=top_ids if top_ids and all(i is not None for i in top_ids) else None,  # type: ignore[arg-type]
    )


def parse_openai_logprobs(logprobs: dict | None) -> list[StepLogprobs] | None:
    """`choices[0].logprobs` -> one `StepLogprobs` per generated token (None if absent)."""
    if not logprobs or logprobs.get("content") is None:
        return None
    return [parse_step(entry) for entry in logprobs["content"]]


class OpenAIBackend(HttpBackend):
    """Backend for an OpenAI-compatible `/chat/completions` server.

    Args:
        base_url: e.g. `http://localhost:8000/v1` (vLLM, SGLang), `http://localhost:1234/v1` (LM Studio).
        model: the served model name.
        api_key_env: environment variable holding the API key (default `OPENAI_API_KEY`); if it is
            unset no `Authorization` header is sent. The key is never logged or written anywhere.
        logprob_source: `raw` (vLLM default `--logprobs-mode raw_logprobs`) or `processed`.
        **options: `max_concurrency`, `timeout`, `max_retries`, `backoff_base`, `backoff_max`,
            `jitter`, `max_retry_after`, `retry_seed`, `extra_body` (see `HttpBackend`); e.g.
            `extra_body={"top_k": 1}` for vLLM sampling extras.
    """

    name = "openai"
    supports_score = False

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        logprob_source: LogprobSource = "raw",
        **options: Any,
    ) -> None:
        check_options(self.name, options, HTTP_OPTIONS)
        super().__init__(base_url, model, api_key_env=api_key_env, logprob_source=logprob_source, **options)

    def _endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _payload(self, request: GenerationRequest) -> dict:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [turn_to_message(t) for t in request.conversation],
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stream": False,
        }
        if request.seed is not None:
            payload["seed"] = request.seed
        if request.top_logprobs > 0:
            payload["logprobs"] = True
            payload["top_logprobs"] = request.top_logprobs
        return payload

    def _parse(self, body: dict, request: GenerationRequest) -> GenerationResult:
        choice = body["choices"][0]
        text = choice["message"].get("content") or ""
        steps = parse_openai_logprobs(choice.get("logprobs")) if request.top_logprobs > 0 else None
        usage = body.get("usage") or {}
        return GenerationResult(
            id=request.id,
            status=GenerationResult.status_for(text),
            text=text,
            logprobs=steps,
            logprob_source=self.logprob_source if steps is not None else None,
            prompt_tokens=usage.get("prompt_tokens"),
            generated_tokens=usage.get("completion_tokens"),
        )
