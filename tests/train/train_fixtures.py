"""Shared constants and builders of the fine-tuning tests (a module, so tests can import it by name)."""

from __future__ import annotations

from vlmlab.data.images import Image
from vlmlab.models.base import Turn
from vlmlab.train import TrainExample

# Small enough that a training step takes milliseconds; still the real Qwen2-VL architecture.
TINY = dict(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, num_kv_heads=1, vision_depth=1, vision_dim=32)
COLOURS = ["red", "green", "blue", "yellow"]


def colour_examples(images: dict[str, Image], repeats: int = 4) -> list[TrainExample]:
    """'What is the colour?' about a plain image, answered with its colour name."""
    return [
        TrainExample(f"ex{i}", [Turn("user", [images[c], "What is the colour?"])], c)
        for i, c in enumerate(COLOURS * repeats)
    ]
