"""InfoScore beam search: telescoping, prefix reuse, batch invariance, ordering, ranking, costs; the
HF score-path speed-ups it relies on (image-input cache, target-only logits) change no result."""

from __future__ import annotations

import numpy as np
import pytest

from icl_toy import data_config
from vlmlab.errors import DataError
from vlmlab.icl.beam import beam_search
from vlmlab.icl.data import load_split
from vlmlab.icl.infoscore import answer_probabilities
from vlmlab.icl.prompts import score_request


@pytest.fixture
def split(toy_support):
    return load_split(data_config(toy_support))


def _anchor_pool(split, k: int = 8):
    anchor = split.records[2]  # an ambiguous question
    pool = [r for r in split.records if r.question_id != anchor.question_id][:k]
    return anchor, pool


def test_telescoping_sum_of_step_marginals(split, toy_backend) -> None:
    anchor, pool = _anchor_pool(split)
    res = beam_search(toy_backend, anchor, pool, beam_size=3, shots=3)
    p_x = answer_probabilities(toy_backend, [score_request("x", [], anchor)])[0]
    for beam in res.beams:
        p_full = answer_probabilities(toy_backend, [score_request("s", [pool[p] for p in beam.positions], anchor)])[0]
        assert sum(beam.step_scores) == pytest.approx(p_full - p_x, abs=1e-12)
        assert beam.cumulative == pytest.approx(p_full - p_x, abs=1e-12)
    assert res.base_prob == pytest.approx(p_x)


def test_step_score_is_info_score_of_added_demo(split, toy_backend) -> None:
    anchor, pool = _anchor_pool(split)
    res = beam_search(toy_backend, anchor, pool, beam_size=2, shots=2, order="left")
    best = res.beams[0]
    first, second = best.positions[1], best.positions[0]  # left order: the newest demo goes first
    p1 = answer_probabilities(toy_backend, [score_request("a", [pool[first]], anchor)])[0]
    p2 = answer_probabilities(toy_backend, [score_request("b", [pool[second], pool[first]], anchor)])[0]
    assert best.step_scores[1] == pytest.approx(p2 - p1)


def test_prefix_reuse_equals_rescoring_with_fewer_passes(split, toy_backend) -> None:
    anchor, pool = _anchor_pool(split)
    a = beam_search(toy_backend, anchor, pool, beam_size=3, shots=3, reuse_prefix=True)
    b = beam_search(toy_backend, anchor, pool, beam_size=3, shots=3, reuse_prefix=False)
    assert [x.positions for x in a.beams] == [x.positions for x in b.beams]
    assert np.allclose([x.step_scores for x in a.beams], [x.step_scores for x in b.beams])
    assert b.forward_passes == a.forward_passes + 3 + 3  # P(y|S,x) re-scored per beam at steps 2 and 3


def test_batch_size_invariance_and_one_stream_for_all_beams(split, toy_backend) -> None:
    anchor, pool = _anchor_pool(split)
    results = []
    for bs in (1, 5, 64):
        toy_backend.score_calls = 0
        results.append(beam_search(toy_backend, anchor, pool, beam_size=3, shots=2, batch_size=bs))
        if bs == 64:
            # 1 (P(y|x)) + 1 (step 1: 8 children) + 1 (step 2: 3 beams x 7 children in one stream)
            assert toy_backend.score_calls == 3
    ref = results[0]
    for r in results[1:]:
        assert [b.positions for b in r.beams] == [b.positions for b in ref.beams]
        assert [b.step_scores for b in r.beams] == [b.step_scores for b in ref.beams]
    # forward passes per anchor: 1 + K + beam*(K-1)
    assert ref.forward_passes == 1 + 8 + 3 * 7


def test_order_left_and_right_place_the_new_demo(split, toy_backend) -> None:
    """Greedy (beam 1) search, checked against brute force: the second pick is the best c for
    [c, first] (left: farthest from the query) or [first, c] (right: next to the query)."""
    anchor, pool = _anchor_pool(split)

    def prob(demos: list[int]) -> float:
        return float(answer_probabilities(toy_backend, [score_request("p", [pool[p] for p in demos], anchor, score_eos=True)])[0])

    first = max(range(len(pool)), key=lambda c: prob([c]))
    second_left = max((c for c in range(len(pool)) if c != first), key=lambda c: prob([c, first]))
    second_right = max((c for c in range(len(pool)) if c != first), key=lambda c: prob([first, c]))
    left = beam_search(toy_backend, anchor, pool, beam_size=1, shots=2, order="left").beams[0]
    right = beam_search(toy_backend, anchor, pool, beam_size=1, shots=2, order="right").beams[0]
    assert left.positions == [second_left, first]
    assert right.positions == [first, second_right]
    assert left.prob == pytest.approx(prob([second_left, first])) and right.prob == pytest.approx(prob([first, second_right]))


