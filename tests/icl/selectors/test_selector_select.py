"""`select` and the networks: per-query masks, batch == one-by-one, masking of earlier picks."""

from __future__ import annotations

import pytest
import torch

from vlmlab.errors import DataError
from vlmlab.icl.selectors import build_selector, select

VERSIONS = ["v0", "v1", "v2", "v4"]


def _inputs(b: int = 6, k: int = 16, d: int = 16, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(b, d, generator=g)
    pool = torch.randn(b, k, d, generator=g)
    mask = torch.ones(b, k, dtype=torch.bool)
    for i in range(b):  # pools of different sizes, padded at the end and with holes
        mask[i, k - i :] = False
        if i % 2:
            mask[i, 1] = False
    return query, pool, mask


@pytest.mark.parametrize("version", VERSIONS)
def test_batched_selection_equals_one_by_one(make_config, version):
    model = build_selector(make_config(version, num_layers=2, num_heads=2) if version != "v1" else make_config(version))
    query, pool, mask = _inputs()
    batched = select(model, query, pool, shots=3, pool_mask=mask)
    for i in range(len(query)):
        alone = select(model, query[i : i + 1], pool[i : i + 1], shots=3, pool_mask=mask[i : i + 1])
        assert batched[i].tolist() == alone[0].tolist()
        if version != "v0":  # pointer nets read content only: a compacted pool gives the same items
            kept = mask[i].nonzero().flatten()
            trimmed = select(model, query[i : i + 1], pool[i : i + 1, kept], shots=3)
            assert [int(kept[p]) for p in trimmed[0]] == batched[i].tolist()
    for i, row in enumerate(batched.tolist()):
        assert len(set(row)) == 3 and all(mask[i, p] for p in row)


@pytest.mark.parametrize("version", ["v0", "v2"])
def test_icds_chosen_for_one_query_are_not_forbidden_for_another(make_config, version):
    model = build_selector(make_config(version))
    query, pool, _ = _inputs(b=1)
    same = select(model, query.repeat(4, 1), pool.repeat(4, 1, 1), shots=2)
    assert all(row == same[0].tolist() for row in same.tolist())


def test_teacher_forced_logits_mask_earlier_picks_and_padding(make_config):
    model = build_selector(make_config("v2"))
    query, pool, mask = _inputs(b=2)
    seqs = torch.tensor([[[3, 5]], [[0, 2]]])
    logits = model.sequence_logits(query, pool, mask, seqs)
    assert logits.shape == (2, 1, 2, 16)
    assert logits[0, 0, 1, 3] == float("-inf") and torch.isfinite(logits[0, 0, 0, 3])
    assert logits[1, 0, 1, 0] == float("-inf") and logits[1, 0, 0, 1] == float("-inf")  # hole at 1
    assert logits[1, 0, 0, 15] == float("-inf")  # padding
    assert torch.isfinite(logits[1, 0, 0, 2])


def test_bad_select_requests_are_clear_errors(make_config):
    model = build_selector(make_config("v1"))
    query, pool, mask = _inputs(b=3)
    with pytest.raises(DataError, match=r"shots=15 but the pools of queries \[1, 2\] have only 14 candidates"):
        select(model, query, pool, shots=15, pool_mask=mask)
    with pytest.raises(DataError, match="shots=17"):
        select(model, query, pool, shots=17)
    with pytest.raises(DataError, match="embedding_dim 16"):
        select(model, query[:, :8], pool[:, :, :8], shots=1)
    v0 = build_selector(make_config("v0"))
    with pytest.raises(DataError, match="exceeds this v0 selector's pool_size 16"):
        select(v0, query, torch.cat([pool, pool], 1), shots=1)
