"""The JSON the fake servers read and write: OpenAI chat completions and Ollama `/api/chat`.

Kept apart from the server plumbing (`fake_servers`) so the two wire formats can be read on
their own: requests are decoded into `Turn`s and decoding parameters, answers and errors are
shaped as each API documents them (OpenAI `chat.completion` with `logprobs.content`; Ollama
`done`/`eval_count` with its `logprobs` list).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from vlmlab.errors import DataError
from vlmlab.models.base import StepLogprobs, Turn
from vlmlab.models.http import image_from_base64

Api = Literal["openai", "ollama"]


# --------------------------------------------------------------------------- request decoding


def openai_conversation(body: dict) -> list[Turn]:
    """The `messages` of an OpenAI chat request as turns (images only as `data:` URLs)."""
    turns = []
    for message in body["messages"]:
        content = message.get("content")
        if content is None or isinstance(content, str):
            turns.append(Turn(message["role"], [content or ""]))
            continue
        items: list[Any] = []
        for part in content:
            if part.get("type") == "text":
                items.append(part["text"])
            elif part.get("type") == "image_url":
                url = part["image_url"]["url"] if isinstance(part["image_url"], dict) else part["image_url"]
                if not url.startswith("data:"):
                    raise DataError("fake server accepts only data: URLs for images")
                items.append(image_from_base64(url))
            else:
                raise DataError(f"fake server does not understand content part type {part.get('type')!r}")
        turns.append(Turn(message["role"], items))
    return turns


def ollama_conversation(body: dict) -> list[Turn]:
    """The `messages` of an Ollama chat request as turns (base64 `images` first, then the text)."""
    turns = []
    for message in body["messages"]:
        images = [image_from_base64(b64) for b64 in message.get("images") or []]
        turns.append(Turn(message["role"], [*images, message.get("content") or ""]))
    return turns


def request_params(body: dict, api: Api) -> dict[str, Any]:
    """Decoding parameters of a request, with each API's own defaults where a field is absent."""
    if api == "openai":
        max_new = body.get("max_completion_tokens", body.get("max_tokens", 16))
        temperature, top_p, seed = body.get("temperature", 1.0), body.get("top_p", 1.0), body.get("seed")
    else:
        options = body.get("options") or {}
        max_new = options.get("num_predict", 128)
        temperature, top_p, seed = options.get("temperature", 0.8), options.get("top_p", 0.9), options.get("seed")
    top_logprobs = int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
    return {
        "max_new_tokens": int(max_new),
        "temperature": float(temperature),
        "top_p": float(top_p),
        "seed": seed,
        "top_logprobs": top_logprobs,
        "model": body.get("model"),
        "api": api,
        "body": body,
    }


# --------------------------------------------------------------------------- answers


def logprob_entry(token: str, logprob: float) -> dict[str, Any]:
    """One token's logprob as both APIs write it (with its UTF-8 bytes)."""
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def logprobs_json(steps: list[StepLogprobs], k: int) -> list[dict[str, Any]]:
    """Per generated step: the chosen token and its `k` best alternatives."""
    return [
        {**logprob_entry(s.token, s.logprob), "top_logprobs": [logprob_entry(t, lp) for t, lp in s.top[:k]]}
        for s in steps
    ]


def answer_json(api: Api, model: str, number: int, text: str, steps: list[StepLogprobs] | None, params: dict,
            prompt_tokens: int | None, generated_tokens: int | None) -> dict[str, Any]:
    """A successful chat answer (`chat.completion` or Ollama's `done` message) with usage counts."""
    k = params["top_logprobs"]
    logprobs = logprobs_json(steps, k) if (k > 0 and steps is not None) else None
    n_gen = generated_tokens if generated_tokens is not None else (len(steps) if steps else len(text.split()))
    n_prompt = prompt_tokens or 0
    if api == "openai":
        return {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": {"content": logprobs} if logprobs is not None else None,
                }
            ],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_gen, "total_tokens": n_prompt + n_gen},
        }
    body: dict[str, Any] = {
        "model": model,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "message": {"role": "assistant", "content": text},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": n_prompt,
        "eval_count": n_gen,
    }
    if logprobs is not None:
        body["logprobs"] = logprobs
    return body


def error_json(api: Api, message: str, kind: str) -> dict[str, Any]:
    """An error body in the shape the API's clients parse."""
    if api == "openai":
        return {"error": {"message": message, "type": kind, "code": None}}
    return {"error": message}
