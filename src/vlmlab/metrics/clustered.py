"""Closed-form intervals for rows that come in clusters (several ratings of one face).

Rows of one face are not independent: formulas for n independent pairs or trials are too narrow,
and a cluster bootstrap is too narrow with few clusters (percentile, 1-9 ratings: 91-93% at 15-40
faces). These two keep the closed form and take the dependence from the clusters:

- `clustered_fisher_z_ci`: Pearson r by Fisher z with the delete-one-cluster jackknife SE of
  z = atanh(r) and a t quantile on G - 1 df (G clusters);
- `clustered_proportion_ci`: a share of 0/1 rows by a Wilson interval on the effective sample size
  n / deff, with the design effect deff from the cluster-robust variance of the mean (CR1, as
  statsmodels OLS `cov_type="cluster"`); capped at n, so never narrower than Wilson on n rows.

Coverage, 1-9 ratings simulated as the toy faces make them (`tests/metrics/test_coverage.py`,
offline 2000 / 1000 simulations): clustered r 94.9% (15 faces x 3 raters), 95.0% (30 x 5), 95.2%
(60 x 5), where cluster BCa gives 91.9%, 93.7%, 95.1%; clustered share 94.0-95.1% at 15-100 faces,
where the cluster percentile bootstrap gives 91.2-94.9%.

    clustered_fisher_z_ci(others_mean, own, clusters=image_ids, unit="images")
    clustered_proportion_ci(own == others_majority, clusters=image_ids, unit="images")
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats
from scipy.special import ndtri

from vlmlab.errors import DataError
from vlmlab.metrics.inference import Interval, cluster_codes


def _pearson(u: np.ndarray, v: np.ndarray) -> float:
    if u.size < 2 or np.ptp(u) == 0 or np.ptp(v) == 0:
        return math.nan
    return float(stats.pearsonr(u, v)[0])


def clustered_fisher_z_ci(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, clusters: Sequence[Any] | np.ndarray,
                          level: float = 0.95, unit: str = "clusters") -> Interval:
    """Pearson r of clustered pairs: tanh(atanh(r) -/+ t_{G-1} * jackknife SE). NaN bounds for G < 3
    or when leaving a cluster out makes one side constant."""
    u, v = np.asarray(x, np.float64), np.asarray(y, np.float64)
    codes, g = cluster_codes(clusters, len(u))
    r = _pearson(u, v)
    undefined = Interval(r, math.nan, math.nan, "fisher-z-jackknife", unit, g, level)
    if g < 3 or not math.isfinite(r):
        return undefined
    # Leave-one-cluster-out r from cluster sums: totals minus each cluster's own sums.
    parts = [np.bincount(codes, weights=w, minlength=g) for w in (np.ones_like(u), u, v, u * u, v * v, u * v)]
    m, sx, sy, sxx, syy, sxy = (p.sum() - p for p in parts)
    with np.errstate(invalid="ignore", divide="ignore"):
        loo = (sxy - sx * sy / m) / np.sqrt((sxx - sx**2 / m) * (syy - sy**2 / m))
    z_loo = np.arctanh(np.clip(loo, -1 + 1e-15, 1 - 1e-15))
    if not np.isfinite(z_loo).all():
        return undefined
    se = math.sqrt((g - 1) / g * float(((z_loo - z_loo.mean()) ** 2).sum()))
    z = math.atanh(min(max(r, -1 + 1e-15), 1 - 1e-15))
    half = float(stats.t.ppf(1 - (1 - level) / 2, g - 1)) * se
    return Interval(r, math.tanh(z - half), math.tanh(z + half), "fisher-z-jackknife", unit, g, level)


def design_effect(outcomes: Sequence[float] | np.ndarray, clusters: Sequence[Any] | np.ndarray) -> float:
    """Cluster-robust (CR1) variance of the mean over the binomial variance p(1-p)/n; NaN when p is 0 or 1."""
    y = np.asarray(outcomes, np.float64)
    codes, g = cluster_codes(clusters, len(y))
    n, p = len(y), float(y.mean())
    if p in (0.0, 1.0) or g < 2:
        return math.nan
    totals = np.bincount(codes, weights=y - p, minlength=g)
    robust = g / (g - 1) * float((totals**2).sum()) / n**2
    return robust / (p * (1 - p) / n)


def clustered_proportion_ci(outcomes: Sequence[float] | np.ndarray, clusters: Sequence[Any] | np.ndarray,
                            level: float = 0.95, unit: str = "clusters") -> Interval:
    """Share of 1s among 0/1 rows in clusters: Wilson on n_eff = n / max(deff, 1). With no
    variation at all (every row 0, or every row 1) the design effect is unknown and each cluster
    counts once (n_eff = G), the most cautious choice. `n_units` is G."""
    y = np.asarray(outcomes, np.float64)
    if y.size == 0 or not np.isin(y, (0.0, 1.0)).all():
        raise DataError("clustered_proportion_ci needs 0/1 outcomes (one per row)")
    _, g = cluster_codes(clusters, len(y))
    p, n = float(y.mean()), len(y)
    deff = design_effect(y, clusters)
    n_eff = float(g) if math.isnan(deff) else n / max(deff, 1.0)
    z = float(ndtri(1 - (1 - level) / 2))
    centre = (p + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    half = z / (1 + z * z / n_eff) * math.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff * n_eff))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), "wilson-design-effect", unit, g, level)
