"""Agreement between model and human labels/ratings, each estimate with a seeded bootstrap CI.

Plain numpy functions over arrays, usable from a notebook:

    kappa = estimate(cohen_kappa, human, model, weights="quadratic", seed=0)
    kappa.value, kappa.low, kappa.high

`estimate(statistic, *arrays, seed=...)` resamples items (rows of all arrays together, so paired
data stays paired) and returns the statistic on the full data with a percentile interval.
Statistics: `cohen_kappa` (unweighted, linear, quadratic), `confusion_matrix`,
`per_class_accuracy`, `pearson_r`, `spearman_r`, `mae`, `within_category_spread` (SD and number of
distinct values per category), `rating_distribution` + `entropy` (1-9 ratings from top-k
logprobs), `false_positive_rates` (per category, optionally per group); `agreement_summary` gives
the usual set at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
from scipy import stats

from vlmlab.errors import ConfigError, DataError


@dataclass(frozen=True)
class Estimate:
    """A statistic with a bootstrap confidence interval [low, high] (NaN bounds when undefined)."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready (NaN becomes None)."""
        return {k: (None if math.isnan(v) else v) for k, v in (("value", self.value), ("low", self.low), ("high", self.high))}


def estimate(
    statistic: Callable[..., float],
    *arrays: Sequence[Any] | np.ndarray,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    **kwargs: Any,
) -> Estimate:
    """The statistic on all items plus a percentile bootstrap CI over items (seeded, paired).

    Args:
        statistic: function of the arrays (and `kwargs`) returning a float.
        arrays: equally long arrays; row i of each belongs to item i.
        n_boot: number of bootstrap resamples.
        level: confidence level of the interval.
        seed: seed of the resampling generator (one seed, recorded by the caller).
        kwargs: passed to `statistic`.
    """
    arrs = [np.asarray(a) for a in arrays]
    n = len(arrs[0])
    if any(len(a) != n for a in arrs):
        raise DataError(f"estimate: arrays have different lengths {[len(a) for a in arrs]}")
    if n == 0:
        raise DataError("estimate: no items")
    value = float(statistic(*arrs, **kwargs))
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    with np.errstate(all="ignore"):
        for b in range(n_boot):
            idx = rng.integers(0, n, n)
            try:
                reps[b] = statistic(*(a[idx] for a in arrs), **kwargs)
            except (ValueError, ZeroDivisionError, FloatingPointError):
                reps[b] = np.nan
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return Estimate(value, math.nan, math.nan)
    alpha = (1 - level) / 2
    low, high = np.quantile(reps, [alpha, 1 - alpha])
    return Estimate(value, float(low), float(high))


def _labels(a: np.ndarray, b: np.ndarray, labels: Sequence[Hashable] | None) -> list:
    if labels is not None:
        return list(labels)
    return sorted(set(a.tolist()) | set(b.tolist()), key=lambda x: (str(type(x)), x))


def confusion_matrix(true: Sequence, pred: Sequence, labels: Sequence[Hashable] | None = None) -> np.ndarray:
    """Counts C[i, j] of items with true label labels[i] and predicted label labels[j]."""
    t, p = np.asarray(true), np.asarray(pred)
    labs = _labels(t, p, labels)
    index = {lab: i for i, lab in enumerate(labs)}
    keep = np.array([x in index and y in index for x, y in zip(t.tolist(), p.tolist())], dtype=bool)
    ti = np.array([index[x] for x in t[keep].tolist()], dtype=np.int64)
    pi = np.array([index[x] for x in p[keep].tolist()], dtype=np.int64)
    cm = np.zeros((len(labs), len(labs)), dtype=np.int64)
    np.add.at(cm, (ti, pi), 1)
    return cm


def cohen_kappa(a: Sequence, b: Sequence, weights: str | None = None, labels: Sequence[Hashable] | None = None) -> float:
    """Cohen's kappa between two raters; `weights` None, "linear" or "quadratic" (label order = scale order)."""
    cm = confusion_matrix(a, b, labels).astype(np.float64)
    k = cm.shape[0]
    if weights is None:
        w = 1.0 - np.eye(k)
    elif weights in ("linear", "quadratic"):
        d = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :]).astype(np.float64)
        w = d if weights == "linear" else d**2
    else:
        raise ConfigError(f"unknown kappa weights {weights!r}; use None, 'linear' or 'quadratic'")
    total = cm.sum()
    expected = np.outer(cm.sum(axis=1), cm.sum(axis=0)) / total
    denom = float((w * expected).sum())
    if denom == 0:
        return 1.0 if float((w * cm).sum()) == 0 else math.nan
    return 1.0 - float((w * cm).sum()) / denom


def per_class_accuracy(true: Sequence, pred: Sequence, labels: Sequence[Hashable] | None = None) -> dict:
    """Per true class, the fraction of its items predicted as that class (recall); NaN for absent classes."""
    t, p = np.asarray(true), np.asarray(pred)
    labs = _labels(t, p, labels)
    out = {}
    for lab in labs:
        mask = t == lab
        out[lab] = float(np.mean(p[mask] == lab)) if mask.any() else math.nan
    return out


