"""Scoring a caption run in both modes, and the human leave-one-out reference row.

Both modes are always computed (they answer different questions and published numbers use
either): `grouped` scores each prediction against all references of its (image, query) pair;
`per-row` makes every reference row its own single-reference item, as the QuIC-360/CORA baseline
scored. Which one tables lead with is the config's `scoring.headline`, recorded in metrics.json.

Empty or failed predictions are scored as empty captions (no credit — a model is not rewarded for
failing on hard items) and, when there are any, the scores over only the `ok` predictions are
reported beside them (`ok_only`), so a reader sees both the penalty and the quality of what was
produced.

The human row: for each pair with two or more references, each reference in turn is the
"prediction" and the others are its references (leave-one-out), scored in the same mode. It shows
how much human captions agree with each other — on QuIC-360 far less than on COCO.

    metrics = score_predictions(rows, headline="per-row")
    human = human_scores({pair_id: refs}, mode="per-row")
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from vlmlab.errors import DataError
from vlmlab.metrics.caption import MODES, CaptionScores, score_captions


def score_predictions(
    rows: Sequence[Mapping[str, Any]],
    *,
    headline: str = "per-row",
    metrics: Sequence[str] | None = None,
) -> dict[str, Any]:
    """metrics.json content for generation rows (`id`, `prediction`, `references`, `status`).

    Returns a dict with `headline_mode`, `headline` (the headline mode's scores and token
    statistics), `modes` (both), `ok_only` (both, only when some predictions are not ok) and
    `counts` of ok / empty / error predictions.
    """
    if headline not in MODES:
        raise DataError(f"unknown headline mode {headline!r}; choose 'grouped' or 'per-row'")
    if not rows:
        raise DataError("no predictions to score; run generation first")
    predictions = {str(r["id"]): (r["prediction"] if r["status"] == "ok" else "") for r in rows}
    references = {str(r["id"]): list(r["references"]) for r in rows}
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("ok", "empty", "error")}
    modes = {}
    for mode in MODES:
        scores = score_captions(predictions, references, mode=mode, metrics=metrics)
        modes[mode] = scores.to_dict() | mean_metric_cis(scores)
    for mode in MODES:  # the stats of metrics count whitespace predictions; count failures too
        modes[mode]["error_predictions"] = counts["error"]
        modes[mode]["not_ok_rate"] = (counts["empty"] + counts["error"]) / len(rows)
    out: dict[str, Any] = {
        "headline_mode": headline,
        "headline": modes[headline],
        "modes": modes,
        "counts": counts,
        "n": len(rows),
    }
    if counts["ok"] < len(rows):
        ok_ids = [i for i in predictions if predictions[i].strip()]
        out["ok_only"] = (
            {mode: score_captions({i: predictions[i] for i in ok_ids}, {i: references[i] for i in ok_ids},
                                  mode=mode, metrics=metrics).to_dict() for mode in MODES}
            if ok_ids else None
        )
    return out


CI_METRICS = ("CIDEr", "ROUGE-L")  # corpus score == mean of per-item scores: a bootstrap CI applies


def mean_metric_cis(scores: CaptionScores, *, n_resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, Any] | None]:
    """95% percentile-bootstrap CIs over items (scipy.stats.bootstrap), for metrics whose corpus
    score is the mean of the per-item scores (CIDEr-D, ROUGE-L; BLEU and METEOR are not, so they
    get none). Each `<metric>_ci` says how it was made, like every interval of vlmlab
    (`Interval.to_json`): estimate, low, high, method, unit, n_units, level, resamples, ci (text).
    The unit is the mode's item: an id (grouped) or a reference row (per-row). None when there
    are fewer than two items. Files written before carried a bare [low, high]; readers take both.
    """
    from scipy.stats import bootstrap

    from vlmlab.metrics.inference import Interval

    unit = "reference rows" if scores.mode == "per-row" else "items"
    out: dict[str, dict[str, Any] | None] = {}
    for name in CI_METRICS:
        items = scores.per_item.get(name)
        if items is None or scores.scores.get(name) is None:
            continue
        values = np.asarray(items, dtype=np.float64)
        if len(values) < 2 or not np.isclose(values.mean(), scores.scores[name], rtol=1e-6, atol=1e-9):
            out[f"{name}_ci"] = None
            continue
        if np.all(values == values[0]):
            low = high = float(values[0])
        else:
            res = bootstrap((values,), np.mean, n_resamples=n_resamples, confidence_level=0.95, method="percentile",
                            random_state=np.random.default_rng(seed))
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        out[f"{name}_ci"] = Interval(float(values.mean()), low, high, "percentile", unit, len(values), 0.95, n_resamples).to_json()
    return out


def ci_bounds(ci: dict[str, Any] | Sequence[float] | None) -> tuple[float, float] | None:
    """(low, high) of a `<metric>_ci` entry, in the current shape (a dict) or the older [low, high]."""
    if ci is None:
        return None
    if isinstance(ci, dict):
        return None if ci.get("low") is None or ci.get("high") is None else (float(ci["low"]), float(ci["high"]))
    return float(ci[0]), float(ci[1])


def leave_one_out(references: Mapping[str, Sequence[str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(predictions, references) of the human row: id `<pair>~h<k>` is reference k against the others.

    Pairs with fewer than two references are left out (a caption cannot be compared with nothing).
    """
    preds: dict[str, str] = {}
    refs: dict[str, list[str]] = {}
    for pair_id, pair_refs in references.items():
        if len(pair_refs) < 2:
            continue
        for k, ref in enumerate(pair_refs):
            key = f"{pair_id}~h{k}"
            preds[key] = ref
            refs[key] = [r for j, r in enumerate(pair_refs) if j != k]
    return preds, refs


def human_scores(
    references: Mapping[str, Sequence[str]], *, mode: str, metrics: Sequence[str] | None = None
) -> CaptionScores:
    """Score each human reference against its siblings (see `leave_one_out`) in `mode`.

    Raises:
        DataError: no pair has two or more references.
    """
    preds, refs = leave_one_out(references)
    if not preds:
        raise DataError("no (image, query) pair has two or more references; the human row needs at least one such pair")
    return score_captions(preds, refs, mode=mode, metrics=metrics)


def human_metrics(references: Mapping[str, Sequence[str]], *, headline: str, metrics: Sequence[str] | None = None) -> dict[str, Any]:
    """metrics.json content of the human row, shaped like `score_predictions`' output."""
    modes = {mode: human_scores(references, mode=mode, metrics=metrics).to_dict() for mode in MODES}
    pairs = sum(1 for r in references.values() if len(r) >= 2)
    return {"headline_mode": headline, "headline": modes[headline], "modes": modes, "pairs": pairs,
            "counts": {"ok": modes["grouped"]["n"], "empty": 0, "error": 0}}
