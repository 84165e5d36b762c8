"""Selector training resumes mid-run (after an exception or a real SIGKILL) and ends with the same
checkpoint bytes, CSV logs and metrics as an uninterrupted run; a resume state of another config or
other data is refused, never used silently."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vlmlab.errors import CheckpointError
from vlmlab.icl.selectors import train as train_module
from vlmlab.icl.selectors import train_selector
from vlmlab.icl.selectors.checkpoint import RESUME_DIR, RESUME_META, read_resume_state

OUTPUTS = ("selector.safetensors", "selector.json", "train_log.csv", "eval_log.csv")
# v4 with every phase: 2 supervised epochs, 2 RCE, 2 GRPO; 6 batches per epoch (192 train anchors),
# GRPO takes 2 updates per batch: optimiser steps 0-11 supervised, 12-23 RCE, 24-47 GRPO.
V4 = dict(epochs=2, rce_epochs=2, grpo_epochs=2, dropout=0.1)


class Crash(Exception):
    """Stands in for a crash in the middle of an optimiser step."""


def _crash_at_step(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Make the `step`-th optimiser step (0-based) raise, half-way through an epoch's work."""
    real_step = train_module._step
    calls = {"n": 0}

    def step_or_crash(*args, **kwargs):
        if calls["n"] == step:
            raise Crash(f"crash at optimiser step {step}")
        calls["n"] += 1
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "_step", step_or_crash)


