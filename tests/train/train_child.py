"""A fine-tuning process for the crash/resume test: `python train_child.py MODEL OUT [PAUSE_AT MARKER]`.

With PAUSE_AT, the process writes MARKER after optimizer step PAUSE_AT and then sleeps, so the
test can SIGKILL it at a known point (mid-training, after a checkpoint).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import PIL.Image

from vlmlab.data.images import Image
from vlmlab.models.base import Turn
from vlmlab.train import StepLog, TrainExample, fine_tune

COLOURS = ["red", "green", "blue", "yellow"]
SETTINGS = dict(method="lora", target_modules=["q_proj", "v_proj"], lora_r=4, lora_alpha=8, lora_dropout=0.2,
                learning_rate=1e-2, max_steps=10, batch_size=4, max_length=64, save_every=3, log_every=1,
                seed=7, show_progress=False)


def examples() -> list[TrainExample]:
    images = {c: Image.from_pil(PIL.Image.new("RGB", (56, 56), c)) for c in COLOURS}
    return [TrainExample(f"ex{i}", [Turn("user", [images[c], "What is the colour?"])], c) for i, c in enumerate(COLOURS * 3)]


def main(argv: list[str]) -> None:
    model, out = Path(argv[0]), Path(argv[1])
    pause_at = int(argv[2]) if len(argv) > 2 else 0
    marker = Path(argv[3]) if len(argv) > 3 else None

    def on_log(log: StepLog) -> None:
        if log.step == pause_at and marker is not None:
            marker.write_text(str(log.step))
            time.sleep(600)

    result = fine_tune(model, examples(), out, on_log=on_log, **SETTINGS)
    print(f"done steps={result.steps} resumed_from={result.resumed_from_step}")


if __name__ == "__main__":
    main(sys.argv[1:])
