"""CIDEr-D exactly as pycocoevalcap computes it, vectorised with numpy.

Per n-gram order (1..4): TF-IDF vectors with document frequencies counted over the evaluated
items' reference sets (IDF = log(#items) - log(max(1, df))), the clipped dot product
sum(min(h, r) * r) divided by the two norms, a Gaussian length penalty exp(-delta^2 / (2 sigma^2)),
averaged over orders and references and multiplied by 10.

pycocoevalcap's "length" used in the penalty is the number of *bigrams* of a sentence (its loop
tests the 0-based order index `n == 1`), i.e. max(0, tokens - 1); we reproduce that.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vlmlab.errors import DataError
from vlmlab.metrics.ngrams import NgramTable, lookup, ngram_table, sorted_unique


def cider_d(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    n: int = 4,
    sigma: float = 6.0,
    table: NgramTable | None = None,
) -> tuple[float, np.ndarray]:
    """Corpus CIDEr-D (mean of item scores) and per-item scores.

    Args:
        hypotheses: one tokenised hypothesis per item.
        references: for each item, one or more tokenised references (IDF comes from these).
        n: highest n-gram order.
        sigma: standard deviation of the length penalty.
        table: `ngram_table(hypotheses + flattened references, n)` if already computed (BLEU shares it).
    """
    n_items = len(hypotheses)
    if n_items == 0:
        raise DataError("CIDEr-D needs at least one item")
    n_refs = np.array([len(r) for r in references], dtype=np.int64)
    ref_item = np.repeat(np.arange(n_items), n_refs)
    flat_refs = [r for refs in references for r in refs]
    if table is None:
        table = ngram_table(list(hypotheses) + flat_refs, n)
    G = table.n_grams

    is_hyp = table.sent < n_items
    is_ref = ~is_hyp
    # document frequency: number of items whose references contain the n-gram
    r_item_rows = ref_item[table.sent[is_ref] - n_items]
    item_gram = sorted_unique(r_item_rows * G + table.gram[is_ref])
    df = np.bincount(item_gram % G, minlength=G).astype(np.float64)
    ref_len = np.log(float(n_items))
    weight = table.count * (ref_len - np.log(np.maximum(1.0, df[table.gram])))

    n_sent = len(table.lengths)
    norm = np.sqrt(np.bincount(table.sent * n + table.order, weights=weight**2, minlength=n_sent * n)).reshape(n_sent, n)
    length = np.maximum(table.lengths - 1, 0).astype(np.float64)

    h_key = table.sent[is_hyp] * G + table.gram[is_hyp]  # sorted: table is sorted by (sent, gram)
    h_weight = weight[is_hyp]
    r_sent = table.sent[is_ref]
    w_r = weight[is_ref]
    w_h = lookup(h_key, h_weight, r_item_rows * G + table.gram[is_ref], default=0.0)
    n_ref_sent = len(flat_refs)
    val = np.bincount(
        (r_sent - n_items) * n + table.order[is_ref], weights=np.minimum(w_h, w_r) * w_r, minlength=n_ref_sent * n
    ).reshape(n_ref_sent, n)
    norm_h = norm[:n_items][ref_item]
    norm_r = norm[n_items:]
    both = (norm_h != 0) & (norm_r != 0)
    val = np.where(both, val / np.where(both, norm_h * norm_r, 1.0), val)
    delta = length[:n_items][ref_item] - length[n_items:]
    val = val * np.exp(-(delta**2) / (2 * sigma**2))[:, None]

    per_item = np.zeros((n_items, n))
    np.add.at(per_item, ref_item, val)
    scores = per_item.mean(axis=1) / n_refs * 10.0
    return float(np.mean(scores)), scores
