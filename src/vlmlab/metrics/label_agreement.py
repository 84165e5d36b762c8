"""Agreement of two raters' labels: the confusion matrix, Cohen's kappa, accuracy, per class.

Labels are any hashable values; None and NaN are never a category: a pair with a missing label is
dropped (`drop_missing`, which also counts them), and a value outside declared `labels` is refused
(DataError), because dropping it would change what is measured without saying so. Weighted kappa
measures distances on a declared ordered scale (1-9 by default), not on the values that happen to
occur. `vlmlab.metrics.agreement` puts CIs on these (`estimate`) and adds the rating statistics.

    kappa = cohen_kappa(human, model, weights="quadratic")      # sklearn's cohen_kappa_score
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Sequence

import numpy as np

from vlmlab.errors import ConfigError, DataError

RATING_SCALE = tuple(range(1, 10))


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, (float, np.floating)) and math.isnan(x))


def missing_mask(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """True where a value is None or NaN."""
    a = np.asarray(values)
    if a.dtype.kind == "f":
        return np.isnan(a)
    if a.dtype == object:
        return np.array([_is_missing(x) for x in a.ravel().tolist()], dtype=bool).reshape(a.shape)
    return np.zeros(a.shape, dtype=bool)


def drop_missing(*arrays: Sequence[Any] | np.ndarray) -> tuple[list[np.ndarray], int]:
    """The rows where no array has None/NaN (dtypes re-inferred), and how many rows were dropped."""
    arrs = [np.asarray(a) for a in arrays]
    if any(len(a) != len(arrs[0]) for a in arrs):
        raise DataError(f"arrays have different lengths {[len(a) for a in arrs]}; give one value per item in each")
    if not arrs:
        return [], 0
    bad = np.zeros(len(arrs[0]), dtype=bool)
    for a in arrs:
        m = missing_mask(a)
        bad |= m if m.ndim == 1 else m.any(axis=tuple(range(1, m.ndim)))
    if not bad.any():
        return arrs, 0
    return [np.array(a[~bad].tolist()) if a.dtype == object else a[~bad] for a in arrs], int(bad.sum())


def kappa_undefined_reason(a: Sequence, b: Sequence, labels: Sequence[Hashable] | None = None) -> str | None:
    """Why Cohen's kappa is undefined on these labels (chance agreement is total), or None."""
    (x, y), _ = drop_missing(a, b)
    if x.size == 0:
        return "no rated pairs"
    seen = set(x.tolist()) | set(y.tolist())
    if len(seen) == 1:
        return f"only one class ({next(iter(seen))!r}) in both raters' labels, so chance agreement is total"
    return None


def ordered_labels(a: np.ndarray, b: np.ndarray, labels: Sequence[Hashable] | None) -> list:
    """The declared `labels` (a value outside them is refused), else the values seen, in a stable order."""
    if labels is not None:
        allowed = set(labels)
        outside = [x for x in list(dict.fromkeys(a.tolist() + b.tolist())) if x not in allowed]
        if outside:
            raise DataError(f"label {outside[0]!r} is not one of the declared labels {list(labels)}; fix the data or declare it")
        return list(labels)
    return sorted(set(a.tolist()) | set(b.tolist()), key=lambda x: (str(type(x)), x))


def confusion_matrix(true: Sequence, pred: Sequence, labels: Sequence[Hashable] | None = None) -> np.ndarray:
    """Counts C[i, j] of items with true label labels[i] and predicted label labels[j] (missing pairs dropped)."""
    (t, p), _ = drop_missing(true, pred)
    labs = ordered_labels(t, p, labels)
    index = {lab: i for i, lab in enumerate(labs)}
    cm = np.zeros((len(labs), len(labs)), dtype=np.int64)
    if t.size:
        np.add.at(cm, (np.array([index[x] for x in t.tolist()]), np.array([index[x] for x in p.tolist()])), 1)
    return cm


def _weighted_scale(t: np.ndarray, p: np.ndarray, labels: Sequence[Hashable] | None) -> Sequence[Hashable]:
    if labels is not None:
        return labels
    values = set(t.tolist()) | set(p.tolist())
    if values <= set(RATING_SCALE) | {float(v) for v in RATING_SCALE}:
        return RATING_SCALE
    raise ConfigError(f"weighted kappa needs its ordered scale: values {sorted(values, key=str)[:5]} are not all on the "
                      "default 1-9 rating scale; pass labels=[...] in scale order")


