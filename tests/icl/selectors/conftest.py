"""Fixtures for the selector tests: a synthetic task with a learnable right answer.

Torch runs single-threaded here: the selectors are tiny, and on a shared 2-core machine thread
contention made each step ~25x slower.
"""

from __future__ import annotations

from typing import Iterator

import pytest
import torch

from vlmlab.icl.selectors import SelectorConfig, SelectorData
from vlmlab.testing.selector_world import SyntheticTask, synthetic_task

DIM, POOL, SHOTS = 16, 16, 2


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def task() -> SyntheticTask:
    return synthetic_task(n_anchors=240, support_size=400, pool_size=POOL, dim=DIM, shots=SHOTS, seed=0)


@pytest.fixture(scope="session")
def data(task: SyntheticTask) -> SelectorData:
    return SelectorData.from_records(task.beams, task.support_ids, task.support_emb, rl=task.rl, dataset="synthetic")


def small_config(version: str, **overrides) -> SelectorConfig:
    """A tiny selector config that learns the synthetic task in about a second."""
    base = dict(
        version=version,
        embedding_dim=DIM,
        hidden_dim=32,
        pool_size=POOL,
        shots=SHOTS,
        dropout=0.0,
        epochs=15,
        batch_size=32,
        lr=3e-3,
        val_fraction=0.2,
    )
    base.update(overrides)
    return SelectorConfig(**base)


@pytest.fixture
def make_config():
    """`make_config("v2", epochs=3)` -> a tiny `SelectorConfig` for the synthetic task."""
    return small_config
