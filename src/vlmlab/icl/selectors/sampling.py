"""Sequences from a trained selector's own policy: its beams and its temperature samples.

Upstream Lever-Plus builds RL data from the supervised selector's own outputs (its beam search and
samples at temperatures 1.0 and 1.3) beside retrieval candidates, so RL learns to correct what the
selector actually proposes. Both work with any `SelectorModel` through `sequence_logits`: the
logits of step t depend only on the picks before t, so a prefix plus one placeholder pick gives the
next step's distribution. Sequences are always `shots` long: a selector with a STOP token is asked
for full-length sequences (STOP left out), as rl-data candidates all have the beams' length.

Example::

    seqs, logp = selector_beams(model, query, pool, mask, shots=2, beams=5)   # [B, 5, 2], [B, 5]
    samples = selector_samples(model, query, pool, mask, shots=2, n=2, temperature=1.3, generator=g)
"""

from __future__ import annotations

import torch
from torch import Tensor

from vlmlab.icl.selectors.base import SelectorModel

TIE_DECIMALS = 5  # sequence log-probabilities equal to this many decimals are ties


def _next_step_logp(model: SelectorModel, query: Tensor, pool: Tensor, mask: Tensor, prefix: Tensor) -> Tensor:
    """log π(next | prefix) [B, G, K] for prefixes [B, G, t] (t may be 0); disallowed positions -inf."""
    b, g, t = prefix.shape
    placeholder = torch.zeros(b, g, 1, dtype=torch.long)
    logits = model.sequence_logits(query, pool, mask, torch.cat([prefix, placeholder], dim=-1))[:, :, t]
    return torch.log_softmax(logits[..., : pool.shape[1]], dim=-1)  # a STOP selector's STOP (position K) is left out


@torch.no_grad()
def selector_beams(model: SelectorModel, query: Tensor, pool: Tensor, mask: Tensor, shots: int, beams: int) -> tuple[Tensor, Tensor]:
    """The `beams` most probable sequences of `shots` distinct picks under the selector, best first.

    Deterministic under ties: log-probabilities equal to `TIE_DECIMALS` decimals keep the order of their
    parent beam, then of their pool position, whatever the batch (a query's beams do not depend on the others').

    Returns:
        (sequences long [B, beams, shots] in selection order, sequence log-probabilities [B, beams]).
    """
    model.eval()
    b = query.shape[0]
    seqs = torch.zeros(b, 1, 0, dtype=torch.long)
    score = torch.zeros(b, 1)
    for _ in range(shots):
        logp = _next_step_logp(model, query, pool, mask, seqs)  # [B, G, K]
        total = (score[:, :, None] + logp).reshape(b, -1)
        width = min(beams, int(torch.isfinite(total).sum(dim=-1).min()))
        # items with equal embeddings (the same question wording) tie up to float noise that depends on the
        # batch shape, and topk orders ties arbitrarily: rank by the score rounded to TIE_DECIMALS, ties to the
        # earlier (parent beam, pool position), as `vlmlab.icl.index.nearest` does for retrieval
        flat = total.double().round(decimals=TIE_DECIMALS).sort(dim=-1, descending=True, stable=True).indices[:, :width]
        values = total.gather(1, flat)
        parent, pick = flat // logp.shape[-1], flat % logp.shape[-1]
        seqs = torch.cat([seqs.gather(1, parent[:, :, None].expand(b, width, seqs.shape[-1])), pick[:, :, None]], dim=-1)
        score = values
    return seqs, score


@torch.no_grad()
def selector_samples(model: SelectorModel, query: Tensor, pool: Tensor, mask: Tensor, shots: int, n: int, temperature: float,
                     generator: torch.Generator) -> Tensor:
    """`n` sequences per query sampled step by step from softmax(logits / temperature): long [B, n, shots]."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    model.eval()
    b = query.shape[0]
    seqs = torch.zeros(b, n, 0, dtype=torch.long)
    for _ in range(shots):
        probs = torch.softmax(_next_step_logp(model, query, pool, mask, seqs) / temperature, dim=-1)
        pick = torch.multinomial(probs.reshape(b * n, -1), 1, generator=generator).view(b, n, 1)
        seqs = torch.cat([seqs, pick], dim=-1)
    return seqs
