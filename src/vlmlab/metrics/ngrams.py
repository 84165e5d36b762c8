"""Vectorised n-gram counting shared by BLEU and CIDEr-D.

Sentences (already tokenised, tokens separated by whitespace) become one flat integer array; every
n-gram of order 1..N gets a dense integer id, built order by order with `np.unique` on
`(id of the (k-1)-gram, next token)` pairs. The result is a sorted table of
`(sentence, n-gram, order, count)` rows, which the metrics join with `np.searchsorted` instead of
Python dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class NgramTable:
    """Counts of every n-gram (orders 1..max_n) in every sentence, sorted by (sentence, gram).

    Attributes:
        sent: sentence index of each row.
        gram: global n-gram id of each row (ids of different orders never collide).
        order: n-gram order minus one (0 for unigrams).
        count: occurrences of the n-gram in the sentence.
        lengths: number of tokens of each sentence.
        n_grams: number of distinct n-gram ids (an upper bound for `gram`).
    """

    sent: np.ndarray
    gram: np.ndarray
    order: np.ndarray
    count: np.ndarray
    lengths: np.ndarray
    n_grams: int


def encode_tokens(token_lists: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Map tokens to integer ids (first-seen order); returns (flat ids, sentence lengths)."""
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    flat = list(chain.from_iterable(token_lists))
    vocab = {t: i for i, t in enumerate(dict.fromkeys(flat))}
    ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
    return ids, lengths


def sorted_unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array (sort-based; faster than hashing here)."""
    if x.size == 0:
        return x
    x = np.sort(x)
    return x[np.concatenate([[True], x[1:] != x[:-1]])]


def ngram_table(sentences: Sequence[str], max_n: int = 4) -> NgramTable:
    """Count the n-grams of whitespace-tokenised sentences (`str.split()`, as pycocoevalcap does)."""
    return ngram_table_from_tokens([s.split() for s in sentences], max_n)


def ngram_table_from_tokens(token_lists: Sequence[Sequence[str]], max_n: int = 4) -> NgramTable:
    """Count the n-grams of already split sentences."""
    tok, lengths = encode_tokens(token_lists)
    n_tok = tok.size
    n_sent = len(token_lists)
    sent_of = np.repeat(np.arange(n_sent, dtype=np.int64), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if n_sent else np.zeros(0, np.int64)
    pos = np.arange(n_tok, dtype=np.int64) - np.repeat(starts, lengths)
    remaining = np.repeat(lengths, lengths) - pos  # tokens from this position to the sentence end

    sents, grams, orders, counts = [], [], [], []
    offset = 0
    ids = tok
    vocab_size = int(tok.max()) + 1 if n_tok else 1
    for k in range(1, max_n + 1):
        if k > 1:
            if n_tok - k + 1 <= 0:
                break
            pair = ids[: n_tok - k + 1] * vocab_size + tok[k - 1:]
            _, ids = np.unique(pair, return_inverse=True)
            ids = ids.astype(np.int64).ravel()
        n_ids = int(ids.max()) + 1 if ids.size else 0
        valid = remaining[: ids.size] >= k
        key = sent_of[: ids.size][valid] * n_ids + ids[valid]
        uniq, cnt = np.unique(key, return_counts=True)
        if n_ids:
            sents.append(uniq // n_ids)
            grams.append(uniq % n_ids + offset)
            orders.append(np.full(uniq.size, k - 1, dtype=np.int64))
            counts.append(cnt.astype(np.int64))
        offset += n_ids
    if sents:
        sent = np.concatenate(sents)
        gram = np.concatenate(grams)
        order = np.concatenate(orders)
        count = np.concatenate(counts)
        idx = np.argsort(sent * max(offset, 1) + gram, kind="stable")  # by (sentence, gram); lexsort is slower
        sent, gram, order, count = sent[idx], gram[idx], order[idx], count[idx]
    else:
        sent = gram = order = count = np.zeros(0, dtype=np.int64)
    return NgramTable(sent=sent, gram=gram, order=order, count=count, lengths=lengths, n_grams=max(offset, 1))


def lookup(keys_sorted: np.ndarray, values: np.ndarray, queries: np.ndarray, default: float = 0) -> np.ndarray:
    """Values for `queries` in a sorted key array (`default` where a key is absent)."""
    if keys_sorted.size == 0:
        return np.full(queries.shape, default, dtype=values.dtype if values.size else np.float64)
    pos = np.searchsorted(keys_sorted, queries)
    pos_c = np.minimum(pos, keys_sorted.size - 1)
    found = keys_sorted[pos_c] == queries
    return np.where(found, values[pos_c], default)
