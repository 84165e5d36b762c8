"""The interface every selector network implements, and the masking rule they share.

A selector reads a query embedding and the query's OWN candidate pool and produces, step by step,
logits over pool positions. Two calls cover training and inference:

- `sequence_logits(query, pool, pool_mask, sequences)` — teacher-forced logits for G given ICD
  sequences per query ([B, G, S, K]); training losses and log-probabilities come from these.
- `greedy(query, pool, pool_mask, shots)` — choose `shots` positions per query ([B, shots]).

Positions outside a query's pool (padding) and positions already chosen earlier in the same
sequence get logit -inf. The mask is per query: nothing chosen for one query affects another.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vlmlab.icl.selectors.config import SelectorConfig

NEG_INF = float("-inf")


class SelectorModel(nn.Module):
    """Base class of the selector networks (v0 GPT-2, v1–v4 pointer network)."""

    config: SelectorConfig

    def sequence_logits(self, query_emb: Tensor, pool_emb: Tensor, pool_mask: Tensor, sequences: Tensor) -> Tensor:
        """Teacher-forced step logits.

        Args:
            query_emb: float [B, D].
            pool_emb: float [B, K, D].
            pool_mask: bool [B, K], True where the pool has an item.
            sequences: long [B, G, S] ICD positions (G sequences per query, S steps).

        Returns:
            float [B, G, S, K]; -inf at padding and at positions chosen at an earlier step.
        """
        raise NotImplementedError

    def greedy(self, query_emb: Tensor, pool_emb: Tensor, pool_mask: Tensor, shots: int) -> Tensor:
        """Choose `shots` distinct valid positions per query, best first: long [B, shots]."""
        raise NotImplementedError


def earlier_choices(sequences: Tensor, pool_size: int) -> Tensor:
    """bool [B, G, S, K]: True at step t for positions chosen at steps < t of the same sequence."""
    one_hot = nn.functional.one_hot(sequences, pool_size)
    return (one_hot.cumsum(dim=-2) - one_hot) > 0


def masked_logits(logits: Tensor, allowed: Tensor) -> Tensor:
    """Set logits to -inf where `allowed` is False."""
    return logits.masked_fill(~allowed, NEG_INF)


class LogitScale(nn.Module):
    """A learnable inverse temperature for cosine scores (starts at 10, capped at 100)."""

    def __init__(self, initial: float = 10.0) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(initial)))

    def forward(self) -> Tensor:
        return self.log_scale.clamp(max=math.log(100.0)).exp()
