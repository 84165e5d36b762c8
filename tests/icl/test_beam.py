"""InfoScore beam search: telescoping, prefix reuse, batch invariance, ordering, ranking, costs."""

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
    anchor, pool = _anchor_pool(split)
    left = beam_search(toy_backend, anchor, pool, beam_size=1, shots=2, order="left").beams[0]
    right = beam_search(toy_backend, anchor, pool, beam_size=1, shots=2, order="right").beams[0]
    # greedy first pick is the same in both; the second goes in front (left) or next to the query (right)
    assert left.positions[1] == right.positions[0]
    # the toy model weights the demo next to the query most: the best first pick stays there under left
    assert len(set(left.positions)) == 2 and len(set(right.positions)) == 2


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
