"""Learning-rate schedules: linear warm-up, then cosine, linear or constant."""

from __future__ import annotations

import math
from typing import Callable

import torch

from vlmlab.train.args import SchedulerName



def lr_multiplier(total_steps: int, warmup_ratio: float, scheduler: SchedulerName) -> Callable[[int], float]:
    """A function step -> factor of the peak learning rate, for `torch.optim.lr_scheduler.LambdaLR`.

    Warm-up rises linearly over `ceil(warmup_ratio * total_steps)` steps, starting above zero so that
    the first step already learns; after it the factor decays to 0 at `total_steps` (cosine, linear) or
    stays at 1 (constant).
    """
    if scheduler not in ("cosine", "linear", "constant"):
        raise ValueError(f"scheduler must be cosine, linear or constant, got {scheduler!r}")
    if not 0.0 <= warmup_ratio < 1.0:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
    warmup = math.ceil(warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if scheduler == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if scheduler == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float, scheduler: SchedulerName
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(total_steps, warmup_ratio, scheduler))
