"""Length-bucketed generation (batches cut from the requests sorted by prompt length) gives the
same text, tokens and logprobs as batching in request order and as one request at a time,
greedy and seeded sampling, on several families."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, Turn
from vlmlab.models.hf import HFBackend

FAMILIES = ["qwen2-vl", "llava", "idefics3", "gemma3"]


@pytest.fixture(scope="module")
def images(colour_image_factory) -> list[Image]:
    return [colour_image_factory(c) for c in [(220, 30, 30), (30, 200, 40), (40, 60, 230)]]


def requests(images: list[Image]) -> list[GenerationRequest]:
    """Seven prompts whose lengths (0-3 images, short and long text) are out of order; rows 1, 4, 6 sample."""
    shapes = [(2, 0), (0, 3), (3, 1), (1, 0), (0, 0), (2, 2), (1, 3)]  # (images, text repeats)
    out = []
    for i, (n_img, words) in enumerate(shapes):
        content: list[Any] = [images[(i + j) % 3] for j in range(n_img)] + ["What is it" + " and why" * words + "?"]
        sample = i in (1, 4, 6)
        out.append(GenerationRequest(id=f"r{i}", conversation=[Turn("user", content)], max_new_tokens=5, top_logprobs=2,
                                     temperature=1.2 if sample else 0.0, seed=i))
    return out


def batches_of(backend: HFBackend, reqs: list[GenerationRequest]) -> tuple[list, list[list[str]]]:
    """(results, the request ids of each batch the backend ran)."""
    seen: list[list[str]] = []
    run = backend._generate_batch

    def spy(batch_reqs, encs):
        seen.append([r.id for r in batch_reqs])
        return run(batch_reqs, encs)

    backend._generate_batch = spy  # type: ignore[method-assign]
    try:
        return backend.generate(reqs), seen
    finally:
        del backend._generate_batch


@pytest.mark.parametrize("family", FAMILIES)
def test_bucketed_generation_equals_unbucketed(family: str, tiny_model: Callable[..., Path], images) -> None:
    backend = HFBackend(tiny_model(family), dtype="float32", batch_size=3)
    reqs = requests(images)
    lengths = {r.id: backend._encode(r.conversation, None).input_ids.shape[0] for r in reqs}
    backend.length_buckets = True
    bucketed, bucket_batches = batches_of(backend, reqs)
    backend.length_buckets = False
    plain, plain_batches = batches_of(backend, reqs)
    backend.batch_size = 1
    single = backend.generate(reqs)
    # the buckets really regroup the requests: shortest first, unlike request order
    assert [lengths[i] for b in bucket_batches for i in b] == sorted(lengths.values())
    assert plain_batches == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]] and bucket_batches != plain_batches
    assert [r.id for r in bucketed] == [r.id for r in reqs]
    for a, b, s in zip(bucketed, plain, single):
        assert a.status != "error", a.error
        assert a.text == b.text == s.text and a.generated_tokens == b.generated_tokens == s.generated_tokens
        assert a.prompt_tokens == lengths[a.id]
        assert [x.token_id for x in a.logprobs] == [x.token_id for x in b.logprobs] == [x.token_id for x in s.logprobs]
        np.testing.assert_allclose([x.logprob for x in a.logprobs], [x.logprob for x in b.logprobs], atol=1e-4)
    sampled = [a.text for a, r in zip(bucketed, reqs) if r.temperature > 0]
    assert len(set(sampled)) > 1  # seeded rows differ from each other, yet each matches its unbucketed self
