"""Held-out ranking metrics of a selector against the best beam of each anchor.

The gold set of an anchor is the ICDs of its best beam. Metrics:

- `top1`: the selector's first greedy pick is a gold ICD;
- `hit@5`: a gold ICD is among the 5 best-scored positions at step 0;
- `ndcg@10`: NDCG of the step-0 ranking with binary gold relevance;
- `mrr`: 1 / rank of the first gold ICD in the step-0 ranking;
- `set_recall`: |greedy picks ∩ gold| / shots;
- `exact`: the greedy sequence equals the best beam (same ICDs, same order);
- `random_top1`: what a uniformly random first pick would score (|gold| / pool size), the bar to beat.

`evaluate` computes them for a model on held-out anchors; with a STOP token the gold sequence is
the best beam cut where it stops paying (`objectives.stop_targets`), and it adds `mean_shots` and
`shots_match` (the share of anchors given the target's number of ICDs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from vlmlab.icl.selectors import objectives as obj

if TYPE_CHECKING:
    from vlmlab.icl.selectors.base import SelectorModel
    from vlmlab.icl.selectors.data import SelectorData

EVAL_CHUNK = 256


def ranking_metrics(first_logits: Tensor, picks: Tensor, gold: Tensor, pool_mask: Tensor) -> dict[str, float]:
    """Mean metrics over anchors.

    Args:
        first_logits: [N, K] step-0 logits (-inf at padding).
        picks: long [N, S] greedy selections.
        gold: long [N, S] best-beam positions.
        pool_mask: bool [N, K].
    """
    n, k = first_logits.shape
    if n == 0:
        return {}
    is_gold = torch.zeros((n, k), dtype=torch.bool).scatter(1, gold, True)
    order = torch.sort(first_logits, dim=1, descending=True, stable=True).indices
    rel = is_gold.gather(1, order).float()  # [N, K] relevance in ranked order
    ranks = torch.arange(1, k + 1, dtype=torch.float32)
    discounts = 1.0 / torch.log2(ranks + 1.0)
    top = min(10, k)
    dcg = (rel[:, :top] * discounts[:top]).sum(1)
    ideal_rel = torch.sort(is_gold.float(), dim=1, descending=True).values
    idcg = (ideal_rel[:, :top] * discounts[:top]).sum(1).clamp(min=1e-12)
    first_hit = torch.where(rel > 0, ranks, torch.full_like(rel, float("inf"))).min(dim=1).values
    top1 = is_gold.gather(1, picks[:, :1]).float().squeeze(1)
    recall = is_gold.gather(1, picks).float().mean(1)
    exact = (picks == gold).all(dim=1).float()
    random_top1 = gold.shape[1] / pool_mask.sum(1).float()
    return {
        "top1": float(top1.mean()),
        "hit@5": float((rel[:, : min(5, k)].sum(1) > 0).float().mean()),
        "ndcg@10": float((dcg / idcg).mean()),
        "mrr": float((1.0 / first_hit).mean()),
        "set_recall": float(recall.mean()),
        "exact": float(exact.mean()),
        "random_top1": float(random_top1.mean()),
    }


def evaluate(model: "SelectorModel", data: "SelectorData", shots: int) -> dict[str, float]:
    """Held-out ranking metrics (see `metrics.py`) and mean CE of the best beam; {} without data."""
    if len(data) == 0:
        return {}
    was_training = model.training
    model.eval()
    firsts, picks, ces, golds = [], [], [], []
    with torch.no_grad():
        for start in range(0, len(data), EVAL_CHUNK):
            rows = torch.arange(start, min(start + EVAL_CHUNK, len(data)))
            query, pool, pool_mask = data.query_emb[rows], data.pool_embeddings(rows), data.pool_mask[rows]
            gold = data.beam_positions[rows, :1]
            if model.config.stop_token:  # the gold sequence is the best beam cut where it stops paying
                assert data.beam_steps is not None
                gold = obj.stop_targets(gold, data.beam_steps[rows, :1].nan_to_num(0.0), model.config.stop_min_gain, data.pool_size)[0]
            golds.append(gold[:, 0])
            logits = model.sequence_logits(query, pool, pool_mask, gold)
            firsts.append(logits[:, 0, 0])
            ces.append(obj.cross_entropy(logits, gold)[:, 0])
            picks.append(model.greedy(query, pool, pool_mask, shots))
    model.train(was_training)
    gold, chosen = torch.cat(golds), torch.cat(picks)
    metrics = ranking_metrics(torch.cat(firsts), chosen, gold, data.pool_mask)
    metrics["val_ce"] = float(torch.cat(ces).mean())
    if model.config.stop_token:  # how many ICDs it gives, and how often that is the target's number
        n_chosen, n_gold = (chosen < data.pool_size).sum(dim=1), (gold < data.pool_size).sum(dim=1)
        metrics.update(mean_shots=float(n_chosen.float().mean()), shots_match=float((n_chosen == n_gold).float().mean()))
    return metrics
