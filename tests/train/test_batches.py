"""The sample schedule (a pure function of seed and step) and the learning-rate schedule."""

from __future__ import annotations

import math

import pytest

from vlmlab.train.batches import step_micro_batches, steps_per_epoch
from vlmlab.train.schedule import lr_multiplier


def flat(micro: list[list[list[int]]]) -> list[int]:
    return [i for ranks in micro for idx in ranks for i in idx]


@pytest.mark.parametrize(("n", "batch", "accum"), [(16, 4, 1), (17, 4, 2), (5, 8, 1), (30, 3, 4)])
def test_every_sample_once_per_epoch(n: int, batch: int, accum: int) -> None:
    per_epoch = steps_per_epoch(n, batch, accum)
    for epoch in range(2):
        seen = [i for s in range(epoch * per_epoch, (epoch + 1) * per_epoch)
                for i in flat(step_micro_batches(s, num_samples=n, batch_size=batch, grad_accum=accum, seed=3))]
        assert sorted(seen) == list(range(n))
    for s in range(per_epoch):
        micro = step_micro_batches(s, num_samples=n, batch_size=batch, grad_accum=accum, seed=3)
        assert 1 <= len(micro) <= accum and all(len(r[0]) <= batch for r in micro)


def test_order_depends_only_on_seed_and_step() -> None:
    kw = dict(num_samples=40, batch_size=4, grad_accum=2)
    a = [step_micro_batches(s, seed=1, **kw) for s in range(10)]
    assert a == [step_micro_batches(s, seed=1, **kw) for s in range(10)]
    assert a != [step_micro_batches(s, seed=2, **kw) for s in range(10)]
    assert flat(a[0]) != flat(a[5])  # epochs are reshuffled


def test_data_parallel_ranks_get_equal_disjoint_slices() -> None:
    n, batch, world = 10, 2, 2  # 10 samples, 4 per step: the last step is filled up
    per_epoch = steps_per_epoch(n, batch, 1, world)
    assert per_epoch == 3
    seen = []
    for s in range(per_epoch):
        micro = step_micro_batches(s, num_samples=n, batch_size=batch, grad_accum=1, seed=0, world_size=world)
        assert [len(r) for r in micro[0]] == [batch, batch]
        if s < per_epoch - 1:
            assert not set(micro[0][0]) & set(micro[0][1])
        seen += flat(micro)
    assert set(seen) == set(range(n)) and len(seen) == 12


@pytest.mark.parametrize("name", ["cosine", "linear", "constant"])
def test_lr_schedule_warms_up_then_decays(name: str) -> None:
    f = lr_multiplier(100, 0.1, name)
    warm = [f(s) for s in range(10)]
    assert warm == sorted(warm) and 0 < warm[0] < 0.2 and warm[-1] < 1
    assert f(10) == pytest.approx(1.0)
    end = {"cosine": 0.0, "linear": 0.0, "constant": 1.0}[name]
    assert f(100) == pytest.approx(end, abs=1e-9)
    if name == "cosine":
        assert f(55) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
