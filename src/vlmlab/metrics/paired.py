"""Paired tests of a difference in accuracy between two systems scored on the same items.

    t = paired_bootstrap(acc_a, acc_b, clusters=image_ids, unit="images")   # default for ICL
    t.difference.describe(), format_p(t.p_value, t.resamples)
    sign_flip_test(acc_a, acc_b, clusters=image_ids, unit="images")      # exact/permutation
    mcnemar_test(correct_a, correct_b)                                    # 0/1 outcomes, independent items
    paired_mdd(acc_a, acc_b, clusters=image_ids)                          # what n can detect at 80% power

Questions that share an image are not independent: resampling questions then rejects a true
null 12-18% of the time instead of 5%. With `clusters` (one label per item) whole clusters are
resampled (bootstrap) or have their signs flipped together (permutation). The bootstrap p is the
inversion of its percentile interval, so p < 0.05 exactly when the 95% interval excludes 0.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from vlmlab.errors import ConfigError, DataError
from vlmlab.metrics.inference import (BOOTSTRAP_METHODS, METHOD_NAMES, Interval, bca_bounds, bootstrap_replicates, cluster_codes, format_p,
                                      minimum_detectable_difference, percentile_bounds)

EXACT_MAX_UNITS = 16  # exact enumeration of 2^m sign flips up to m non-zero units


@dataclass(frozen=True)
class PairedTest:
    """Result of a paired test: the mean difference B - A (with a CI when the test gives one) and p."""

    test: str
    estimate: float
    p_value: float
    n_units: int
    unit: str
    resamples: int | None = None
    difference: Interval | None = None

    def p_text(self) -> str:
        """p formatted for people ("< 1/B" below the resampling resolution)."""
        return format_p(self.p_value, self.resamples)

    def to_json(self) -> dict[str, Any]:
        return {"test": self.test, "estimate": self.estimate, "p": None if math.isnan(self.p_value) else self.p_value,
                "p_text": self.p_text(), "n_units": self.n_units, "unit": self.unit, "resamples": self.resamples,
                "difference": None if self.difference is None else self.difference.to_json()}


def _pair(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise DataError(f"paired test needs two equally long 1-D score lists (got {x.shape} and {y.shape})")
    if x.size == 0:
        raise DataError("paired test: no shared items to compare")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataError("paired test: a score is NaN/inf; drop unscored items from both runs first")
    return y - x


def paired_bootstrap(a: Sequence[float], b: Sequence[float], clusters: Sequence[Any] | None = None, unit: str | None = None,
                     method: str = "percentile", resamples: int = 2000, level: float = 0.95, seed: int = 0) -> PairedTest:
    """Mean of b - a with a bootstrap CI over units and the two-sided p = 2 min(P*(d <= 0), P*(d >= 0))."""
    d = _pair(a, b)
    unit = unit or ("items" if clusters is None else "clusters")
    if method not in BOOTSTRAP_METHODS:
        raise ConfigError(f"unknown bootstrap method {method!r}; use 'percentile' or 'bca'")
    est, reps, jack, g = bootstrap_replicates("mean", d, clusters=clusters, resamples=resamples, seed=seed, jackknife=method == "bca")
    lo, hi = percentile_bounds(reps, level) if method == "percentile" else bca_bounds(reps, est, jack, level)  # type: ignore[arg-type]
    p = 1.0 if np.all(d == 0) else float(min(1.0, 2 * min(np.mean(reps <= 0), np.mean(reps >= 0))))
    ci = Interval(est, lo, hi, method, unit, g, level, resamples)
    return PairedTest(f"paired {METHOD_NAMES[method]} over {unit} (B={resamples})", est, p, g, unit, resamples, ci)


def sign_flip_test(a: Sequence[float], b: Sequence[float], clusters: Sequence[Any] | None = None, unit: str | None = None,
                   resamples: int = 10000, seed: int = 0) -> PairedTest:
    """Paired permutation test: under the null A and B are exchangeable within each unit, so the
    signs of the units' summed differences are flipped. Exact (all 2^m flips) when at most
    EXACT_MAX_UNITS units differ, else `resamples` random flips with p = (count + 1) / (B + 1);
    both as scipy.stats.permutation_test(permutation_type="samples")."""
    d = _pair(a, b)
    codes, g = cluster_codes(clusters, len(d))
    sums = np.bincount(codes, weights=d, minlength=g)
    unit = unit or ("items" if clusters is None else "clusters")
    observed = float(sums.sum())
    nz = sums[sums != 0]
    if nz.size == 0:
        return PairedTest(f"exact sign-flip permutation over {unit}", 0.0, 1.0, g, unit)
    if nz.size <= EXACT_MAX_UNITS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=nz.size)))
        null, adjust, b_used, name = signs @ nz, 0, None, f"exact sign-flip permutation over {unit}"
    else:
        signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(resamples, nz.size))
        null, adjust, b_used, name = signs @ nz, 1, resamples, f"sign-flip permutation over {unit} (B={resamples})"
    gamma = abs(1e-14 * observed)
    less = (np.count_nonzero(null <= observed + gamma) + adjust) / (null.size + adjust)
    greater = (np.count_nonzero(null >= observed - gamma) + adjust) / (null.size + adjust)
    return PairedTest(name, observed / len(d), float(min(1.0, 2 * min(less, greater))), g, unit, b_used)


def mcnemar_test(a: Sequence[float], b: Sequence[float], exact: bool | None = None) -> PairedTest:
    """McNemar's test (statsmodels) for 0/1 outcomes of independent items; exact binomial when fewer
    than 25 discordant pairs (or `exact=True`), else chi-square with continuity correction."""
    from statsmodels.stats.contingency_tables import mcnemar

    d = _pair(a, b)
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not (np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all()):
        raise DataError("McNemar's test needs 0/1 outcomes (soft VQA accuracies are not); use sign_flip_test or paired_bootstrap")
    only_a, only_b = int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum())
    table = [[int(((x == 1) & (y == 1)).sum()), only_a], [only_b, int(((x == 0) & (y == 0)).sum())]]
    use_exact = (only_a + only_b) < 25 if exact is None else exact
    res = mcnemar(table, exact=use_exact, correction=True)
    name = "McNemar exact binomial" if use_exact else "McNemar chi-square (continuity corrected)"
    return PairedTest(name, float(d.mean()), float(res.pvalue), len(d), "items")


def paired_mdd(a: Sequence[float], b: Sequence[float], clusters: Sequence[Any] | None = None,
               alpha: float = 0.05, power: float = 0.8) -> tuple[float, int, float]:
    """(minimum detectable difference of mean(b - a), number of units, per-unit SD used).

    With clusters the SD is that of the linearised cluster totals u_g = D_g - mean(d) n_g, scaled
    so that SD / sqrt(G) is the cluster-robust standard error of mean(d) (statsmodels OLS with
    cov_type="cluster"); without clusters it is the SD of the differences.
    """
    d = _pair(a, b)
    codes, g = cluster_codes(clusters, len(d))
    if g < 2:
        return math.nan, g, math.nan
    totals = np.bincount(codes, weights=d, minlength=g)
    sizes = np.bincount(codes, minlength=g)
    u = totals - d.mean() * sizes
    sd = float(np.std(u, ddof=1) * g / len(d))
    return minimum_detectable_difference(g, sd, alpha=alpha, power=power), g, sd