def class_accuracy(true: Sequence, pred: Sequence, label: Hashable) -> float:
    """Recall of one class (for `estimate`)."""
    t, p = np.asarray(true), np.asarray(pred)
    mask = t == label
    return float(np.mean(p[mask] == label)) if mask.any() else math.nan


def accuracy(true: Sequence, pred: Sequence) -> float:
    """Fraction of exact matches."""
    return float(np.mean(np.asarray(true) == np.asarray(pred)))


def pearson_r(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation (NaN when either side is constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(stats.pearsonr(x, y)[0])


def spearman_r(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties; NaN when either side is constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(stats.spearmanr(x, y)[0])


def mae(x: Sequence[float], y: Sequence[float]) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(x, float) - np.asarray(y, float))))


def within_category_spread(values: Sequence[float], categories: Sequence[Hashable]) -> dict:
    """Per category: sample SD (ddof=1; NaN for one item), number of distinct values and count.

    A model that answers every "happy" face with valence 7 has SD 0 and 1 distinct value, however
    well its mean matches the humans'.
    """
    v, c = np.asarray(values, float), np.asarray(categories)
    out = {}
    for cat in _labels(c, c, None):
        x = v[c == cat]
        out[cat] = {
            "sd": float(np.std(x, ddof=1)) if x.size > 1 else math.nan,
            "n_distinct": int(np.unique(x).size),
            "n": int(x.size),
        }
    return out


def rating_distribution(top_logprobs: Mapping[str, float], scale: Sequence[int] = tuple(range(1, 10))) -> np.ndarray:
    """Probability of each rating in `scale` from one step's top-k token logprobs.

    Tokens are matched after stripping whitespace ("5", " 5" both count for 5; their
    probabilities add up); tokens that are not a rating are ignored and the rest renormalised.
    A step with no rating token among its top-k is a DataError.
    """
    index = {str(r): i for i, r in enumerate(scale)}
    probs = np.zeros(len(scale))
    for token, lp in top_logprobs.items():
        i = index.get(token.strip())
        if i is not None:
            probs[i] += math.exp(lp)
    total = probs.sum()
    if total <= 0:
        raise DataError(f"no rating token of {scale[0]}..{scale[-1]} among the top-k logprobs {list(top_logprobs)[:5]}")
    return probs / total


def entropy(probs: Sequence[float], base: float = 2.0) -> float:
    """Shannon entropy of a distribution (bits by default); log2(9) ~ 3.17 is a uniform 1-9 rating."""
    p = np.asarray(probs, float)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / math.log(base))


def false_positive_rate(true: Sequence, pred: Sequence, category: Hashable) -> float:
    """Among items whose true label is not `category`, the fraction predicted as `category`."""
    t, p = np.asarray(true), np.asarray(pred)
    neg = t != category
    return float(np.mean(p[neg] == category)) if neg.any() else math.nan


def false_positive_rates(
    true: Sequence,
    pred: Sequence,
    groups: Sequence[Hashable] | None = None,
    *,
    labels: Sequence[Hashable] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """False-positive rate per category (and per group x category when `groups` is given), with CIs.

    Returns {"all": {category: Estimate}, "by_group": {group: {category: Estimate}}}.
    """
    t, p = np.asarray(true), np.asarray(pred)
    labs = _labels(t, p, labels)
    out: dict[str, Any] = {
        "all": {c: estimate(false_positive_rate, t, p, category=c, n_boot=n_boot, seed=seed) for c in labs}
    }
    if groups is not None:
        g = np.asarray(groups)
        if len(g) != len(t):
            raise DataError(f"groups has {len(g)} entries for {len(t)} items")
        out["by_group"] = {
            grp: {c: estimate(false_positive_rate, t[g == grp], p[g == grp], category=c, n_boot=n_boot, seed=seed) for c in labs}
            for grp in _labels(g, g, None)
        }
    return out


def agreement_summary(
    human: Sequence, model: Sequence, *, ordinal: bool, n_boot: int = 1000, seed: int = 0
) -> dict[str, Estimate]:
    """The usual agreement estimates with bootstrap CIs (one seed; the same resamples for all).

    Categorical labels (`ordinal=False`): accuracy and unweighted kappa. Ordinal ratings
    (`ordinal=True`, e.g. valence 1-9): additionally linear and quadratic kappa, Pearson r,
    Spearman r and MAE.
    """
    out = {
        "accuracy": estimate(accuracy, human, model, n_boot=n_boot, seed=seed),
        "kappa": estimate(cohen_kappa, human, model, n_boot=n_boot, seed=seed),
    }
    if ordinal:
        labels = sorted(set(np.asarray(human).tolist()) | set(np.asarray(model).tolist()))
        for w in ("linear", "quadratic"):
            out[f"kappa_{w}"] = estimate(cohen_kappa, human, model, weights=w, labels=labels, n_boot=n_boot, seed=seed)
        out["pearson_r"] = estimate(pearson_r, human, model, n_boot=n_boot, seed=seed)
        out["spearman_r"] = estimate(spearman_r, human, model, n_boot=n_boot, seed=seed)
        out["mae"] = estimate(mae, human, model, n_boot=n_boot, seed=seed)
    return out
