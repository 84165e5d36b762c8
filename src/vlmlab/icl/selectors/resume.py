"""The resume state of `train_selector`: everything an epoch boundary carries, saved and restored.

Identical-after-resume needs every piece of state: weights, the optimizer in use (supervised or RL)
with its moments, the frozen reference model, adaptive β, the RCE step counter, the torch RNG
(dropout) and the numpy Generator (batch order), and the logs so far. A state is tied to the config
hash and a hash of all training data; one of another config or other data is refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from vlmlab.config import config_hash
from vlmlab.errors import CheckpointError
from vlmlab.icl.selectors.base import SelectorModel
from vlmlab.icl.selectors.config import SelectorConfig
from vlmlab.icl.selectors.data import SelectorData
from vlmlab.icl.selectors.registry import build_selector


class TrainLogs(Protocol):
    """The part of `train.TrainReport` a resume state saves and restores (no import of `train`)."""

    steps: list[dict[str, Any]]
    evals: list[dict[str, Any]]
    resumed_epochs: int


@dataclass
class TrainingState:
    """What changes while training, besides the logs; one resume state holds all of it.

    Attributes:
        model: the selector being trained.
        rng: the numpy Generator that orders batches (seeded by `data_seed`).
        optimizer: the optimizer in use; `optimizer_phase` says which (`supervised` or `rl`).
        reference: the frozen supervised model of the RL phases (None before them).
        beta: adaptive KL weight β of GRPO.
        rce_step: RCE steps taken (the temperature schedule's clock).
        epochs_done: finished epochs per phase (`supervised`, `rce`, `grpo`).
    """

    model: SelectorModel
    rng: np.random.Generator
    optimizer: torch.optim.Optimizer | None = None
    optimizer_phase: str = ""
    reference: SelectorModel | None = None
    beta: float = 0.0
    rce_step: int = 0
    epochs_done: dict[str, int] = field(default_factory=dict)

    def tensors(self) -> dict[str, Tensor]:
        """Weights, optimizer tensors and the torch RNG state (uint8), by prefixed name."""
        out = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.reference is not None:
            out.update({f"reference.{k}": v for k, v in self.reference.state_dict().items()})
        if self.optimizer is not None:
            for index, values in self.optimizer.state_dict()["state"].items():
                out.update({f"optimizer.{index}.{k}": v for k, v in values.items() if isinstance(v, Tensor)})
        out["rng.torch"] = torch.get_rng_state()
        return out

    def meta(self, report: TrainLogs, seconds: float) -> dict[str, Any]:
        """Counters, non-tensor optimizer state, the numpy RNG state and the logs (JSON-ready)."""
        scalars = {}
        if self.optimizer is not None:
            for index, values in self.optimizer.state_dict()["state"].items():
                scalars.update({f"{index}.{k}": v for k, v in values.items() if not isinstance(v, Tensor)})
        return {
            "epochs_done": dict(self.epochs_done),
            "optimizer_phase": self.optimizer_phase,
            "optimizer_scalars": scalars,
            "has_reference": self.reference is not None,
            "beta": self.beta,
            "rce_step": self.rce_step,
            "rng_numpy": self.rng.bit_generator.state,
            "seconds": seconds,
            "steps": report.steps,
            "evals": report.evals,
        }


def run_identity(config: SelectorConfig, data: SelectorData) -> dict[str, Any]:
    """What a resume state must match: the config (and its hash) and a hash of all training data."""
    return {
        "config_hash": config_hash(config),
        "config": config.model_dump(mode="json"),
        "data_sha256": data_sha256(data),
        "data": data.fingerprint.to_dict(),
    }


def data_sha256(data: SelectorData) -> str:
    """sha256 over every tensor, id and field of `data` (two datasets hash equal only if identical)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([data.fingerprint.to_dict(), data.order, data.anchor_ids, data.support_ids]).encode("utf-8"))
    for name in ("query_emb", "support_emb", "pool_rows", "pool_mask", "beam_positions", "beam_mask", "beam_cumulative",
                 "beam_marginal", "rl_positions", "rl_mask", "rl_correct", "rl_acc", "rl_beam_score", "rl_gt_prob", "rl_rel", "beam_steps"):
        value = getattr(data, name)
        digest.update(f"|{name}:{None if value is None else (str(value.dtype), tuple(value.shape))}|".encode("utf-8"))
        if value is not None:
            digest.update(value.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def check_identity(folder: Path, saved: dict[str, Any], identity: dict[str, Any]) -> None:
    """Refuse a resume state written for another config or other data (never used silently)."""
    fix = f"delete {folder} (or pass resume=False; `vlmlab icl train --overwrite`) to start over"
    if saved.get("config_hash") != identity["config_hash"]:
        old, new = saved.get("config") or {}, identity["config"]
        keys = sorted(k for k in set(old) | set(new) if old.get(k, "<unset>") != new.get(k, "<unset>"))
        shown = ", ".join(f"{k} ({old.get(k, '<unset>')!r} -> {new.get(k, '<unset>')!r})" for k in keys[:6])
        raise CheckpointError(f"{folder} holds a resume state of another selector config (differs in: {shown or 'unknown'}); {fix}")
    if saved.get("data_sha256") != identity["data_sha256"]:
        old_fp = saved.get("data") or {}
        changed = [k for k, v in identity["data"].items() if old_fp.get(k) != v]
        what = f"fingerprint fields {', '.join(changed)}" if changed else "same support set, different anchors, beams or rl-data"
        raise CheckpointError(f"{folder} holds a resume state trained on other data ({what}); {fix}")


def restore(state: TrainingState, report: TrainLogs, saved: tuple[dict[str, Tensor], dict[str, Any]], folder: Path) -> float:
    """Load weights, RNG states, counters and logs from `saved`; returns the seconds trained before."""
    tensors, meta = saved
    try:
        state.model.load_state_dict(_prefixed(tensors, "model."), strict=True)
        torch.set_rng_state(tensors["rng.torch"])
        state.rng.bit_generator.state = meta["rng_numpy"]
        state.beta = float(meta["beta"])
        state.rce_step = int(meta["rce_step"])
        state.epochs_done = {str(k): int(v) for k, v in meta["epochs_done"].items()}
        report.steps, report.evals = list(meta["steps"]), list(meta["evals"])
        seconds = float(meta["seconds"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{folder} holds an incomplete resume state ({first}); delete it to start over") from None
    report.resumed_epochs = sum(state.epochs_done.values())
    return seconds


def new_optimizer(
    state: TrainingState, phase: str, lr: float, weight_decay: float, saved: tuple[dict[str, Tensor], dict[str, Any]] | None
) -> None:
    """A fresh AdamW for `phase`; when the resume state was written while this optimizer ran, its state is loaded."""
    state.optimizer = torch.optim.AdamW(state.model.parameters(), lr=lr, weight_decay=weight_decay)
    state.optimizer_phase = phase
    if saved is None or saved[1]["optimizer_phase"] != phase:
        return
    tensors, meta = saved
    per_param: dict[int, dict[str, Any]] = {}
    for name, value in _prefixed(tensors, "optimizer.").items():
        index, key = name.split(".", 1)
        per_param.setdefault(int(index), {})[key] = value
    for name, value in meta["optimizer_scalars"].items():
        index, key = name.split(".", 1)
        per_param.setdefault(int(index), {})[key] = value
    groups = state.optimizer.state_dict()["param_groups"]  # hyper-parameters come from the (identical) config
    state.optimizer.load_state_dict({"state": per_param, "param_groups": groups})


def frozen_reference(model: SelectorModel, config: SelectorConfig, saved: tuple[dict[str, Tensor], dict[str, Any]] | None) -> SelectorModel:
    """The frozen supervised model: from the resume state if it has one, else a copy of `model` now."""
    if saved is not None and saved[1]["has_reference"]:
        reference = build_selector(config)
        reference.load_state_dict(_prefixed(saved[0], "reference."), strict=True)
    else:
        reference = copy.deepcopy(model)
    return reference.eval().requires_grad_(False)


def _prefixed(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {name[len(prefix):]: value for name, value in tensors.items() if name.startswith(prefix)}
