"""What the HTTP backends put on the wire and how they read odd answers.

Ollama's request fields are checked in the bodies a fake Ollama server on 127.0.0.1 received
(names from Ollama's `api.ChatRequest`: `think`, `truncate`, `shift`, `options.num_ctx`).
"""

from __future__ import annotations

import io
import json

import httpx
import PIL.Image
import pytest
from http_fixtures import FAST, Recorder, png

from vlmlab.data.images import Image
from vlmlab.errors import ModelError
from vlmlab.models.backend_checks import preflight
from vlmlab.models.base import GenerationRequest, Turn
from vlmlab.models.ollama import OllamaBackend
from vlmlab.models.openai_compat import OpenAIBackend, parse_openai_logprobs
from vlmlab.testing import serve


def encoded(fmt: str, color=(10, 200, 30), **save) -> Image:
    buf = io.BytesIO()
    PIL.Image.new("RGB", (8, 8), color).save(buf, format=fmt, **save)
    return Image(data=buf.getvalue())


def sent_bodies(backend_kwargs: dict, requests: list[GenerationRequest], model: str = "m") -> list[dict]:
    rec = Recorder(answer="ok")
    with serve(rec, api="ollama", model=model) as server:
        results = OllamaBackend(server.url, model, **FAST, **backend_kwargs).generate(requests)
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    return [params["body"] for _, params in rec.calls]


def test_ollama_sends_think_false_truncate_false_and_num_ctx():
    [body] = sent_bodies({}, [GenerationRequest("a", [Turn("user", "hello")], max_new_tokens=8)])
    assert body["think"] is False and body["truncate"] is False and body["shift"] is False
    assert body["options"]["num_ctx"] == 4096  # the floor: a short prompt
    [body] = sent_bodies({"think": "high"}, [GenerationRequest("a", [Turn("user", "hello")])])
    assert body["think"] == "high"


def test_ollama_num_ctx_grows_with_the_prompt_and_a_fixed_one_wins():
    image = png((1, 2, 3))
    turns = []
    for i in range(6):  # a context-carry prompt: six image turns and long text
        turns += [Turn("user", [image, "x" * 900]), Turn("assistant", "answer")]
    turns.append(Turn("user", "last question"))
    request = GenerationRequest("long", turns, max_new_tokens=64)
    # 6 images x 1024 + 2/3 x (6 x 900 + 6 x 6 + 13) bytes + 16 x 13 turns + 64 = 10,010 -> 16384
    [body] = sent_bodies({}, [request])
    assert body["options"]["num_ctx"] == 16384
    [body] = sent_bodies({"image_tokens": 256}, [request])
    assert body["options"]["num_ctx"] == 8192  # 6 x 256 + 3,633 + 208 + 64 = 5,441
    [body] = sent_bodies({"extra_options": {"num_ctx": 2048}}, [request])
    assert body["options"]["num_ctx"] == 2048


def test_ollama_rejects_bad_think_values():
    with pytest.raises(Exception, match="think must be true, false, low, medium or high"):
        OllamaBackend("http://127.0.0.1:9", "m", think="maybe")


@pytest.mark.parametrize(("api", "fmt", "kept"), [
    ("ollama", "GIF", False), ("ollama", "WEBP", False), ("ollama", "JPEG", True),
    ("openai", "GIF", False), ("openai", "WEBP", True), ("openai", "PNG", True),
])
def test_gif_and_other_formats_arrive_as_png(api, fmt, kept):
    image = encoded(fmt, lossless=True) if fmt == "WEBP" else encoded(fmt)
    rec = Recorder(answer="ok")
    with serve(rec, api=api) as server:
        cls = OllamaBackend if api == "ollama" else OpenAIBackend
        [r] = cls(server.url, "fake", **FAST).generate([GenerationRequest("g", [Turn("user", [image, "what?"])])])
    assert r.status == "ok"
    [received] = rec.calls[0][0][0].images
    with PIL.Image.open(io.BytesIO(received.read_bytes())) as seen:
        assert seen.format == (fmt if kept else "PNG")
        assert seen.convert("RGB").getpixel((3, 3)) == image.load().convert("RGB").getpixel((3, 3))
    if kept:
        assert received.sha256 == image.sha256


def test_integer_tokens_in_top_logprobs_are_token_ids():
    steps = parse_openai_logprobs({"content": [
        {"token": 17, "logprob": -0.1, "top_logprobs": [{"token": 17, "logprob": -0.1}, {"token": 5, "logprob": -2.5}]},
        {"token": "5", "logprob": -0.3, "top_logprobs": [{"token": "6", "logprob": -1.2}, {"token": "5", "logprob": -0.3}]},
    ]})
    assert steps[0].token == "token_id:17" and steps[0].token_id == 17 and steps[0].top_ids == [17, 5]
    assert steps[0].top == [("token_id:17", -0.1), ("token_id:5", -2.5)]
    assert steps[1].token == "5" and steps[1].token_id is None and steps[1].top == [("5", -0.3), ("6", -1.2)]


def _mock_backend(answers: dict[str, dict]) -> OpenAIBackend:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json=answers[body["messages"][-1]["content"]])

    backend = OpenAIBackend("http://server.test/v1", "m", max_retries=0)
    backend._client = httpx.Client(transport=httpx.MockTransport(handler))
    return backend


def _choice(text, logprobs=None):
    return {"choices": [{"message": {"content": text}, "logprobs": logprobs}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


def test_a_schema_error_is_that_items_error_never_a_crash():
    backend = _mock_backend({
        "good": _choice("4", {"content": [{"token": 4, "logprob": -0.2, "top_logprobs": [{"token": 4, "logprob": -0.2}]}]}),
        "none-token": _choice("x", {"content": [{"token": None, "logprob": -0.2}]}),
        "no-choices": {"choices": []},
        "list-message": {"choices": [{"message": ["not", "a", "dict"]}]},
    })
    requests = [GenerationRequest(k, [Turn("user", k)], top_logprobs=1) for k in ("good", "none-token", "no-choices", "list-message")]
    results = backend.generate(requests)
    assert [r.status for r in results] == ["ok", "error", "error", "error"]
    assert results[0].logprobs[0].token_id == 4
    assert results[1].error == "unexpected response shape (TypeError: token must be a string or an integer id, got NoneType)"
    assert results[2].error.startswith("unexpected response shape (IndexError")
    assert results[3].error.startswith("unexpected response shape (AttributeError")


def test_preflight_lists_models_and_sends_an_image():
    rec = Recorder(answer="ok")
    with serve(rec, api="ollama", model="llava:latest") as server:
        assert preflight(OllamaBackend(server.url, "llava", **FAST))["models"] == ["llava:latest"]
        assert rec.calls[0][0][0].images and rec.calls[0][1]["max_new_tokens"] == 1
        with pytest.raises(ModelError, match=r"does not serve model 'llava:13b' \(it lists: llava:latest\); fix the model ref"):
            preflight(OllamaBackend(server.url, "llava:13b", **FAST))
    assert len(rec.calls) == 1