def test_rank_by_cumulative_orders_by_total_gain(split, toy_backend) -> None:
    anchor, pool = _anchor_pool(split)
    res = beam_search(toy_backend, anchor, pool, beam_size=4, shots=2, rank_by="cumulative")
    cum = [b.cumulative for b in res.beams]
    assert cum == sorted(cum, reverse=True)


def test_same_attribute_demos_win(split, toy_backend) -> None:
    anchor, pool = _anchor_pool(split, k=12)
    res = beam_search(toy_backend, anchor, pool, beam_size=3, shots=2)
    want = anchor.question_type
    assert all(pool[p].question_type == want for p in res.beams[0].positions)
    assert res.beams[0].cumulative > 0


def test_anchor_in_its_own_pool_is_an_error(split, toy_backend) -> None:
    anchor, pool = _anchor_pool(split)
    with pytest.raises(DataError, match="own candidate pool"):
        beam_search(toy_backend, anchor, [anchor, *pool])


def test_shots_larger_than_pool_is_an_error(split, toy_backend) -> None:
    anchor, pool = _anchor_pool(split, k=2)
    with pytest.raises(DataError, match="shots=3"):
        beam_search(toy_backend, anchor, pool, shots=3)


# ---------------------------------------------------------------- the HF score path beam search uses

CACHED_FAMILIES = ["qwen2-vl", "qwen2.5-vl", "llava", "gemma3"]  # images processed independently


def _image_convs(images) -> list:
    """Conversations with 1-3 images, a repeated image, and a demonstration turn."""
    from vlmlab.models.base import Turn

    a, b, c = images
    return [
        [Turn("user", [a, "What colour is it?"])],
        [Turn("user", [b, "What colour?"]), Turn("assistant", ["green"]), Turn("user", [c, "What colour is it?"])],
        [Turn("user", [a, "What colour?"]), Turn("assistant", ["red"]), Turn("user", [a, "And this one?"])],
        [Turn("user", [c, "What?"]), Turn("assistant", ["blue"]), Turn("user", [b, "What?"]), Turn("assistant", ["green"]),
         Turn("user", [a, "What colour is it?"])],
    ]


@pytest.mark.parametrize("family", CACHED_FAMILIES)
@pytest.mark.parametrize("size", [1, 256])  # 1: every call evicts; the call's own images are never evicted
def test_image_input_cache_encodes_exactly_like_the_processor(family: str, size: int, tiny_model, colour_image_factory) -> None:
    import torch

    from vlmlab.models.hf import open_checkpoint
    from vlmlab.models.hf_encode import ImageInputCache, encode_conversation

    path = tiny_model(family)
    proc = open_checkpoint(path)[0]
    images = [colour_image_factory(rgb) for rgb in [(220, 30, 30), (30, 200, 40), (40, 60, 230)]]
    cache = ImageInputCache(size)
    for conv in _image_convs(images) * 2:  # the second round is all hits when the cache holds them
        ref = encode_conversation(proc, conv, "red")
        got = encode_conversation(proc, conv, "red", image_inputs=cache)
        assert torch.equal(got.input_ids, ref.input_ids) and torch.equal(got.attention_mask, ref.attention_mask)
        assert (got.target_slice, got.label_slice, got.prompt_length, got.num_image_tokens) == (
            ref.target_slice, ref.label_slice, ref.prompt_length, ref.num_image_tokens)
        assert set(got.model_inputs) == set(ref.model_inputs)
        for k, v in ref.model_inputs.items():
            assert got.model_inputs[k].dtype == v.dtype and torch.equal(got.model_inputs[k], v), k
    assert cache.misses >= 3 and (cache.hits > 0)
    if size >= 3:
        assert cache.misses == 3  # each image decoded and preprocessed once


def test_image_input_cache_needs_a_positive_size() -> None:
    from vlmlab.models.hf_encode import ImageInputCache

    with pytest.raises(ValueError, match="size"):
        ImageInputCache(0)


