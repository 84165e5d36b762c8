"""Training checkpoints that survive SIGKILL: written to a temp folder, then renamed.

A checkpoint folder `checkpoints/step-00000040/` holds:

- `trainable.safetensors`: every trainable parameter by name (the LoRA adapter, or the whole model
  for full fine-tuning);
- `optimizer.pt`: `{"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}`,
  only tensors and plain values, saved with `torch.save` and loaded with `weights_only=True`;
- `rng-rank{r}.pt`: each rank's torch RNG states (dropout is the only randomness in training);
- `state.json`: the step counter, the loss history so far and the training fingerprint.

The folder only gets its final name once all files are written, so a crash mid-save leaves a
`.tmp` folder that is ignored (and removed on the next save), never a half checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from vlmlab.errors import CheckpointError

_PREFIX = "step-"


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"{_PREFIX}{step:08d}"


def tmp_checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"{_PREFIX}{step:08d}.tmp"


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under `root`, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        name = path.name
        if not name.startswith(_PREFIX) or not name[len(_PREFIX) :].isdigit():
            continue
        if (path / "state.json").is_file():
            found.append((int(name[len(_PREFIX) :]), path))
    return sorted(found)


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def rng_state() -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"cuda{i}"] = s
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["cpu"])
    if torch.cuda.is_available():
        cuda = [state[k] for k in sorted(state) if k.startswith("cuda")]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters by name, detached and contiguous on CPU (safetensors-ready)."""
    return {n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad}


def write_rank_files(tmp_dir: Path, rank: int) -> None:
    """Each rank writes its RNG state into the checkpoint being built."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), tmp_dir / f"rng-rank{rank}.pt")


def finish_checkpoint(
    root: Path,
    step: int,
    *,
    model: torch.nn.Module,
    optimizer_state: dict[str, Any],
    scheduler_state: dict[str, Any],
    state: dict[str, Any],
    keep: int,
) -> Path:
    """Main process: write weights, optimizer and state into the temp folder, rename it, prune old ones."""
    tmp = tmp_checkpoint_dir(root, step)
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save({"optimizer": optimizer_state, "scheduler": scheduler_state}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state))
    for name in os.listdir(tmp):
        with open(tmp / name, "rb") as fh:
            os.fsync(fh.fileno())
    final = checkpoint_dir(root, step)
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    dir_fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    for _, old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(f"{_PREFIX}*.tmp"):
        if stale != tmp:
            shutil.rmtree(stale, ignore_errors=True)
    return final


def load_checkpoint(path: Path, model: torch.nn.Module, rank: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Load weights into `model` (strictly) and this rank's RNG; return (optimizer, scheduler, state)."""
    saved = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    missing, unexpected = sorted(expected - saved.keys()), sorted(saved.keys() - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: checkpoint does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]}); "
            "resume with the same model and method, or start over with resume=False"
        )
    with torch.no_grad():
        for name, value in saved.items():
            params[name].copy_(value.to(params[name].dtype))
    opt = torch.load(path / "optimizer.pt", weights_only=True)
    rng_file = path / f"rng-rank{rank}.pt"
    if not rng_file.is_file():
        raise CheckpointError(f"{rng_file}: missing; the checkpoint was written by fewer processes than are resuming it")
    set_rng_state(torch.load(rng_file, weights_only=True))
    state = json.loads((path / "state.json").read_text())
    return opt["optimizer"], opt["scheduler"], state
