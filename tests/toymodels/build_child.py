"""A toy-model build for the kill/resume test: `python build_child.py CACHE_ROOT MARKER`.

Builds `RESUMABLE` with a checkpoint every 2 steps; after optimizer step 5 it writes MARKER and
sleeps, so the test can SIGKILL it at a known point (mid-stage, last checkpoint at step 4).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import vlmlab.train
from vlmlab.toymodels import ModelShape, Stage, ToyRecipe, build_toy_model
from vlmlab.toymodels import build as build_module
from vlmlab.train import StepLog

RESUMABLE = ToyRecipe(
    name="resumable", kind="icl-vqa", description="six steps of explicit VQA, for the resume test", data_size=60,
    shape=ModelShape(image_side=84), stages=(Stage(data="explicit", steps=6, learning_rate=1e-3, batch_size=4),),
)
PAUSE_AT = 5


def main(cache_root: Path, marker: Path) -> None:
    real = vlmlab.train.fine_tune

    def pausing(*args: Any, **kwargs: Any) -> Any:
        def on_log(log: StepLog) -> None:
            if log.step == PAUSE_AT:
                marker.write_text(str(log.step))
                time.sleep(600)

        return real(*args, **kwargs, on_log=on_log)

    build_module.CHECKPOINT_EVERY = 2
    vlmlab.train.fine_tune = pausing
    build_toy_model(RESUMABLE, cache_root=cache_root, progress=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
