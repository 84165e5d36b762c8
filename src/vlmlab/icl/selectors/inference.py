"""`select`: choose ICDs for a batch of queries, each from its own pool, with per-query masks.

Example::

    picks = select(model, query_emb, pool_emb, shots=2, pool_mask=mask)  # long [B, 2]
    icd_ids = [[pool_ids[b][p] for p in row] for b, row in enumerate(picks.tolist())]

A query's picks depend only on its own embedding, pool and mask: nothing chosen for one query is
ever forbidden for another, and a batch gives the same picks as one query at a time.

A selector with a STOP token (`stop_token`) answers position K (the pool width) for STOP, and STOP
at every later step; `until_stop` turns its picks into one list per query of 0..shots positions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vlmlab.errors import DataError
from vlmlab.icl.selectors.base import SelectorModel


def select(
    model: SelectorModel,
    query_emb: Tensor,
    pool_emb: Tensor,
    shots: int,
    pool_mask: Tensor | None = None,
) -> Tensor:
    """Greedy selection of `shots` distinct ICD positions per query.

    Args:
        model: a selector (from `build_selector`, `load_selector` or `train_selector`).
        query_emb: float [B, D].
        pool_emb: float [B, K, D], each query's own candidate pool.
        shots: ICDs to choose per query (>= 1).
        pool_mask: bool [B, K], True where the pool has an item (default: all True).

    Returns:
        long [B, shots] positions into each query's pool, in selection order (for a selector trained on
        `left` beams the prompt order is the reverse: the first pick goes next to the query). With a
        STOP token, K (= pool width) marks STOP (see `until_stop`).

    Raises:
        DataError: on mismatched shapes, or when a query's pool has fewer than `shots` items.
    """
    if query_emb.ndim != 2 or pool_emb.ndim != 3 or pool_emb.shape[0] != query_emb.shape[0]:
        raise DataError(
            f"select needs query_emb [B, D] and pool_emb [B, K, D]; got {tuple(query_emb.shape)} and {tuple(pool_emb.shape)}"
        )
    b, k, d = pool_emb.shape
    cfg = model.config
    if d != cfg.embedding_dim or query_emb.shape[1] != cfg.embedding_dim:
        raise DataError(
            f"embeddings have width {query_emb.shape[1]}/{d} but the selector was built for embedding_dim {cfg.embedding_dim}"
        )
    if cfg.version == "v0" and k > cfg.pool_size:
        raise DataError(f"pool of {k} candidates exceeds this v0 selector's pool_size {cfg.pool_size}")
    if pool_mask is None:
        pool_mask = torch.ones((b, k), dtype=torch.bool, device=pool_emb.device)
    elif pool_mask.shape != (b, k):
        raise DataError(f"pool_mask has shape {tuple(pool_mask.shape)}, expected {(b, k)}")
    pool_mask = pool_mask.to(torch.bool)
    if shots < 1:
        raise DataError(f"shots must be >= 1, got {shots}")
    sizes = pool_mask.sum(dim=1)
    short = [] if cfg.stop_token else (sizes < shots).nonzero().flatten().tolist()  # a STOP selector stops when the pool runs out
    if short:
        raise DataError(
            f"shots={shots} but the pools of queries {short[:5]} have only {sizes[short[0]].item()} candidates; "
            "lower shots or enlarge the pool (candidates K)"
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model.greedy(query_emb.float(), pool_emb.float(), pool_mask, shots)
    finally:
        model.train(was_training)


def until_stop(picks: Tensor, pool_width: int) -> list[list[int]]:
    """Per query, the positions picked before the first STOP (`pool_width`); all of them without one."""
    out = []
    for row in picks.tolist():
        out.append(row[: row.index(pool_width)] if pool_width in row else row)
    return out
