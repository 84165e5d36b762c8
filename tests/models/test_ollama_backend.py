"""`OllamaBackend` against a real HTTP server on 127.0.0.1 speaking Ollama's `/api/chat`."""

from __future__ import annotations

import logging
import time

import pytest
from http_fixtures import FAST, STEPS, Recorder, jpeg, png, requests_for

from vlmlab.errors import ModelError
from vlmlab.models.base import Backend, GenerationRequest, ScoreRequest, Turn
from vlmlab.models.ollama import OllamaBackend, turn_to_ollama_message
from vlmlab.testing import FaultPlan, serve


def test_generate_maps_options_and_parses():
    rec = Recorder()
    with serve(rec, api="ollama", model="qwen2.5vl:3b") as server:
        backend = OllamaBackend(server.url, "qwen2.5vl:3b", extra_options={"num_ctx": 4096}, **FAST)
        [r] = backend.generate([GenerationRequest("a", [Turn("user", "hello")], max_new_tokens=12, temperature=0.3,
                                                  top_p=0.8, seed=9)])
    assert isinstance(backend, Backend) and backend.name == "ollama"
    assert r.status == "ok" and r.text == "echo:hello" and r.logprobs is None
    body = rec.calls[0][1]["body"]
    assert body["stream"] is False and body["model"] == "qwen2.5vl:3b"
    assert body["options"] == {"temperature": 0.3, "top_p": 0.8, "num_predict": 12, "seed": 9, "num_ctx": 4096}
    assert "logprobs" not in body


def test_images_sent_as_base64_list():
    red, photo = png((255, 0, 0)), jpeg((0, 0, 200))
    rec = Recorder()
    with serve(rec, api="ollama") as server:
        [r] = OllamaBackend(server.url, "m", **FAST).generate(
            [GenerationRequest("i", [Turn("user", [red, "what is", photo, "this?"])])]
        )
    assert r.status == "ok"
    message = rec.calls[0][1]["body"]["messages"][0]
    assert message["content"] == "what is\nthis?" and len(message["images"]) == 2
    assert not message["images"][0].startswith("data:")
    turn = rec.calls[0][0][0]
    assert [im.sha256 for im in turn.images] == [red.sha256, photo.sha256]


def test_text_only_turn_has_no_images_key():
    assert turn_to_ollama_message(Turn("assistant", "fine")) == {"role": "assistant", "content": "fine"}


def test_logprobs_are_raw():
    with serve(Recorder(answer="yes!", steps=STEPS), api="ollama") as server:
        [r] = OllamaBackend(server.url, "m", **FAST).generate(requests_for(1, top_logprobs=3))
    assert r.logprob_source == "raw"
    assert [s.token for s in r.logprobs] == ["yes", "!"]
    assert r.logprobs[0].top == [("yes", -0.105), ("no", -2.3), ("maybe", -4.0)]


def test_empty_answer_is_empty():
    with serve(Recorder(answer=" "), api="ollama") as server:
        [r] = OllamaBackend(server.url, "m", **FAST).generate(requests_for(1))
    assert r.status == "empty"


def test_200_requests_with_20_percent_faults_lose_nothing():
    plan = FaultPlan(server_error=0.05, rate_limit=0.05, timeout=0.03, truncated=0.04, dropped=0.03,
                     seed=11, retry_after=0.01, timeout_seconds=0.5)
    with serve(Recorder(), api="ollama", faults=plan) as server:
        requests = requests_for(200, image=png((7, 7, 7)))
        results = OllamaBackend(server.url, "m", timeout=0.25, max_concurrency=4, **FAST).generate(requests)
    assert [r.id for r in results] == [r.id for r in requests]
    assert plan.total_injected >= 30 and len(plan.injected) == 5
    for i, r in enumerate(results):
        assert r.status in ("ok", "error")
        assert (r.text == f"echo:item-{i}") if r.status == "ok" else bool(r.error)
    assert sum(r.status == "ok" for r in results) >= 198


def test_without_retries_faults_become_reasoned_errors():
    plan = FaultPlan(sequence=["server_error", "rate_limit", "truncated", "dropped", "timeout"], timeout_seconds=0.8)
    with serve(Recorder(), api="ollama", faults=plan) as server:
        backend = OllamaBackend(server.url, "m", max_retries=0, timeout=0.5, max_concurrency=1, **FAST)
        results = backend.generate(requests_for(6))
    errors = [r.error for r in results[:5]]
    assert all(r.status == "error" for r in results[:5]) and results[5].status == "ok"
    assert "HTTP 500" in errors[0] and "HTTP 429" in errors[1] and "truncated" in errors[2]
    assert "connection failed" in errors[3] and "timed out" in errors[4]
    assert all("gave up after 1 attempt" in e for e in errors[1:])


def test_retry_after_is_honoured():
    plan = FaultPlan(sequence=["rate_limit"], retry_after=0.4)
    with serve(Recorder(), api="ollama", faults=plan) as server:
        start = time.perf_counter()
        [r] = OllamaBackend(server.url, "m", **FAST).generate(requests_for(1))
    assert r.status == "ok" and time.perf_counter() - start >= 0.4


def test_score_raises_and_key_is_optional(monkeypatch, caplog):
    backend = OllamaBackend("http://127.0.0.1:9", "m")
    assert backend.supports_score is False and backend.api_key_env is None
    with pytest.raises(ModelError, match="cannot score"):
        backend.score([ScoreRequest("s", [Turn("user", "q")], "a")])

    secret = "ollama-proxy-token-81723"
    monkeypatch.setenv("VLMLAB_OLLAMA_TOKEN", secret)
    caplog.set_level(logging.DEBUG)
    with serve(Recorder(), api="ollama", require_api_key=secret) as server:
        keyed = OllamaBackend(server.url, "m", api_key_env="VLMLAB_OLLAMA_TOKEN", **FAST)
        [r] = keyed.generate(requests_for(1))
    assert r.status == "ok"
    assert secret not in repr(keyed) + str(keyed.describe()) + repr(r) + caplog.text