def cohen_kappa(a: Sequence, b: Sequence, weights: str | None = None, labels: Sequence[Hashable] | None = None) -> float:
    """Cohen's kappa between two raters (as sklearn `cohen_kappa_score`); `weights` None, "linear" or
    "quadratic". Weighted kappa measures distances on the declared scale `labels` (default 1-9), not
    on the values that happen to occur. NaN when undefined (`kappa_undefined_reason` says why);
    pairs with a missing label are dropped."""
    (t, p), _ = drop_missing(a, b)
    if weights is None:
        labs = labels
    elif weights in ("linear", "quadratic"):
        labs = _weighted_scale(t, p, labels)
    else:
        raise ConfigError(f"unknown kappa weights {weights!r}; use None, 'linear' or 'quadratic'")
    cm = confusion_matrix(t, p, labs).astype(np.float64)
    k = cm.shape[0]
    if weights is None:
        w = 1.0 - np.eye(k)
    else:
        d = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :]).astype(np.float64)
        w = d if weights == "linear" else d**2
    total = cm.sum()
    if total == 0:
        return math.nan
    expected = np.outer(cm.sum(axis=1), cm.sum(axis=0)) / total
    denom = float((w * expected).sum())
    if denom == 0:
        return math.nan
    return 1.0 - float((w * cm).sum()) / denom


def _kappa_cluster_sums(a: Sequence, b: Sequence, *, codes: np.ndarray, n_units: int, weights: str | None = None,
                        labels: Sequence[Hashable] | None = None) -> np.ndarray:
    """[G, K*K] confusion counts per cluster (rows with a missing label count nowhere)."""
    x, y = np.asarray(a), np.asarray(b)
    keep = ~(missing_mask(x) | missing_mask(y))
    t, p = (np.array(v[keep].tolist()) if v.dtype == object else v[keep] for v in (x, y))
    labs = _weighted_scale(t, p, labels) if weights in ("linear", "quadratic") else ordered_labels(t, p, labels)
    index = {lab: i for i, lab in enumerate(labs)}
    k = len(labs)
    counts = np.zeros((n_units, k * k))
    if t.size:
        cells = np.array([index[u] for u in t.tolist()]) * k + np.array([index[v] for v in p.tolist()])
        np.add.at(counts, (codes[keep], cells), 1.0)
    return counts


def _kappa_from_sums(sums: np.ndarray, weights: str | None = None, labels: Sequence[Hashable] | None = None) -> np.ndarray:
    """Kappa of each row of flattened confusion counts [..., K*K] (NaN where undefined), as `cohen_kappa`."""
    k = int(round(math.sqrt(sums.shape[-1])))
    cm = sums.reshape(*sums.shape[:-1], k, k)
    if weights is None:
        w = 1.0 - np.eye(k)
    else:
        d = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :]).astype(np.float64)
        w = d if weights == "linear" else d**2
    total = cm.sum(axis=(-2, -1))
    expected = cm.sum(axis=-1)[..., :, None] * cm.sum(axis=-2)[..., None, :] / np.where(total > 0, total, np.nan)[..., None, None]
    denom = (w * expected).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 1.0 - (w * cm).sum(axis=(-2, -1)) / denom, np.nan)


# The bootstrap resamples kappa as weighted sums of per-cluster confusion matrices (`bootstrap_replicates`).
cohen_kappa.cluster_sums = _kappa_cluster_sums  # type: ignore[attr-defined]
cohen_kappa.from_sums = _kappa_from_sums  # type: ignore[attr-defined]


def per_class_accuracy(true: Sequence, pred: Sequence, labels: Sequence[Hashable] | None = None) -> dict:
    """Per true class, the fraction of its items predicted as that class (recall); NaN for absent classes."""
    (t, p), _ = drop_missing(true, pred)
    out = {}
    for lab in ordered_labels(t, p, labels):
        mask = t == lab
        out[lab] = float(np.mean(p[mask] == lab)) if mask.any() else math.nan
    return out


def accuracy(true: Sequence, pred: Sequence) -> float:
    """Fraction of exact matches among pairs with both labels present."""
    (t, p), _ = drop_missing(true, pred)
    return float(np.mean(t == p)) if t.size else math.nan
