"""Candidate pools: size, determinism, mix ratios, anchor excluded by id even when images repeat."""

from __future__ import annotations

import numpy as np
import pytest

from vlmlab.errors import ConfigError, DataError
from vlmlab.icl.candidates import build_pools, choose_anchors, mix_counts
from vlmlab.icl.index import SupportIndex, nearest


def _index(m: int = 40, dup_every: int = 4, seed: int = 0) -> SupportIndex:
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(m, 8)).astype(np.float32)
    image = rng.normal(size=(m, 6)).astype(np.float32)
    image[1::dup_every] = image[0::dup_every][: len(image[1::dup_every])]  # pairs of questions share an image
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    return SupportIndex(ids=[f"q{i}" for i in range(m)], text=text, image=image)


@pytest.mark.parametrize("sampler", ["random", "text", "image", "mix"])
def test_pools_have_k_distinct_items_never_the_anchor(sampler: str) -> None:
    index = _index()
    anchors = list(range(40))
    pools = build_pools(index, anchors, sampler, k=10, seed=3)
    for a, pool in zip(anchors, pools):
        assert len(pool) == 10 and len(set(pool)) == 10
        assert a not in pool


def test_anchor_excluded_by_id_when_another_question_has_the_same_image() -> None:
    index = _index()
    # anchor 1 has the same image as question 0: rank 0 of its image search may be question 0 or itself
    top = nearest(index.image[[1]], index.image, 2)
    assert set(top[0].tolist()) == {0, 1}
    pool = build_pools(index, [1], "image", k=5, seed=0)[0]
    assert 1 not in pool and 0 in pool  # the other question on the same image is a fair candidate


def test_pools_do_not_depend_on_anchor_order_and_are_seeded() -> None:
    index = _index()
    a = build_pools(index, [3, 7, 11], "mix", k=8, seed=5)
    b = build_pools(index, [11, 3, 7], "mix", k=8, seed=5)
    assert a == [b[1], b[2], b[0]]
    c = build_pools(index, [3, 7, 11], "mix", k=8, seed=6)
    assert c != a


def test_mix_takes_half_random_quarter_text_quarter_image() -> None:
    assert mix_counts(64, {"random": 0.5, "text": 0.25, "image": 0.25}) == {"random": 32, "text": 16, "image": 16}
    assert sum(mix_counts(7, {"random": 0.5, "text": 0.25, "image": 0.25}).values()) == 7
    index = _index()
    pool = build_pools(index, [5], "mix", k=8, seed=0)[0]
    text_top = nearest(index.text[[5]], index.text, 2, exclude=[[5]])[0].tolist()
    assert pool[:2] == text_top


def test_k_larger_than_support_and_bad_names() -> None:
    index = _index(m=10)
    with pytest.raises(DataError, match="K=10"):
        build_pools(index, [0], "random", k=10, seed=0)
    with pytest.raises(ConfigError, match="did you mean 'mix'"):
        build_pools(index, [0], "mixx", k=3, seed=0)
    with pytest.raises(DataError, match="anchors"):
        choose_anchors(10, 11, seed=0)