def _assert_same_outputs(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"
    assert not (b / RESUME_DIR).exists(), "the resume folder is removed once training completes"


_UNINTERRUPTED: dict[str, tuple] = {}


@pytest.fixture
def reference(make_config, data, tmp_path_factory):
    """`reference("v4")` -> (config, report, folder) of an uninterrupted run, trained once per module."""

    def get(version: str) -> tuple:
        if version not in _UNINTERRUPTED:
            cfg = make_config("v4", **V4) if version == "v4" else make_config(version, epochs=4 if version == "v3" else 2, dropout=0.1)
            folder = tmp_path_factory.mktemp(f"uninterrupted-{version}")
            _UNINTERRUPTED[version] = (cfg, train_selector(cfg, data, folder, progress=False), folder)
        return _UNINTERRUPTED[version]

    return get


def _interrupt(monkeypatch, cfg, data, out, at_step: int) -> None:
    """Train until optimiser step `at_step` crashes (a resume state of the finished epochs is left)."""
    _crash_at_step(monkeypatch, at_step)
    with pytest.raises(Crash):
        train_selector(cfg, data, out, progress=False)
    monkeypatch.undo()


@pytest.mark.parametrize(
    ("version", "crash_step", "epochs_saved"),
    [
        ("v0", 9, {"supervised": 1}),  # GPT-2 (transformers dropout), in supervised epoch 1 of 2
        ("v3", 15, {"supervised": 2}),  # in supervised epoch 2 of 4
        ("v4", 12, {"supervised": 2}),  # first RCE step: the state has no reference model yet
        ("v4", 21, {"supervised": 2, "rce": 1}),  # in RCE epoch 1
        ("v4", 40, {"supervised": 2, "rce": 2, "grpo": 1}),  # in GRPO epoch 1 (reference, β, RL optimizer)
    ],
)
def test_interrupted_training_resumes_to_identical_outputs(reference, data, tmp_path, monkeypatch, version, crash_step, epochs_saved):
    cfg, full, full_dir = reference(version)
    out = tmp_path / "run"
    _interrupt(monkeypatch, cfg, data, out, at_step=crash_step)
    assert not (out / "selector.safetensors").exists()
    tensors, meta = read_resume_state(out / RESUME_DIR)
    assert meta["epochs_done"] == epochs_saved
    assert ("reference.scale.log_scale" in tensors) == ("rce" in epochs_saved)
    assert len(list((out / RESUME_DIR).glob("state-*.safetensors"))) == 1  # older states are pruned

    resumed = train_selector(cfg, data, out, progress=True)
    assert resumed.resumed_epochs == sum(epochs_saved.values())
    assert resumed.steps == full.steps and resumed.evals == full.evals and resumed.final == full.final
    _assert_same_outputs(full_dir, out)


def test_sigkilled_training_subprocess_resumes_to_identical_outputs(reference, data, tmp_path):
    """A real process killed with SIGKILL (no cleanup) part-way through v4 training, then finished here."""
    cfg, full, full_dir = reference("v4")
    out = tmp_path / "killed"
    script = tmp_path / "train_main.py"
    # the same data as the `data` fixture; each epoch's held-out evaluation is slowed so that the
    # test can kill the process between two epochs, after a state exists and before the end
    script.write_text(
        "import sys, time, json, torch\n"
        "torch.set_num_threads(1)  # as in conftest.py: same kernels, same bits\n"
        "from vlmlab.icl.selectors import SelectorConfig, SelectorData, train_selector\n"
        "from vlmlab.icl.selectors import train as train_module\n"
        "from vlmlab.testing.selector_world import synthetic_task\n"
        "real_evaluate = train_module.evaluate\n"
        "def slow_evaluate(*args, **kwargs):\n"
        "    time.sleep(0.4)\n"
        "    return real_evaluate(*args, **kwargs)\n"
        "train_module.evaluate = slow_evaluate\n"
        "task = synthetic_task(n_anchors=240, support_size=400, pool_size=16, dim=16, shots=2, seed=0)\n"
        "data = SelectorData.from_records(task.beams, task.support_ids, task.support_emb, rl=task.rl, dataset='synthetic')\n"
        "cfg = SelectorConfig.model_validate(json.loads(sys.argv[2]))\n"
        "train_selector(cfg, data, sys.argv[1], progress=False)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(out), cfg.model_dump_json()],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    meta_path = out / RESUME_DIR / RESUME_META
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if meta_path.exists() and sum(json.loads(meta_path.read_text())["epochs_done"].values()) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "selector.safetensors").exists()
    done = sum(read_resume_state(out / RESUME_DIR)[1]["epochs_done"].values())
    assert 3 <= done < 6

    resumed = train_selector(cfg, data, out, progress=False)
    assert resumed.resumed_epochs == done
    assert resumed.steps == full.steps and resumed.evals == full.evals
    _assert_same_outputs(full_dir, out)


def test_a_resume_state_of_another_config_or_data_is_refused(make_config, data, tmp_path, monkeypatch):
    cfg = make_config("v2", epochs=3)
    out = tmp_path / "run"
    _interrupt(monkeypatch, cfg, data, out, at_step=8)
    with pytest.raises(CheckpointError, match=r"another selector config \(differs in: lr \(0\.003 -> 0\.001\)\); delete .*resume"):
        train_selector(make_config("v2", epochs=3, lr=1e-3), data, out, progress=False)
    other = data.subset(range(1, len(data)))  # same support set, one anchor fewer
    with pytest.raises(CheckpointError, match="trained on other data .*different anchors"):
        train_selector(cfg, other, out, progress=False)
    assert (out / RESUME_DIR / RESUME_META).exists()  # a refused state is left alone

    fresh = train_selector(make_config("v2", epochs=3, lr=1e-3), data, out, progress=False, resume=False)
    assert fresh.resumed_epochs == 0
    assert not (out / RESUME_DIR).exists()
    clean = train_selector(make_config("v2", epochs=3, lr=1e-3), data, tmp_path / "clean", progress=False)
    assert fresh.steps == clean.steps
    assert (out / "selector.safetensors").read_bytes() == (tmp_path / "clean" / "selector.safetensors").read_bytes()


def test_a_torn_or_corrupt_resume_state_is_an_error_not_a_silent_restart(make_config, data, tmp_path, monkeypatch):
    cfg = make_config("v1", epochs=2)
    out = tmp_path / "run"
    _interrupt(monkeypatch, cfg, data, out, at_step=8)
    tensor_file = next((out / RESUME_DIR).glob("state-*.safetensors"))
    tensor_file.write_bytes(tensor_file.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="does not match the sha256 recorded in"):
        train_selector(cfg, data, out, progress=False)
    report = train_selector(cfg, data, out, progress=False, resume=False)
    assert report.resumed_epochs == 0 and (out / "selector.safetensors").exists()


def test_temp_files_of_a_write_killed_before_its_rename_are_ignored(make_config, data, tmp_path, monkeypatch):
    cfg = make_config("v1", epochs=2)
    out = tmp_path / "run"
    _interrupt(monkeypatch, cfg, data, out, at_step=8)
    (out / RESUME_DIR / ".state.json.abc123.tmp").write_text('{"format": "torn')
    (out / RESUME_DIR / ".state-0123456789abcdef.safetensors.abc123.tmp").write_bytes(b"\0" * 10)
    resumed = train_selector(cfg, data, out, progress=False)
    clean = train_selector(cfg, data, tmp_path / "clean", progress=False)
    assert resumed.resumed_epochs == 1 and resumed.steps == clean.steps
    _assert_same_outputs(tmp_path / "clean", out)


def test_the_train_stage_resumes_an_interrupted_run(tmp_path, candidates_run, index_run, toy_backend, monkeypatch):
    """`icl train` re-run on the same folder continues the interrupted selector and matches a clean run."""
    from vlmlab.icl.configs import BackendConfig, BeamConfig, TrainStageConfig
    from vlmlab.icl.stages import run_beam
    from vlmlab.icl.train_stage import run_train

    beams = run_beam(BeamConfig(candidates=candidates_run, scorer=BackendConfig(ref="unused"), beam_size=3, shots=2), tmp_path / "beam", backend=toy_backend)
    config = TrainStageConfig(index=index_run, beams=beams, selector={"version": "v3", "hidden_dim": 16, "pool_size": 8, "epochs": 3, "batch_size": 2, "val_fraction": 0.25})
    clean = run_train(config, tmp_path / "clean")
    _crash_at_step(monkeypatch, 6)  # 8 training anchors, batches of 2: half-way through epoch 1 of 3
    with pytest.raises(Crash):
        run_train(config, tmp_path / "train")
    monkeypatch.undo()
    assert read_resume_state(tmp_path / "train" / RESUME_DIR)[1]["epochs_done"] == {"supervised": 1}
    folder = run_train(config, tmp_path / "train")
    _assert_same_outputs(clean, folder)
    metrics = lambda p: {k: v for k, v in json.loads((p / "metrics.json").read_text()).items() if k != "seconds"}  # noqa: E731
    assert metrics(folder) == metrics(clean)
