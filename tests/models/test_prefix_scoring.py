"""Prefix-shared scoring equals the unshared score path, per family; where no prefix can be cut
exactly (prefix-LM, cross-attention, deepstack features) nothing is shared and nothing changes."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from vlmlab.data.images import Image
from vlmlab.models.base import ScoreRequest, Turn
from vlmlab.models.hf import HFBackend
from vlmlab.models.prefix_scoring import Segment, _valid_cuts, common_prefixes, plan_segments

SHARING = ["qwen2-vl", "qwen2.5-vl", "llava", "idefics3", "gemma3", "internvl"]
FALLBACK = ["paligemma", "mllama", "qwen3-vl"]  # bidirectional prefix-LM, cross-attention, deepstack features


@pytest.fixture(scope="module")
def images() -> list[Image]:
    import PIL.Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(7):
        arr = np.zeros((56, 56, 3), np.uint8) + rng.integers(0, 255, size=3, dtype=np.uint8)
        arr[10:30, 12:40] = rng.integers(0, 255, size=3, dtype=np.uint8)
        out.append(Image.from_pil(PIL.Image.fromarray(arr)))
    return out


def beam_requests(images: list[Image]) -> list[ScoreRequest]:
    """Two beams' candidates in `order: right`: S ⊕ c ⊕ x, S shared within a beam, candidates of
    differing lengths, some scoring the end-of-turn token too (as one beam-search chunk)."""
    reqs = []
    for s in range(2):
        demo = [Turn("user", [images[s], "What colour is it?"]), Turn("assistant", ["blue", "red"][s])]
        for c in range(3):
            cand = [Turn("user", [images[2 + c], "And this" + " one" * c + "?"]), Turn("assistant", "green")]
            reqs.append(ScoreRequest(id=f"s{s}c{c}", conversation=demo + cand + [Turn("user", [images[6], "Colour?"])],
                                     target=["yellow", "a red square"][c % 2], score_end_of_turn=c == 1))
    return reqs


def scores_both_ways(backend: HFBackend, reqs: list[ScoreRequest]) -> tuple[list, list, int]:
    """(shared results, unshared results, tokens the shared pass saved)."""
    backend.prefix_sharing, before = True, backend.prefix_stats.shared
    shared = backend.score(reqs)
    saved = backend.prefix_stats.shared - before
    backend.prefix_sharing = False
    try:
        plain = backend.score(reqs)
    finally:
        backend.prefix_sharing = True
    return shared, plain, saved


@pytest.mark.parametrize("family", SHARING)
def test_prefix_shared_scores_equal_the_unshared_path(family: str, tiny_model: Callable[..., Path], images) -> None:
    backend = HFBackend(tiny_model(family), dtype="float32", batch_size=6)
    reqs = beam_requests(images)
    shared, plain, saved = scores_both_ways(backend, reqs)
    # each beam's 3 rows share at least the demonstration: its image tokens and the answer
    demo_image_tokens = backend._encode([Turn("user", [images[0], "x"])], None).num_image_tokens
    assert saved >= 2 * 2 * demo_image_tokens > 0
    for a, b in zip(shared, plain):
        assert a.status == b.status == "ok", (a.error, b.error)
        assert a.token_ids == b.token_ids and len(a.token_ids) > 0
        np.testing.assert_allclose(a.token_logprobs, b.token_logprobs, atol=1e-5)


@pytest.mark.parametrize("family", FALLBACK)
def test_families_without_an_exact_cut_share_nothing(family: str, tiny_model: Callable[..., Path], images) -> None:
    backend = HFBackend(tiny_model(family), dtype="float32", batch_size=6)
    reqs = beam_requests(images)
    if backend.max_images_per_prompt is not None:  # one image: the same question after it, the images differ
        reqs = [ScoreRequest(id=str(i), conversation=[Turn("user", [images[i % 2], "What colour is it?"])], target="red")
                for i in range(4)]
    shared, plain, saved = scores_both_ways(backend, reqs)
    assert saved == 0
    for a, b in zip(shared, plain):
        assert a.status == b.status == "ok", (a.error, b.error)
        np.testing.assert_array_equal(a.token_logprobs, b.token_logprobs)


def test_a_prefix_lm_mask_alone_prevents_every_cut(tiny_model: Callable[..., Path], images) -> None:
    """PaliGemma is refused by its config (bidirectional attention); with that gate bypassed, its
    prefix-LM mask - the prompt block sees itself both ways - still leaves no valid cut."""
    from vlmlab.models.families import language_model_layers

    backend = HFBackend(tiny_model("paligemma"), dtype="float32", batch_size=6)
    assert backend._decoder is None
    backend._decoder = backend.model.get_submodule(language_model_layers(backend.model)[0])
    shared, plain, saved = scores_both_ways(backend, beam_requests(images))
    assert saved == 0
    for a, b in zip(shared, plain):
        np.testing.assert_array_equal(a.token_logprobs, b.token_logprobs)


def test_beam_search_right_order_shares_prefixes_and_finds_the_same_beams(tiny_model, images) -> None:
    from vlmlab.data.records import VQARecord
    from vlmlab.icl.beam import beam_search

    recs = [VQARecord(question_id=str(i), image_id=str(i), image=im, question="What colour is it?", answers=["red"] * 10,
                      multiple_choice_answer=["red", "blue", "green"][i % 3]) for i, im in enumerate(images)]
    anchor, pool = recs[0], recs[1:]
    shared = HFBackend(tiny_model("qwen2-vl"), dtype="float32", batch_size=8)
    plain = HFBackend(tiny_model("qwen2-vl"), dtype="float32", batch_size=8, prefix_sharing=False)
    got = beam_search(shared, anchor, pool, beam_size=2, shots=2, order="right", batch_size=8)
    ref = beam_search(plain, anchor, pool, beam_size=2, shots=2, order="right", batch_size=8)
    assert [b.positions for b in got.beams] == [b.positions for b in ref.beams]
    np.testing.assert_allclose([b.step_scores for b in got.beams], [b.step_scores for b in ref.beams], atol=1e-6)
    assert plain.prefix_stats.shared == 0 and shared.prefix_stats.tokens == plain.prefix_stats.tokens
    assert shared.prefix_stats.shared > 0.2 * shared.prefix_stats.tokens


def test_plan_segments_groups_rows_by_shared_prefix() -> None:
    # rows 0-2 share 50 positions, row 3 shares 2 with row 2, rows 3-4 share 40; all rows 60 long
    segs = plan_segments([50, 50, 2, 40], [60] * 5, overhead=0)
    assert segs == [Segment(0, 3, 50, 60), Segment(3, 5, 40, 60)]
    # nothing shared: one plain segment, the batch as it was (3 forwards would pad less but cost more)
    assert plan_segments([0, 0], [10, 12, 9]) == [Segment(0, 3, 0, 12)]
    # a prefix never reaches past the shortest row, and leaves at least one position to run
    assert plan_segments([30], [20, 30], overhead=0) == [Segment(0, 2, 20, 30)]
    assert plan_segments([30], [30, 30], overhead=0) == [Segment(0, 2, 29, 30)]
    # sharing 3 positions of 2 rows saves 3, less than the cost of one more forward
    assert plan_segments([3], [60, 60], overhead=16) == [Segment(0, 2, 0, 60)]


def test_a_cut_never_splits_a_bidirectional_block() -> None:
    # a Gemma3-style mask: causal, plus positions 2..5 (one image) seeing each other
    causal = torch.tril(torch.ones(8, 8, dtype=torch.bool))
    causal[2:6, 2:6] = True
    valid = _valid_cuts([causal[None, None]])
    assert [p for p in range(1, 9) if valid(p)] == [1, 2, 6, 7, 8]
    assert plan_segments([7], [8, 8], valid, overhead=0)[0].prefix == 7
    assert plan_segments([5], [8, 8], valid, overhead=0)[0].prefix == 2  # 3, 4 and 5 cut the block


def test_common_prefixes_compare_embeddings_positions_and_masks() -> None:
    embeds = torch.zeros(3, 6, 2)
    embeds[1, 4:] = 1.0  # row 1 differs from row 0 at position 4
    embeds[2, 4:] = 1.0
    positions = torch.arange(6).repeat(3, 3, 1)  # M-RoPE-shaped [3, batch, seq]
    positions[1, 2, 3] = 9  # row 2's second axis differs at position 3
    assert common_prefixes(embeds, positions, [], [6, 6, 6]) == [4, 3]
    assert common_prefixes(embeds, None, [], [6, 2, 6]) == [2, 2]  # never past a row's real length
    mask = torch.tril(torch.ones(3, 1, 6, 6, dtype=torch.bool))
    mask[0, 0, 1, 0] = False  # row 0 differs inside the block [:2, :2]
    assert common_prefixes(embeds, None, [mask], [6, 6, 6]) == [1, 6]


def test_half_precision_shares_only_when_asked(tiny_model: Callable[..., Path], images) -> None:
    """In bf16 a prefix run alone rounds differently from the batch, so sharing is off unless the
    config says `prefix_sharing: true` (then it is part of the run's config)."""
    reqs = beam_requests(images)
    auto = HFBackend(tiny_model("qwen2-vl"), dtype="bfloat16", batch_size=6)
    asked = HFBackend(tiny_model("qwen2-vl"), dtype="bfloat16", batch_size=6, prefix_sharing=True)
    assert HFBackend(tiny_model("qwen2-vl"), dtype="float32").prefix_sharing is True
    assert auto.prefix_sharing is False
    off, on = auto.score(reqs), asked.score(reqs)
    assert auto.prefix_stats.shared == 0 and asked.prefix_stats.shared > 0
    for a, b in zip(off, on):
        assert a.status == b.status == "ok" and a.token_ids == b.token_ids
        np.testing.assert_allclose(a.token_logprobs, b.token_logprobs, atol=0.05)  # bf16 rounding, not a different answer
