"""`CachedBackend`: repeated requests come from disk and equal the backend's answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, ScoreRequest, Turn
from vlmlab.models.cache import CachedBackend
from vlmlab.models.hf import HFBackend


def test_cached_results_equal_fresh_ones_and_errors_are_not_cached(tiny_qwen2_vl: Path, colour_image_factory, tmp_path: Path) -> None:
    inner = HFBackend(tiny_qwen2_vl)
    im = colour_image_factory((10, 200, 30))
    gen = [GenerationRequest(id="g", conversation=[Turn("user", [im, "Colour?"])], max_new_tokens=3, top_logprobs=2,
                             hidden_layers=(-1,)),
           GenerationRequest(id="bad", conversation=[Turn("user", [Image(path=tmp_path / "missing.png"), "?"])])]
    sc = [ScoreRequest(id="s", conversation=[Turn("user", [im, "Colour?"])], target="green")]
    cached = CachedBackend(inner, tmp_path / "cache", namespace="tiny-qwen2-vl")
    first_g, first_s = cached.generate(gen), cached.score(sc)
    assert cached.misses == 3 and cached.hits == 0
    again = CachedBackend(inner, tmp_path / "cache", namespace="tiny-qwen2-vl")
    g2 = again.generate([GenerationRequest(id="renamed", conversation=gen[0].conversation, max_new_tokens=3, top_logprobs=2,
                                           hidden_layers=(-1,)), gen[1]])
    s2 = again.score(sc)
    assert again.hits == 2 and again.misses == 1  # the error was retried, not cached
    assert g2[0].id == "renamed" and g2[0].text == first_g[0].text and g2[1].status == "error"
    assert [s.token_id for s in g2[0].logprobs] == [s.token_id for s in first_g[0].logprobs]
    assert np.array_equal(g2[0].hidden_states[-1], first_g[0].hidden_states[-1])
    assert np.array_equal(s2[0].token_logprobs, first_s[0].token_logprobs)
    other = CachedBackend(inner, tmp_path / "cache", namespace="another-model")
    other.score(sc)
    assert other.hits == 0
