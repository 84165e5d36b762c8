"""Fixtures for the fine-tuning tests: tiny real-architecture VLMs and toy colour examples."""

from __future__ import annotations

from pathlib import Path

import PIL.Image
import pytest
from train_fixtures import COLOURS, TINY, colour_examples
from vlmlab.data.images import Image
from vlmlab.train import TrainExample


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread per process: on a shared 2-core machine, OpenMP threads of several test
    processes spin against each other (measured: a training step 20x slower with 2 threads)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vlmlab.models.tiny import build_tiny

    return build_tiny("qwen2-vl", tmp_path_factory.mktemp("tiny-qwen2-vl"), seed=0, **TINY)


@pytest.fixture(scope="session")
def colour_images() -> dict[str, Image]:
    return {c: Image.from_pil(PIL.Image.new("RGB", (56, 56), c)) for c in COLOURS}


@pytest.fixture()
def examples(colour_images: dict[str, Image]) -> list[TrainExample]:
    return colour_examples(colour_images)
