"""COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE) with pycocoevalcap conventions.

Call `score_captions(predictions, references, mode="grouped")` with plain dicts
(`{id: prediction}`, `{id: [reference, ...]}`); it PTB-tokenises every text in one JVM call and
computes BLEU, ROUGE-L and CIDEr-D with our numpy code (equal to pycocoevalcap within 1e-9),
METEOR with the METEOR 1.5 jar on a paraphrase table cut to the run (see `meteor`), SPICE with
its jar when the CoreNLP jars exist (otherwise the score is `None` and the reason is recorded).

Modes:
  - `grouped`: one item per id, scored against all of its references (COCO style).
  - `per-row`: every reference row is its own single-reference item with the prediction of its
    id, as the CORA baseline scored QuIC-360. CIDEr's IDF then comes from those single references.

Empty predictions are scored as pycocoevalcap scores them (mostly zeros) but counted and reported,
so that a study can decide what to do with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from vlmlab.errors import ConfigError, DataError
from vlmlab.metrics.bleu import bleu
from vlmlab.metrics.cider import cider_d
from vlmlab.metrics.meteor import meteor_async
from vlmlab.metrics.ngrams import ngram_table_from_tokens
from vlmlab.metrics.ptb import ptb_tokens
from vlmlab.metrics.rouge import rouge_l_tokens
from vlmlab.metrics.spice import spice, spice_unavailable_reason
from vlmlab.registry import did_you_mean

CAPTION_METRICS = ("BLEU", "METEOR", "ROUGE-L", "CIDEr", "SPICE")
MODES = ("grouped", "per-row")
SCORE_KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE")


@dataclass
class CaptionScores:
    """Result of `score_captions`.

    Attributes:
        mode: "grouped" or "per-row".
        scores: corpus score per key of SCORE_KEYS that was requested (None when unavailable).
        unavailable: reason per metric key that could not be computed (e.g. SPICE without jars).
        item_ids: id of each scored item (per-row items are "<id>#<k>").
        per_item: per-item scores, arrays aligned with `item_ids`.
        stats: token statistics and empty-prediction counts.
    """

    mode: str
    scores: dict[str, float | None]
    unavailable: dict[str, str]
    item_ids: list[str]
    per_item: dict[str, np.ndarray]
    stats: dict[str, float | int]
    missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of scored items."""
        return len(self.item_ids)

    def to_dict(self, per_item: bool = False) -> dict:
        """JSON-ready dict with the CLI's keys (`BLEU-1`..`SPICE`, `SPICE_reason`, `mode`, `n`, stats)."""
        out: dict = dict(self.scores)
        for key, reason in self.unavailable.items():
            out[f"{key}_reason"] = reason
        out["mode"] = self.mode
        out["n"] = self.n
        out.update(self.stats)
        if self.missing:  # counts and the first ids only: the lists can be long
            out["missing"] = {k: {"count": len(v), "first": v[:10]} for k, v in self.missing.items()}
        if per_item:
            out["per_item"] = {
                item: {k: _json_float(v[i]) for k, v in self.per_item.items()} for i, item in enumerate(self.item_ids)
            }
        return out


def parse_metrics(names: Sequence[str] | None) -> list[str]:
    """Canonical metric names from user input (case-insensitive; "did you mean" on a typo)."""
    if not names:
        return list(CAPTION_METRICS)
    canon = {m.lower(): m for m in CAPTION_METRICS}
    canon.update({"rouge": "ROUGE-L", "rouge_l": "ROUGE-L", "cider-d": "CIDEr"})
    out: list[str] = []
    for raw in names:
        for name in (p.strip() for p in raw.split(",")):
            if not name:
                continue
            key = name.lower()
            if key not in canon:
                hint = did_you_mean(key, canon, show=canon.__getitem__)
                raise ConfigError(f"unknown caption metric {name!r}{'; ' + hint if hint else ''} "
                                  f"(choose from {', '.join(CAPTION_METRICS)})")
            if canon[key] not in out:
                out.append(canon[key])
    return out


