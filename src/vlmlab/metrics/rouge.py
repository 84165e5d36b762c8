"""ROUGE-L (beta 1.2) exactly as pycocoevalcap computes it, with a batched numpy LCS.

Per item: precision and recall of the longest common subsequence against each reference, the
maximum precision and maximum recall over references (taken separately), then
F = (1 + b^2) P R / (R + b^2 P). Tokens come from `str.split(" ")`, as in pycocoevalcap, so an
empty caption is one empty token.

The LCS uses the row recurrence L[i, j] = max_{k <= j} max(L[i-1, k], L[i-1, k-1] + match(i, k)),
i.e. a running maximum (`np.maximum.accumulate`) along the row, computed for a whole bucket of
(reference, candidate) pairs of similar lengths at once.
"""

from __future__ import annotations

from itertools import chain
from typing import Sequence

import numpy as np

BETA = 1.2
_BUCKET = 4096


def lcs_lengths(
    flat_a: np.ndarray, start_a: np.ndarray, len_a: np.ndarray,
    flat_b: np.ndarray, start_b: np.ndarray, len_b: np.ndarray,
) -> np.ndarray:
    """LCS length of each pair (a_i, b_i); sequence i is flat[start[i] : start[i] + len[i]]."""
    n = len_a.size
    out = np.zeros(n, dtype=np.int64)
    order = np.lexsort((len_b, len_a))
    for first in range(0, n, _BUCKET):
        idx = order[first : first + _BUCKET]
        la, lb = int(len_a[idx].max()), int(len_b[idx].max())
        if la == 0 or lb == 0:
            continue
        A = _padded(flat_a, start_a[idx], len_a[idx], la, -1)  # different pads never match
        B = _padded(flat_b, start_b[idx], len_b[idx], lb, -2)
        prev = np.zeros((idx.size, lb + 1), dtype=np.int32)
        cur = np.zeros_like(prev)
        for i in range(la):
            match = B == A[:, i : i + 1]
            cand = np.maximum(prev[:, 1:], (prev[:, :-1] + 1) * match)
            np.maximum.accumulate(cand, axis=1, out=cur[:, 1:])
            prev, cur = cur, prev
        out[idx] = prev[:, -1]
    return out


def _padded(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int, pad: int) -> np.ndarray:
    rows = np.repeat(np.arange(lengths.size), lengths)
    cols = np.arange(rows.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out = np.full((lengths.size, width), pad, dtype=np.int64)
    out[rows, cols] = flat[np.repeat(starts, lengths) + cols]
    return out


def _encode(token_lists: Sequence[Sequence[str]], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    flat = list(chain.from_iterable(token_lists))
    for t in dict.fromkeys(flat):
        vocab.setdefault(t, len(vocab))
    ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
    return ids, np.cumsum(lengths) - lengths, lengths


def rouge_l(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[float, np.ndarray]:
    """Corpus ROUGE-L (mean of item scores) and per-item scores, pycocoevalcap semantics."""
    return rouge_l_tokens([h.split(" ") for h in hypotheses], [[r.split(" ") for r in refs] for refs in references])


def rouge_l_tokens(
    hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]]
) -> tuple[float, np.ndarray]:
    """`rouge_l` on sentences already split with `str.split(" ")` (never empty lists: "" is [""])."""
    vocab: dict[str, int] = {}
    h_flat, h_start, h_len = _encode(hypotheses, vocab)
    n_refs = np.array([len(r) for r in references], dtype=np.int64)
    ref_item = np.repeat(np.arange(len(hypotheses)), n_refs)
    r_flat, r_start, r_len = _encode([r for refs in references for r in refs], vocab)
    if (h_len == 0).any() or (r_len == 0).any():
        raise ValueError("rouge_l_tokens: an empty token list; an empty sentence is [''] (str.split(' '))")
    lcs = lcs_lengths(r_flat, r_start, r_len, h_flat, h_start[ref_item], h_len[ref_item]).astype(np.float64)
    prec = lcs / h_len[ref_item]
    rec = lcs / r_len
    n_items = len(hypotheses)
    prec_max = np.full(n_items, -np.inf)
    rec_max = np.full(n_items, -np.inf)
    np.maximum.at(prec_max, ref_item, prec)
    np.maximum.at(rec_max, ref_item, rec)
    ok = (prec_max != 0) & (rec_max != 0)
    denom = np.where(ok, rec_max + BETA**2 * prec_max, 1.0)
    scores = np.where(ok, ((1 + BETA**2) * prec_max * rec_max) / denom, 0.0)
    return float(np.mean(scores)), scores
