"""Which samples each optimizer step sees, as a pure function of (seed, step).

Because the order is arithmetic rather than the state of a data loader, resuming at step `s`
after a crash needs nothing but `s`: the same samples arrive in the same micro-batches, on the
same ranks, as in an uninterrupted run.

One optimizer step consumes `batch_size * grad_accum * world_size` samples: `grad_accum`
micro-batches, each split into one `batch_size` slice per rank. Epoch `e` visits the samples in
the permutation drawn from `seed + e`. The last step of an epoch may be short; with several ranks
it is filled up from the start of the same permutation so that every rank runs the same number of
forward/backward passes (data-parallel training would hang otherwise).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from vlmlab.train.examples import IGNORE_INDEX


def steps_per_epoch(num_samples: int, batch_size: int, grad_accum: int, world_size: int = 1) -> int:
    """Optimizer steps needed to see every sample once."""
    return math.ceil(num_samples / (batch_size * grad_accum * world_size))


def _epoch_order(num_samples: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(num_samples, generator=generator).tolist()


def step_micro_batches(
    step: int,
    *,
    num_samples: int,
    batch_size: int,
    grad_accum: int,
    seed: int,
    world_size: int = 1,
) -> list[list[list[int]]]:
    """Sample indices of optimizer step `step` (0-based): `[micro][rank] -> indices`.

    Micro-batches that would be empty are left out, so a short last step has fewer of them.
    """
    per_step = batch_size * grad_accum * world_size
    n_steps = steps_per_epoch(num_samples, batch_size, grad_accum, world_size)
    epoch, k = divmod(step, n_steps)
    order = _epoch_order(num_samples, seed, epoch)
    chosen = order[k * per_step : (k + 1) * per_step]
    if world_size > 1 and len(chosen) < per_step:
        fill = per_step - len(chosen)
        chosen = chosen + [order[i % num_samples] for i in range(fill)]
    micro: list[list[list[int]]] = []
    per_micro = batch_size * world_size
    for j in range(grad_accum):
        chunk = chosen[j * per_micro : (j + 1) * per_micro]
        if not chunk:
            break
        micro.append([chunk[r * batch_size : (r + 1) * batch_size] for r in range(world_size)])
    return micro


def collate_with_labels(encoded: Sequence[Any], labels: Sequence[torch.Tensor], pad_token_id: int) -> dict[str, Any]:
    """Right-pad a batch (hf_encode's `collate`) and add `labels` padded with -100.

    Right padding keeps every sample's positions (and so its rotary/mrope positions) identical to
    its unbatched encoding; padded positions carry no loss and are masked from attention.
    """
    from vlmlab.models.hf_encode import collate

    batch = collate(list(encoded), "right", pad_token_id)
    length = int(batch["input_ids"].shape[1])
    padded = torch.full((len(labels), length), IGNORE_INDEX, dtype=torch.long)
    for i, lab in enumerate(labels):
        padded[i, : lab.shape[0]] = lab
    batch["labels"] = padded
    return batch