def score_captions(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    *,
    mode: str = "grouped",
    metrics: Sequence[str] | None = None,
    allow_missing: bool = False,
    java_timeout: float | None = None,
    meteor_jobs: int | None = None,
) -> CaptionScores:
    """Score captions against references the pycocoevalcap way.

    Args:
        predictions: prediction text per id.
        references: reference texts per id (at least one each).
        mode: "grouped" (all references of an id) or "per-row" (each reference its own item).
        metrics: subset of CAPTION_METRICS (default all); "BLEU" gives BLEU-1..4.
        allow_missing: score only ids present on both sides instead of raising DataError.
        java_timeout: watchdog seconds for the JVMs (tokenizer and SPICE: whole run; METEOR: without
            output); defaults are generous so that only a hung JVM is killed.
        meteor_jobs: METEOR JVMs to split the items across (default: 2 from 4,000
            hypothesis-reference pairs on when a core is free; the scores do not depend on it).

    Returns:
        CaptionScores with corpus scores, per-item scores, token statistics and the mode.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; choose 'grouped' or 'per-row'")
    wanted = parse_metrics(metrics)
    ids, missing = _matched_ids(predictions, references, allow_missing)
    for i in ids:
        if len(references[i]) == 0:
            raise DataError(f"id {i!r} has no references; give at least one or drop the prediction")

    pred_texts = [predictions[i] for i in ids]
    ref_lists = [list(references[i]) for i in ids]
    if not ids:
        raise DataError("no items to score: predictions and references share no id")
    tok = ptb_tokens(pred_texts + [r for refs in ref_lists for r in refs], timeout=java_timeout)
    strings, words = tok.strings(), tok.words()
    split_space = [p if p else [""] for p in tok.pieces]  # str.split(" ") of each string, for ROUGE-L

    # sentence indices into the tokenised texts: predictions first, then references in order
    ref_sents: list[list[int]] = []
    pos = len(ids)
    for refs in ref_lists:
        ref_sents.append(list(range(pos, pos + len(refs))))
        pos += len(refs)
    if mode == "grouped":
        item_ids = [str(i) for i in ids]
        hyp_idx, ref_idx = list(range(len(ids))), ref_sents
    else:
        item_ids, hyp_idx, ref_idx = [], [], []
        for n, (i, sents) in enumerate(zip(ids, ref_sents)):
            for k, sent in enumerate(sents):
                item_ids.append(f"{i}#{k}")
                hyp_idx.append(n)
                ref_idx.append([sent])
    hyps = [strings[j] for j in hyp_idx]
    refs_for_items = [[strings[k] for k in r] for r in ref_idx]

    scores: dict[str, float | None] = {}
    unavailable: dict[str, str] = {}
    per_item: dict[str, np.ndarray] = {}
    # METEOR runs in its JVMs (fed by threads) while this thread does BLEU, ROUGE-L, CIDEr
    meteor_job = meteor_async(hyps, refs_for_items, timeout=java_timeout, jobs=meteor_jobs) if "METEOR" in wanted else None
    table = None
    if {"BLEU", "CIDEr"} & set(wanted):
        table = ngram_table_from_tokens([words[j] for j in hyp_idx] + [words[k] for r in ref_idx for k in r])
    if "BLEU" in wanted:
        corpus, items = bleu(hyps, refs_for_items, table=table)
        for k in range(4):
            scores[f"BLEU-{k + 1}"] = float(corpus[k])
            per_item[f"BLEU-{k + 1}"] = items[:, k]
    if "ROUGE-L" in wanted:
        scores["ROUGE-L"], per_item["ROUGE-L"] = rouge_l_tokens(
            [split_space[j] for j in hyp_idx], [[split_space[k] for k in r] for r in ref_idx]
        )
    if "CIDEr" in wanted:
        scores["CIDEr"], per_item["CIDEr"] = cider_d(hyps, refs_for_items, table=table)
    if meteor_job is not None:
        scores["METEOR"], per_item["METEOR"] = meteor_job.result()
    if "SPICE" in wanted:
        reason = spice_unavailable_reason()
        if reason is None:
            scores["SPICE"], per_item["SPICE"] = spice(hyps, refs_for_items, timeout=java_timeout)
        else:
            scores["SPICE"] = None
            unavailable["SPICE"] = reason

    return CaptionScores(
        mode=mode,
        scores=scores,
        unavailable=unavailable,
        item_ids=item_ids,
        per_item=per_item,
        stats=token_statistics(pred_texts, words[: len(ids)], words[len(ids):]),
        missing=missing,
    )


def token_statistics(
    raw_predictions: Sequence[str], prediction_words: Sequence[Sequence[str]], reference_words: Sequence[Sequence[str]]
) -> dict:
    """Mean predicted / reference PTB tokens, their ratio, and empty-prediction count and rate.

    A prediction is empty when its raw text is only whitespace. Means are over distinct predictions
    and over all reference sentences (tokens as BLEU counts them, punctuation removed).
    """
    pred_lens = np.fromiter(map(len, prediction_words), dtype=np.float64, count=len(prediction_words))
    ref_lens = np.fromiter(map(len, reference_words), dtype=np.float64, count=len(reference_words))
    mean_pred = float(pred_lens.mean()) if pred_lens.size else 0.0
    mean_ref = float(ref_lens.mean()) if ref_lens.size else 0.0
    n_empty = sum(1 for p in raw_predictions if not p.strip())
    return {
        "n_predictions": len(raw_predictions),
        "n_references": int(ref_lens.size),
        "mean_prediction_tokens": mean_pred,
        "mean_reference_tokens": mean_ref,
        "token_ratio": mean_pred / mean_ref if mean_ref else None,
        "empty_predictions": n_empty,
        "empty_prediction_rate": n_empty / len(raw_predictions) if raw_predictions else 0.0,
    }


def _matched_ids(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], allow_missing: bool
) -> tuple[list[str], dict[str, list[str]]]:
    pred_only = [i for i in predictions if i not in references]
    ref_only = [i for i in references if i not in predictions]
    if (pred_only or ref_only) and not allow_missing:
        parts = []
        if pred_only:
            parts.append(f"{len(pred_only)} prediction id(s) have no references (e.g. {', '.join(map(repr, pred_only[:5]))})")
        if ref_only:
            parts.append(f"{len(ref_only)} reference id(s) have no prediction (e.g. {', '.join(map(repr, ref_only[:5]))})")
        raise DataError("; ".join(parts) + "; fix the ids or pass --allow-missing")
    ids = [i for i in predictions if i in references]
    missing = {}
    if pred_only:
        missing["predictions_without_references"] = [str(i) for i in pred_only]
    if ref_only:
        missing["references_without_prediction"] = [str(i) for i in ref_only]
    return ids, missing


def _json_float(x: float) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x
