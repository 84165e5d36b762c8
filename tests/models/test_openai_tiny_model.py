"""A real tiny HF model (Qwen2-VL architecture) behind the fake servers, through both HTTP backends.

What the client gets over HTTP must equal what the `hf` backend gives directly: same greedy text,
same per-step logprobs and top-k alternatives, images delivered byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from http_fixtures import FAST

from vlmlab.models.base import GenerationRequest, Turn
from vlmlab.models.ollama import OllamaBackend
from vlmlab.models.openai_compat import OpenAIBackend
from vlmlab.testing import FaultPlan, serve


@pytest.fixture(scope="module")
def hf_backend(tiny_qwen2_vl: Path):
    from vlmlab.models.hf import HFBackend

    return HFBackend(tiny_qwen2_vl, dtype="float32", batch_size=4)


def _requests(colour_image_factory) -> list[GenerationRequest]:
    red, blue = colour_image_factory((220, 20, 20)), colour_image_factory((20, 20, 220))
    return [
        GenerationRequest("one", [Turn("user", [red, "What is the colour?"])], max_new_tokens=6, top_logprobs=3),
        GenerationRequest("two", [Turn("user", [red, blue, "How many shapes?"])], max_new_tokens=6, top_logprobs=3),
        GenerationRequest("text", [Turn("user", "Describe a circle")], max_new_tokens=6, top_logprobs=3),
    ]


@pytest.mark.parametrize("api", ["openai", "ollama"])
def test_tiny_model_over_http_equals_direct(api, hf_backend, colour_image_factory):
    requests = _requests(colour_image_factory)
    direct = hf_backend.generate(requests)
    client_cls = OpenAIBackend if api == "openai" else OllamaBackend
    plan = FaultPlan(server_error=0.2, dropped=0.1, seed=5)
    with serve(hf_backend, api=api, faults=plan) as server:
        over_http = client_cls(server.url, "tiny", max_concurrency=2, **FAST).generate(requests)
    assert [r.id for r in over_http] == [r.id for r in requests]
    for d, h in zip(direct, over_http):
        assert d.status == "ok", d.error
        assert h.status == d.status and h.text == d.text
        assert h.logprob_source == "raw" and d.logprob_source == "raw"
        assert [s.token for s in h.logprobs] == [s.token for s in d.logprobs]
        assert [s.logprob for s in h.logprobs] == pytest.approx([s.logprob for s in d.logprobs], abs=1e-6)
        assert [[t for t, _ in s.top] for s in h.logprobs] == [[t for t, _ in s.top] for s in d.logprobs]
        assert h.generated_tokens == d.generated_tokens and h.prompt_tokens == d.prompt_tokens
