"""Fine-tune under `torchrun` (or in one process) for the data-parallel test: `ddp_child.py MODEL OUT BATCH`."""

from __future__ import annotations

import sys
from pathlib import Path

import PIL.Image

from vlmlab.data.images import Image
from vlmlab.models.base import Turn
from vlmlab.train import TrainExample, fine_tune

COLOURS = ["red", "green", "blue", "yellow"]


def main(model: str, out: str, batch: str) -> None:
    images = {c: Image.from_pil(PIL.Image.new("RGB", (56, 56), c)) for c in COLOURS}
    examples = [TrainExample(f"ex{i}", [Turn("user", [images[c], "What is the colour?"])], c)
                for i, c in enumerate(COLOURS * 3)]
    fine_tune(Path(model), examples, Path(out), method="lora", target_modules=["q_proj", "v_proj"], lora_r=4,
              lora_dropout=0.0, learning_rate=1e-2, max_steps=3, batch_size=int(batch), max_length=64,
              save_every=2, keep_final_checkpoints=True, show_progress=False)


if __name__ == "__main__":
    main(*sys.argv[1:])
