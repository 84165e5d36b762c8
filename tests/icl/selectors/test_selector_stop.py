"""The STOP-token pointer variant (upstream Lever-Plus v4-10, `stop_token: true`): its targets, its
masks, its checkpoint, and that it learns when a query needs no demonstration (synthetic world)."""

from __future__ import annotations

import itertools

import pytest
import torch

from vlmlab.errors import CheckpointError
from vlmlab.icl.selectors import SelectorData, build_selector, load_selector, select, train_selector
from vlmlab.icl.selectors.inference import until_stop
from vlmlab.icl.selectors.objectives import stop_targets
from vlmlab.testing.selector_world import synthetic_task


def test_stop_targets_keep_the_prefix_worth_its_picks() -> None:
    steps = torch.tensor([[0.3, 0.2], [-0.1, 0.5], [-0.2, -0.1], [0.3, -0.05], [0.0, 0.0], [0.1, 0.05]])
    positions = torch.tensor([[4, 2]] * len(steps))
    for min_gain in (0.0, 0.08):
        targets, kept = stop_targets(positions, steps, min_gain, stop_index=9)
        for row, (s, t, k) in enumerate(zip(steps.tolist(), targets.tolist(), kept.tolist())):
            value = [0.0, s[0] - min_gain, s[0] + s[1] - 2 * min_gain]  # brute force over L = 0, 1, 2
            best = max(range(3), key=lambda n: (round(value[n], 9), -n))  # ties: the shorter prefix
            assert t == [4, 2][:best] + [9] * (2 - best), (row, min_gain)
            assert k == pytest.approx(value[best])
    assert stop_targets(positions, steps, 0.0, 9)[0].tolist() == [[4, 2], [4, 2], [9, 9], [4, 9], [9, 9], [4, 2]]


def test_stop_is_allowed_every_step_and_then_forced(make_config) -> None:
    torch.manual_seed(0)
    for options in ({}, {"diversity": "mmr"}, {"scoring": "additive"}):
        model = build_selector(make_config("v2", pool_size=8, shots=3, stop_token=True, **options)).eval()
        query, pool, mask = torch.randn(4, 16), torch.randn(4, 6, 16), torch.ones(4, 6, dtype=torch.bool)
        sequences = torch.tensor([[[6, 6, 6], [1, 6, 6], [1, 2, 6], [1, 2, 3]]] * 4)
        logits = model.sequence_logits(query, pool, mask, sequences)
        assert logits.shape == (4, 4, 3, 7)
        assert torch.isfinite(logits[:, :, 0, :]).all()  # step 0: every item and STOP
        after = torch.tensor([[False, True, True], [False, False, True], [False, False, False], [False, False, False]])
        for g, s in itertools.product(range(4), range(3)):
            finite = torch.isfinite(logits[:, g, s])
            if after[g, s]:  # after a STOP: only STOP
                assert finite[:, 6].all() and not finite[:, :6].any()
            else:
                assert finite[:, 6].all()
        picks = model.greedy(query, pool, mask, 3)
        again = model.sequence_logits(query, pool, mask, picks[:, None, :])
        assert torch.equal(again[:, 0].argmax(dim=-1), picks)  # greedy = teacher-forced argmax, STOP included
        for row in picks.tolist():
            if 6 in row:
                assert all(p == 6 for p in row[row.index(6):])
        # a padded pool moves STOP to the new width; the real picks are the same
        padded = torch.cat([pool, torch.randn(4, 2, 16)], dim=1)
        pad_mask = torch.cat([mask, torch.zeros(4, 2, dtype=torch.bool)], dim=1)
        assert until_stop(model.greedy(query, padded, pad_mask, 3), 8) == until_stop(picks, 6)


def test_stop_runs_when_the_pool_is_smaller_than_shots(make_config) -> None:
    model = build_selector(make_config("v2", pool_size=8, shots=4, stop_token=True)).eval()
    mask = torch.tensor([[True, True, False, False, False]])
    picks = select(model, torch.randn(1, 16), torch.randn(1, 5, 16), 4, mask)
    assert len(until_stop(picks, 5)[0]) <= 2 and set(until_stop(picks, 5)[0]) <= {0, 1}


def test_stop_config_errors(make_config) -> None:
    with pytest.raises(ValueError, match="stop_min_gain only applies with stop_token"):
        make_config("v2", stop_min_gain=0.1)
    with pytest.raises(ValueError, match="stop_token and reverse_seq"):
        make_config("v2", stop_token=True, reverse_seq=True)
    with pytest.raises(ValueError, match="pointer-network options"):
        make_config("v0", stop_token=True)


def test_a_stop_checkpoint_is_refused_by_a_network_without_it(make_config, data, tmp_path) -> None:
    train_selector(make_config("v2", epochs=1, stop_token=True), data, tmp_path / "stop", progress=False)
    assert load_selector(tmp_path / "stop").config.stop_token
    with pytest.raises(CheckpointError, match="stop_token"):
        load_selector(tmp_path / "stop", config=make_config("v2", epochs=1))


def test_imported_beams_without_step_scores_cannot_teach_stop(make_config, task) -> None:
    beams = [{**b, "beams": [{**x, "step_scores": []} for x in b["beams"]]} for b in task.beams]
    data = SelectorData.from_records(beams, task.support_ids, task.support_emb, dataset="synthetic")
    with pytest.raises(Exception, match="step_scores"):
        train_selector(make_config("v2", epochs=1, stop_token=True), data, "unused", progress=False)


def test_stop_learns_which_queries_need_no_demonstration(make_config, tmp_path) -> None:
    """Synthetic world, 30% of the queries need no ICD (a hidden direction of the query embedding):
    on 120 held-out queries the STOP selector gives those fewer than 0.5 ICDs on average (measured 0.35) and the
    others about 2, and still finds their best ICD (top-1 far above chance)."""
    task = synthetic_task(n_anchors=400, support_size=400, pool_size=16, dim=16, shots=2, seed=0, stop_share=0.3)
    full = SelectorData.from_records(task.beams, task.support_ids, task.support_emb, dataset="synthetic")
    train, held = full.subset(range(280)), full.subset(range(280, 400))
    train_selector(make_config("v2", epochs=15, stop_token=True), train, tmp_path, progress=False)
    model = load_selector(tmp_path)
    rows = torch.arange(len(held))
    picks = until_stop(select(model, held.query_emb, held.pool_embeddings(rows), 2, held.pool_mask), held.pool_size)
    none = torch.tensor([a in task.needs_none for a in held.anchor_ids])
    shots = torch.tensor([len(p) for p in picks], dtype=torch.float32)
    some_rows = (~none).nonzero().flatten().tolist()
    top1 = sum(bool(picks[r]) and picks[r][0] == int(held.beam_positions[r, 0, 0]) for r in some_rows) / len(some_rows)
    print(f"\nSTOP (synthetic): need none {int(none.sum())} queries, mean shots {shots[none].mean():.2f}; "
          f"need two {len(some_rows)}, mean shots {shots[~none].mean():.2f}, top-1 {top1:.2f} (chance {1 / 16:.2f})")
    assert shots[none].mean() < 0.5 and shots[~none].mean() > 1.7
    assert top1 > 0.2  # measured 0.31; chance 1/16