@pytest.mark.parametrize("family", ["qwen2-vl", "gemma3", "blip2"])
def test_target_only_logits_equal_full_logits(family: str, tiny_model, colour_image_factory) -> None:
    from vlmlab.models.base import ScoreRequest, Turn
    from vlmlab.models.hf import HFBackend

    images = [colour_image_factory(rgb) for rgb in [(220, 30, 30), (30, 200, 40), (40, 60, 230)]]
    convs = _image_convs(images) if family != "blip2" else [[Turn("user", [im, "What colour is it?"])] for im in images]
    reqs = [ScoreRequest(id=str(i), conversation=c, target=t) for i, (c, t) in enumerate(zip(convs, ["red", "a green circle", "7", "blue"]))]
    fast = HFBackend(tiny_model(family), dtype="float32", batch_size=4)
    full = HFBackend(tiny_model(family), dtype="float32", batch_size=4, vision_cache=False, image_input_cache=False)
    full._keeps_logits = False  # the full-logits path
    assert fast._keeps_logits == (family != "blip2")  # BLIP-2's forward takes no logits_to_keep
    for a, b in zip(fast.score(reqs), full.score(reqs)):
        assert a.status == b.status == "ok" and a.token_ids == b.token_ids
        np.testing.assert_allclose(a.token_logprobs, b.token_logprobs, atol=1e-5)


def test_beam_search_fast_score_path_equals_plain_path(tiny_model, toy_support) -> None:
    """All score-path speed-ups on (vision features, image inputs, target-only logits, pixels left
    out once features are cached) give the beams of the plain path, cold and warm."""
    from vlmlab.models.hf import HFBackend

    split = load_split(data_config(toy_support))
    anchor = split.records[2]
    pool = [r for r in split.records if r.question_id != anchor.question_id][:5]
    fast = HFBackend(tiny_model("qwen2-vl"), dtype="float32", batch_size=8)
    plain = HFBackend(tiny_model("qwen2-vl"), dtype="float32", batch_size=8, vision_cache=False, image_input_cache=False)
    plain._keeps_logits = False
    ref = beam_search(plain, anchor, pool, beam_size=3, shots=2)
    for _ in range(2):  # cold caches, then warm (every batch then skips pixel values)
        got = beam_search(fast, anchor, pool, beam_size=3, shots=2)
        assert [b.positions for b in got.beams] == [b.positions for b in ref.beams]
        assert np.allclose([b.step_scores for b in got.beams], [b.step_scores for b in ref.beams], atol=1e-6)
        assert got.base_prob == pytest.approx(ref.base_prob, abs=1e-6)
    assert fast.image_inputs is not None and fast.image_inputs.misses == len({r.image.sha256 for r in [anchor, *pool]})
    assert fast.vision_cache_hits > 0


@pytest.mark.parametrize("keeps_logits", [True, False])
def test_score_eos_adds_the_end_of_turn_token_to_the_infoscore(keeps_logits: bool, tiny_model, toy_support) -> None:
    """`score_eos` (upstream `add_eos_token=True`): P(y|...) covers the answer and then the template's
    end-of-turn token, on both HF score paths; off, the answer tokens only (the earlier behaviour)."""
    from vlmlab.models.hf import HFBackend
    from vlmlab.models.hf_encode import encode_conversation

    split = load_split(data_config(toy_support))
    anchor, pool = _anchor_pool(split, k=2)
    backend = HFBackend(tiny_model("qwen2-vl"), dtype="float32", batch_size=4)
    backend._keeps_logits = keeps_logits
    without, with_eos = backend.score([score_request("a", pool, anchor), score_request("b", pool, anchor, score_eos=True)])
    enc = encode_conversation(backend.processor, score_request("c", pool, anchor).conversation, score_request("c", pool, anchor).target)
    end_of_turn = enc.input_ids[enc.target_slice.stop : enc.label_slice.stop].tolist()
    assert len(end_of_turn) >= 1 and with_eos.token_ids == without.token_ids + end_of_turn
    np.testing.assert_allclose(with_eos.token_logprobs[: len(without.token_logprobs)], without.token_logprobs, atol=1e-5)
    assert backend.processor.tokenizer.decode(end_of_turn).strip().startswith("<|im_end|>")
    # the beam search passes it through: base P(y|x) is the geometric mean over answer + end of turn
    res = beam_search(backend, anchor, pool, beam_size=1, shots=1, score_eos=True)
    base = backend.score([score_request("x", [], anchor, score_eos=True)])[0]
    assert res.base_prob == pytest.approx(float(np.exp(base.mean_logprob)))
