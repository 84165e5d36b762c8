"""The science and the crash safety of the study on toy panoramas with a tiny Qwen2-VL.

- fine-tuning lowers the training loss, and CIDEr on held-out panoramas after fine-tuning is clearly
  above before (measured: loss 6.5 -> 0.65 over 120 steps; per-row CIDEr 0.00 -> 0.81, grouped
  0.00 -> 1.06, ~20 s on one CPU thread; the random-init "before" model emits EOS first, so its
  run is also the live example of a `degraded` run);
- `vlmlab caption run` killed with SIGKILL during training and again during generation, then
  re-run (the last time with `--gpus 0`: one child process per model), finishes with training
  resumed from its checkpoint, every test pair generated exactly once, and the same predictions as
  a fresh generation with the trained model.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CHILD_ENV
from vlmlab.caption.config import CaptionConfig
from vlmlab.config import load_config

# Full fine-tuning: the tiny model starts from random weights, so a LoRA adapter on it learns slowly.
LEARN = {"enabled": True, "method": "full", "learning_rate": 1e-2, "max_steps": 120, "batch_size": 8, "max_length": 128,
         "scheduler": "constant", "warmup_ratio": 0.0, "save_every": 1000}


@pytest.mark.slow
def test_fine_tuning_lowers_loss_and_lifts_cider_on_held_out_panoramas(write_config, tiny_caption_model: Path) -> None:
    from vlmlab.caption.study import run_study

    path = write_config(
        models=[{"name": "before", "path": str(tiny_caption_model), "finetune": False},
                {"name": "after", "path": str(tiny_caption_model)}],
        data={"max_test_pairs": 12}, finetune=LEARN, generation={"max_new_tokens": 12, "batch_size": 12},
        scoring={"metrics": ["BLEU", "ROUGE-L", "CIDEr"], "human": False},
    )
    config = load_config(path, CaptionConfig)
    outcome = run_study(config)
    assert outcome.statuses["after"] == "complete" and not outcome.failed
    result = json.loads((config.model_dir(config.models[1]) / "finetune" / "result.json").read_text())
    losses = result["losses"]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    before = json.loads((config.model_dir(config.models[0]) / "score" / "metrics.json").read_text())["modes"]
    after = json.loads((config.model_dir(config.models[1]) / "score" / "metrics.json").read_text())["modes"]
    print(f"loss {first:.3f} -> {last:.3f}; per-row CIDEr {before['per-row']['CIDEr']:.3f} -> {after['per-row']['CIDEr']:.3f}; "
          f"grouped CIDEr {before['grouped']['CIDEr']:.3f} -> {after['grouped']['CIDEr']:.3f}")
    assert last < 0.3 * first
    for mode in ("per-row", "grouped"):
        assert after[mode]["CIDEr"] > before[mode]["CIDEr"] + 0.3
        assert after[mode]["empty_prediction_rate"] == 0.0


def _start(config: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, **CHILD_ENV}
    return subprocess.Popen([sys.executable, "-m", "vlmlab", "caption", "run", str(config)], env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def _kill_when(proc: subprocess.Popen, ready, log: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before it could be killed:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "timed out waiting for the moment to kill"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_the_whole_run_resumes_after_sigkill_in_training_and_in_generation(write_config, tiny_caption_model: Path,
                                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(
        models=[{"name": "tiny", "path": str(tiny_caption_model)}],
        data={"max_test_pairs": 12, "max_train_rows": 80},
        finetune={**LEARN, "max_steps": 20, "save_every": 4},
        generation={"max_new_tokens": 12, "batch_size": 1},
        scoring={"metrics": ["BLEU", "CIDEr"], "human": False},
    )
    model_dir = tmp_path / "runs" / "study" / "tiny_img56_tok12"
    checkpoints = model_dir / "finetune" / "checkpoints"
    ledger = model_dir / "generate" / "ledger.jsonl"
    log = tmp_path / "child.log"

    proc = _start(config, log)  # 1: killed in training, after a checkpoint exists
    _kill_when(proc, lambda: checkpoints.is_dir() and any(not p.name.endswith(".tmp") for p in checkpoints.glob("step-*")), log)
    assert not (model_dir / "finetune" / "result.json").exists()

    proc = _start(config, log)  # 2: killed in generation, after some items were written
    _kill_when(proc, lambda: ledger.is_file() and ledger.read_text().count("\n") >= 3, log)
    done_before = ledger.read_text().count("\n")
    assert done_before < 12

    # 3: runs to the end, through `--gpus 0`: the model runs in its own child process (CPU here). The
    # parent refuses GPU ids the machine lacks, so it is told of one GPU; the child sees the real machine.
    for key, value in CHILD_ENV.items():
        monkeypatch.setenv(key, value)
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    from vlmlab.cli import main

    try:
        main(["caption", "run", str(config), "--gpus", "0"])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 0, (model_dir / "process.log").read_text()[-3000:]

    result = json.loads((model_dir / "finetune" / "result.json").read_text())
    assert result["resumed_from_step"] is not None and result["resumed_from_step"] % 4 == 0 and result["steps"] == 20
    assert (model_dir / "process.log").is_file()  # the child process wrote its own log
    records = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert len(records) == 12 and len({r["id"] for r in records}) == 12
    with open(model_dir / "generate" / "predictions.csv", newline="") as fh:
        predictions = list(csv.DictReader(fh))
    info = json.loads((model_dir / "model.json").read_text())
    assert info["status"] in ("complete", "degraded") and (model_dir / "score" / "metrics.json").is_file()

    # the resumed predictions equal a fresh, uninterrupted generation with the trained model
    from vlmlab.caption.study import prepare_data
    from vlmlab.caption.data import build_conversation
    from vlmlab.caption.images import ImagePreparer
    from vlmlab.models.base import GenerationRequest
    from vlmlab.models.hf import HFBackend

    study = load_config(config, CaptionConfig)
    shared = prepare_data(study)
    prep = ImagePreparer(shared.folder / "images", policy="squash", size=56)
    backend = HFBackend(model_dir / "finetune" / "model", batch_size=4)
    fresh = backend.generate([GenerationRequest(id=r.id, conversation=build_conversation(prep(r.image), r.query), max_new_tokens=12)
                              for r in shared.test])
    assert [p["prediction"] for p in predictions] == [r.text if r.status == "ok" else "" for r in fresh]
