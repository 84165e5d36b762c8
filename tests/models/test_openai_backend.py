"""`OpenAIBackend` against real HTTP servers on 127.0.0.1 (the fake server, with faults)."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
from http_fixtures import FAST, STEPS, Recorder, bmp, jpeg, png, requests_for

from vlmlab.errors import ConfigError, ModelError
from vlmlab.models.base import Backend, GenerationRequest, ScoreRequest, Turn
from vlmlab.models.openai_compat import OpenAIBackend
from vlmlab.testing import FaultPlan, serve

SECRET = "sk-test-Zq8v1Nq0-do-not-leak"


def test_generate_sends_params_and_parses_text():
    rec = Recorder()
    with serve(rec, api="openai", model="served-model") as server:
        backend = OpenAIBackend(server.url, "served-model", **FAST)
        conv = [Turn("system", "be brief"), Turn("user", "hello"), Turn("assistant", "hi"), Turn("user", "again")]
        [result] = backend.generate([GenerationRequest("a", conv, max_new_tokens=7, temperature=0.7, top_p=0.9, seed=5)])
    assert isinstance(backend, Backend) and backend.max_images_per_prompt is None  # the server decides
    assert result.id == "a" and result.status == "ok" and result.text == "echo:again" and result.error is None
    assert result.logprobs is None and result.logprob_source is None
    assert result.seconds is not None and result.seconds > 0
    conversation, params = rec.calls[0]
    assert [t.role for t in conversation] == ["system", "user", "assistant", "user"]
    assert [t.text for t in conversation] == ["be brief", "hello", "hi", "again"]
    assert params["body"]["model"] == "served-model"
    assert (params["max_new_tokens"], params["temperature"], params["top_p"], params["seed"]) == (7, 0.7, 0.9, 5)
    assert "logprobs" not in params["body"] and "seed" in params["body"]


def test_empty_and_whitespace_answers_are_empty_not_ok():
    for answer in ("", "  \n\t "):
        with serve(Recorder(answer=answer), api="openai") as server:
            [result] = OpenAIBackend(server.url, "m", **FAST).generate(requests_for(1))
        assert result.status == "empty" and result.error is None


def test_images_round_trip_in_order():
    red, green, photo, bitmap = png((255, 0, 0)), png((0, 255, 0)), jpeg((0, 0, 255)), bmp((9, 9, 9))
    rec = Recorder()
    conv = [Turn("user", [red, "between", green, photo, "after", bitmap])]
    with serve(rec, api="openai") as server:
        [result] = OpenAIBackend(server.url, "m", **FAST).generate([GenerationRequest("img", conv)])
    assert result.status == "ok"
    turn = rec.calls[0][0][0]
    kinds = ["text" if isinstance(c, str) else "image" for c in turn.content]
    assert kinds == ["image", "text", "image", "image", "text", "image"]
    sent = turn.images
    assert [im.sha256 for im in sent[:3]] == [red.sha256, green.sha256, photo.sha256]  # byte-identical
    assert sent[3].load().getpixel((0, 0)) == (9, 9, 9)  # BMP re-encoded as PNG, same pixels
    assert sent[3].load().size == (4, 4)


def test_logprobs_parsed_with_documented_source():
    with serve(Recorder(answer="yes!", steps=STEPS), api="openai") as server:
        raw = OpenAIBackend(server.url, "m", **FAST).generate(requests_for(1, top_logprobs=2))[0]
        processed = OpenAIBackend(server.url, "m", logprob_source="processed", **FAST).generate(
            requests_for(1, top_logprobs=3)
        )[0]
        none_asked = OpenAIBackend(server.url, "m", **FAST).generate(requests_for(1))[0]
    assert raw.logprob_source == "raw"  # vLLM's default --logprobs-mode raw_logprobs
    assert [s.token for s in raw.logprobs] == ["yes", "!"]
    assert raw.logprobs[0].logprob == pytest.approx(-0.105)
    assert raw.logprobs[0].top == [("yes", -0.105), ("no", -2.3)]
    assert processed.logprob_source == "processed" and len(processed.logprobs[1].top) == 3
    assert none_asked.logprobs is None and none_asked.logprob_source is None


def test_vllm_token_id_tokens_fill_token_ids():
    from vlmlab.models.base import StepLogprobs

    steps = [StepLogprobs("token_id:42", -0.5, [("token_id:42", -0.5), ("token_id:7", -1.5)])]
    with serve(Recorder(answer="x", steps=steps), api="openai") as server:
        [r] = OpenAIBackend(server.url, "m", **FAST).generate(requests_for(1, top_logprobs=2))
    assert r.logprobs[0].token_id == 42 and r.logprobs[0].top_ids == [42, 7]


def test_200_requests_with_20_percent_faults_lose_nothing():
    plan = FaultPlan(server_error=0.06, rate_limit=0.04, timeout=0.03, truncated=0.04, dropped=0.03,
                     seed=3, retry_after=0.01, timeout_seconds=0.5)
    image = png((40, 50, 60))
    with serve(Recorder(), api="openai", faults=plan) as server:
        backend = OpenAIBackend(server.url, "m", timeout=0.25, max_concurrency=4, **FAST)
        requests = requests_for(200, image=image)
        results = backend.generate(requests)
    assert [r.id for r in results] == [r.id for r in requests]  # nothing lost, duplicated or reordered
    assert plan.total_injected >= 30 and len(plan.injected) == 5  # every kind happened
    for i, r in enumerate(results):
        assert r.status in ("ok", "error")
        if r.status == "ok":
            assert r.text == f"echo:item-{i}" and r.error is None
        else:
            assert r.error and r.text == ""
    assert sum(r.status == "ok" for r in results) >= 198


def test_retries_exhausted_gives_error_with_reason():
    rec = Recorder()
    with serve(rec, api="openai", faults=FaultPlan(server_error=1.0)) as server:
        results = OpenAIBackend(server.url, "m", max_retries=2, **FAST).generate(requests_for(3))
        assert server.chat_requests == 9  # 3 items x (1 + 2 retries)
    assert rec.calls == []
    for r in results:
        assert r.status == "error" and r.text == ""
        assert "HTTP 500" in r.error and "injected internal server error" in r.error and "3 attempts" in r.error

    with serve(rec, api="openai", faults=FaultPlan(truncated=1.0)) as server:
        [r] = OpenAIBackend(server.url, "m", max_retries=1, **FAST).generate(requests_for(1))
    assert r.status == "error" and "truncated or invalid JSON" in r.error


def test_retry_after_is_honoured():
    plan = FaultPlan(sequence=["rate_limit", "rate_limit"], retry_after=0.3)
    with serve(Recorder(), api="openai", faults=plan) as server:
        backend = OpenAIBackend(server.url, "m", max_concurrency=1, **FAST)  # backoff alone would be ~1 ms
        start = time.perf_counter()
        [r] = backend.generate(requests_for(1))
        elapsed = time.perf_counter() - start
    assert r.status == "ok" and plan.injected["rate_limit"] == 2
    assert elapsed >= 0.6


def test_timeout_is_retried():
    plan = FaultPlan(sequence=["timeout"], timeout_seconds=1.0)
    with serve(Recorder(), api="openai", faults=plan) as server:
        start = time.perf_counter()
        [r] = OpenAIBackend(server.url, "m", timeout=0.3, **FAST).generate(requests_for(1))
        elapsed = time.perf_counter() - start
    assert r.status == "ok" and elapsed >= 0.3


def test_unreachable_server_raises_one_clear_error_quickly():
    with serve(Recorder(), api="openai") as server:
        url = server.url
    backend = OpenAIBackend(url, "m", max_retries=2, timeout=1, max_concurrency=2, **FAST)
    start = time.perf_counter()
    with pytest.raises(ModelError, match="cannot reach the openai server") as info:
        backend.generate(requests_for(50))
    assert url in str(info.value) and "3 attempts" in str(info.value)
    assert time.perf_counter() - start < 5


def test_concurrency_limit():
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def slow(conversation, params):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return "ok"

    with serve(slow, api="openai", serialize=False) as server:
        results = OpenAIBackend(server.url, "m", max_concurrency=3, **FAST).generate(requests_for(24))
    assert all(r.status == "ok" for r in results)
    assert state["max"] == 3 and server.max_in_flight == 3


def test_api_key_is_sent_but_never_shown(monkeypatch, caplog):
    monkeypatch.setenv("VLMLAB_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    with serve(Recorder(), api="openai", require_api_key=SECRET) as server:
        good = OpenAIBackend(server.url, "m", api_key_env="VLMLAB_TEST_KEY", **FAST)
        [ok] = good.generate(requests_for(1))
        monkeypatch.setenv("VLMLAB_WRONG_KEY", SECRET + "-wrong")
        bad = OpenAIBackend(server.url, "m", api_key_env="VLMLAB_WRONG_KEY", **FAST)
        [denied] = bad.generate(requests_for(1))
        assert server.chat_requests == 2  # a 401 is not retried
    assert ok.status == "ok"
    assert denied.status == "error" and "HTTP 401" in denied.error and "VLMLAB_WRONG_KEY" in denied.error
    shown = " ".join([repr(good), repr(bad), str(good.describe()), repr(ok), repr(denied), caplog.text])
    assert SECRET not in shown and "Zq8v1Nq0" not in shown
    assert "VLMLAB_TEST_KEY" in repr(good)


def test_server_echoing_the_key_is_redacted(monkeypatch):
    monkeypatch.setenv("VLMLAB_TEST_KEY", SECRET)

    def echo_headers(conversation, params):
        raise RuntimeError(f"bad header Bearer {SECRET}")

    with serve(echo_headers, api="openai") as server:
        [r] = OpenAIBackend(server.url, "m", api_key_env="VLMLAB_TEST_KEY", max_retries=0, **FAST).generate(
            requests_for(1)
        )
    assert r.status == "error" and SECRET not in r.error and "***" in r.error


def test_unset_key_env_sends_no_header(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with serve(Recorder(), api="openai", require_api_key="needed") as server:
        [r] = OpenAIBackend(server.url, "m", max_retries=0, **FAST).generate(requests_for(1))
    assert r.status == "error" and "OPENAI_API_KEY" in r.error


def test_score_and_hidden_states_are_refused_clearly():
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m")
    assert backend.supports_score is False
    with pytest.raises(ModelError, match="cannot score"):
        backend.score([ScoreRequest("s", [Turn("user", "q")], "a")])
    with pytest.raises(ModelError, match="hidden states"):
        backend.generate([GenerationRequest("h", [Turn("user", "q")], hidden_layers=(-1,))])


def test_bad_image_fails_only_its_item(tmp_path):
    from vlmlab.data.images import Image

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    requests = requests_for(2) + [GenerationRequest("bad", [Turn("user", [Image(path=broken), "q"])])]
    with serve(Recorder(), api="openai") as server:
        results = OpenAIBackend(server.url, "m", **FAST).generate(requests)
    assert [r.status for r in results] == ["ok", "ok", "error"]
    assert "broken.png" in results[2].error


def test_invalid_options_raise_config_errors():
    with pytest.raises(ConfigError):
        OpenAIBackend("localhost:8000", "m")
    with pytest.raises(ConfigError):
        OpenAIBackend("http://", "m")
    with pytest.raises(ConfigError):
        OpenAIBackend("http://x/v1", "m", logprob_source="after")
    with pytest.raises(ConfigError):
        OpenAIBackend("http://x/v1", "m", max_concurrency=0)
    with pytest.raises(ConfigError):
        OpenAIBackend("http://x/v1", "m", jitter=2)
    with pytest.raises(ConfigError, match="did you mean 'max_retries'"):
        OpenAIBackend("http://x/v1", "m", max_retry=1)
    with pytest.raises(ConfigError, match="unknown option 'zzz'"):
        OpenAIBackend("http://x/v1", "m", zzz=1)


def test_extra_body_is_sent():
    rec = Recorder()
    with serve(rec, api="openai") as server:
        OpenAIBackend(server.url, "m", extra_body={"top_k": 1}, **FAST).generate(requests_for(1))
    assert rec.calls[0][1]["body"]["top_k"] == 1


def test_context_manager_closes_client():
    with OpenAIBackend("http://127.0.0.1:9/v1", "m") as backend:
        pass
    assert backend._client.is_closed
    assert isinstance(backend._client, httpx.Client)


def test_registry_builds_the_http_backends():
    from vlmlab.models.ollama import OllamaBackend
    from vlmlab.models.loading import load_backend

    with serve(Recorder(), api="openai") as server:
        backend = load_backend(server.url, kind="openai", model="m", max_retries=1, backoff_base=0.001)
        [r] = backend.generate(requests_for(1))
    assert isinstance(backend, OpenAIBackend) and r.text == "echo:item-0"
    assert isinstance(load_backend("http://127.0.0.1:11434", kind="ollama", model="m"), OllamaBackend)


def test_retry_policy_backoff_and_retry_after_parsing():
    import email.utils
    import random

    from vlmlab.models.http_retry import RetryPolicy, parse_retry_after

    policy = RetryPolicy(backoff_base=1.0, backoff_max=5.0, jitter=0.5, max_retry_after=10.0)
    rng = random.Random(0)
    waits = [policy.delay(n, rng) for n in range(6)]
    for n, wait in enumerate(waits):
        full = min(5.0, 2.0**n)
        assert full * 0.5 <= wait <= full  # exponential, capped, jitter takes away at most half
    assert policy.delay(0, rng, retry_after=3.0) == 3.0 and policy.delay(0, rng, retry_after=99) == 10.0
    assert RetryPolicy(jitter=0.0).delay(2, rng) == 2.0
    assert parse_retry_after("2") == 2.0 and parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    in_3s = email.utils.formatdate(time.time() + 3, usegmt=True)
    assert 1.0 <= parse_retry_after(in_3s) <= 3.5
    with pytest.raises(ConfigError):
        RetryPolicy(max_retries=-1)
