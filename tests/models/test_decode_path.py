"""The static-cache decode path gives the dynamic cache's output (CPU, tiny models); the compile
option is refused, in one line, where transformers would not compile."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from vlmlab.errors import ModelError
from vlmlab.models.base import GenerationRequest, Turn
from vlmlab.models.hf import HFBackend


@pytest.mark.parametrize("family", ["qwen2-vl", "llava"])
def test_static_cache_generation_equals_dynamic(family: str, tiny_model: Callable[..., Path], colour_image_factory, monkeypatch) -> None:
    from transformers import StaticCache

    ims = [colour_image_factory(c) for c in [(220, 30, 30), (30, 200, 40)]]
    reqs = [GenerationRequest(id=str(i), conversation=[Turn("user", ims[: 1 + i % 2] + ["What is it" + " now" * i + "?"])],
                              max_new_tokens=6, top_logprobs=2, temperature=0.9 if i == 2 else 0.0, seed=i) for i in range(4)]
    dynamic = HFBackend(tiny_model(family), dtype="float32", batch_size=4).generate(reqs)
    made = []
    init = StaticCache.__init__

    def counting(self, *args, **kwargs):
        made.append(kwargs.get("max_cache_len"))
        init(self, *args, **kwargs)

    monkeypatch.setattr(StaticCache, "__init__", counting)
    static = HFBackend(tiny_model(family), dtype="float32", batch_size=4, cache_implementation="static").generate(reqs)
    assert made, "generate did not build a StaticCache"
    for d, s in zip(dynamic, static):
        assert d.status == s.status and d.status != "error", (d.error, s.error)
        assert d.text == s.text and [x.token_id for x in d.logprobs] == [x.token_id for x in s.logprobs]
        np.testing.assert_allclose([x.logprob for x in d.logprobs], [x.logprob for x in s.logprobs], atol=1e-5)


def test_compile_options_are_refused_where_they_cannot_work(tiny_qwen2_vl: Path) -> None:
    with pytest.raises(ModelError, match="compile_decode needs cache_implementation: static"):
        HFBackend(tiny_qwen2_vl, compile_decode=True)
    with pytest.raises(ModelError, match="must be one of dynamic, static, got 'paged'"):
        HFBackend(tiny_qwen2_vl, cache_implementation="paged")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="the model is on cpu") as exc:
        HFBackend(tiny_qwen2_vl, cache_implementation="static", compile_decode=True)
    assert "\n" not in str(exc.value)


def test_the_throughput_options_belong_to_the_model_block() -> None:
    from vlmlab.models.spec import ModelBlock

    block = ModelBlock(ref="qwen2-vl-2b", options={"cache_implementation": "static", "compile_decode": True,
                                                   "length_buckets": False, "prefix_sharing": False})
    assert block.backend_options()["cache_implementation"] == "static"
    with pytest.raises(ValueError, match="did you mean 'prefix_sharing'"):
        ModelBlock(ref="qwen2-vl-2b", options={"prefix_share": False})
