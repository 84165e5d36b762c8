"""BLEU-1..4 exactly as pycocoevalcap computes it, vectorised with numpy.

pycocoevalcap's `Bleu(4)` (David Chiang's bleu_scorer) uses, per item, clipped n-gram matches
against the maximum count over the item's references, the "closest" effective reference length
(ties go to the shorter reference), and smoothing constants tiny=1e-15 / small=1e-9. The corpus
score is computed from the summed counts (not the mean of item scores); item scores are kept too.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vlmlab.metrics.ngrams import NgramTable, lookup, ngram_table

_TINY = 1e-15
_SMALL = 1e-9


def bleu(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    max_n: int = 4,
    table: NgramTable | None = None,
) -> tuple[list[float], np.ndarray]:
    """Corpus BLEU-1..max_n and per-item BLEU (pycocoevalcap semantics, option "closest").

    Args:
        hypotheses: one tokenised hypothesis per item (tokens separated by whitespace).
        references: for each item, one or more tokenised references.
        max_n: highest n-gram order.
        table: `ngram_table(hypotheses + flattened references, max_n)` if already computed.

    Returns:
        (corpus scores [BLEU-1..BLEU-max_n], per-item scores of shape (n_items, max_n)).
    """
    n_items = len(hypotheses)
    ref_item = np.repeat(np.arange(n_items), [len(r) for r in references])
    flat_refs = [r for refs in references for r in refs]
    if table is None:
        table = ngram_table(list(hypotheses) + flat_refs, max_n)
    G = table.n_grams

    is_hyp = table.sent < n_items
    h_item, h_gram, h_order, h_count = (a[is_hyp] for a in (table.sent, table.gram, table.order, table.count))
    r_item = ref_item[table.sent[~is_hyp] - n_items]
    r_key = r_item * G + table.gram[~is_hyp]
    r_count = table.count[~is_hyp]
    # maximum count of each n-gram over the references of an item
    order = np.argsort(r_key, kind="stable")
    r_key, r_count = r_key[order], r_count[order]
    if r_key.size:
        first = np.concatenate([[True], r_key[1:] != r_key[:-1]])
        starts = np.flatnonzero(first)
        max_key = r_key[starts]
        max_count = np.maximum.reduceat(r_count, starts)
    else:
        max_key = max_count = np.zeros(0, dtype=np.int64)
    ref_max = lookup(max_key, max_count, h_item * G + h_gram, default=0)
    clipped = np.minimum(ref_max, h_count)
    correct = np.zeros((n_items, max_n), dtype=np.int64)
    np.add.at(correct, (h_item, h_order), clipped)

    testlen = table.lengths[:n_items]
    guess = np.maximum(0, testlen[:, None] - np.arange(max_n)[None, :])
    reflen = _closest_reflen(testlen, table.lengths[n_items:], ref_item, n_items)

    item_scores = np.empty((n_items, max_n))
    acc = np.ones(n_items)
    for k in range(max_n):
        acc = acc * ((correct[:, k].astype(np.float64) + _TINY) / (guess[:, k].astype(np.float64) + _SMALL))
        item_scores[:, k] = acc ** (1.0 / (k + 1))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.where(ratio < 1, ratio, 1.0)), 1.0)
    item_scores *= penalty[:, None]

    total_test = int(testlen.sum())
    total_ref = int(reflen.sum())
    corpus = []
    b = 1.0
    for k in range(max_n):
        b *= float(int(correct[:, k].sum()) + _TINY) / (int(guess[:, k].sum()) + _SMALL)
        corpus.append(b ** (1.0 / (k + 1)))
    ratio_c = (total_test + _TINY) / (total_ref + _SMALL)
    if ratio_c < 1:
        corpus = [c * float(np.exp(1 - 1 / ratio_c)) for c in corpus]
    return corpus, item_scores


def _closest_reflen(testlen: np.ndarray, ref_lens: np.ndarray, ref_item: np.ndarray, n_items: int) -> np.ndarray:
    """Per item, the reference length closest to the hypothesis length (shorter one on ties)."""
    diff = np.abs(ref_lens - testlen[ref_item])
    # order by (item, diff, length) and take the first reference of each item
    order = np.lexsort((ref_lens, diff, ref_item))
    first = np.concatenate([[True], ref_item[order][1:] != ref_item[order][:-1]])
    out = np.zeros(n_items, dtype=np.int64)
    out[ref_item[order][first]] = ref_lens[order][first]
    return out
