"""Intervals, power and multiplicity against scipy/statsmodels; cluster resampling checked by identities."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestPower
from statsmodels.stats.proportion import proportion_confint

from vlmlab.errors import ConfigError, DataError
from vlmlab.metrics.inference import (
    Interval,
    bootstrap_ci,
    bootstrap_replicates,
    ci_label,
    fisher_z_ci,
    format_p,
    holm,
    minimum_detectable_difference,
    proportion_ci,
)


def _scipy_ci(data: tuple, statistic, reps: np.ndarray, method: str, paired: bool = False):
    """scipy.stats.bootstrap's interval computed from OUR bootstrap distribution (n_resamples=0)."""
    res = stats.bootstrap(data, statistic, n_resamples=0, bootstrap_result=SimpleNamespace(bootstrap_distribution=reps),
                          method=method, paired=paired, vectorized=False)
    return res.confidence_interval.low, res.confidence_interval.high


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_mean_interval_equals_scipy_bootstrap(method: str) -> None:
    x = np.random.default_rng(1).exponential(size=40)
    ci = bootstrap_ci("mean", x, method=method, resamples=2000, seed=3)
    _, reps, _, _ = bootstrap_replicates("mean", x, resamples=2000, seed=3)
    assert (ci.low, ci.high) == pytest.approx(_scipy_ci((x,), np.mean, reps, method), rel=1e-12)
    same = bootstrap_ci(np.mean, x, method=method, resamples=2000, seed=3)  # the generic path draws the same rows
    assert (same.low, same.high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert ci.low < x.mean() < ci.high and ci.n_units == 40 and ci.resamples == 2000


def test_bca_of_a_paired_statistic_equals_scipy() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=25)
    y = 0.8 * x + 0.6 * rng.normal(size=25)
    r = lambda a, b: stats.pearsonr(a, b)[0]  # noqa: E731
    ci = bootstrap_ci(r, x, y, method="bca", resamples=400, seed=0)
    _, reps, _, _ = bootstrap_replicates(r, x, y, resamples=400, seed=0)
    assert (ci.low, ci.high) == pytest.approx(_scipy_ci((x, y), r, reps, "BCa", paired=True), rel=1e-10)


def test_independent_draws_agree_with_scipy_within_monte_carlo_error() -> None:
    x = np.random.default_rng(4).gamma(2.0, size=60)
    ours = bootstrap_ci("mean", x, method="bca", resamples=20000, seed=0)
    theirs = stats.bootstrap((x,), np.mean, n_resamples=20000, method="BCa", rng=np.random.default_rng(9)).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.03) and ours.high == pytest.approx(theirs.high, abs=0.03)


def test_cluster_bootstrap_identities() -> None:
    rng = np.random.default_rng(5)
    images = np.repeat(np.arange(30), 4)
    acc = (rng.random(120) < np.repeat(rng.random(30), 4)).astype(float)
    # singleton clusters are the item bootstrap (same seed, same resamples)
    a = bootstrap_ci("mean", acc, clusters=np.arange(120).astype(str), seed=1)
    b = bootstrap_ci("mean", acc, seed=1)
    assert (a.low, a.high) == (b.low, b.high)
    # the vectorised cluster mean equals the mean of the drawn rows
    fast = bootstrap_ci("mean", acc, clusters=images, unit="images", method="bca", resamples=500, seed=2)
    slow = bootstrap_ci(np.mean, acc, clusters=images, unit="images", method="bca", resamples=500, seed=2)
    assert (fast.low, fast.high) == pytest.approx((slow.low, slow.high), rel=1e-12)
    assert fast.n_units == 30 and fast.describe() == "95% BCa bootstrap over images (n=30, B=500)"
    # equal-size clusters: cluster bootstrap of the mean == item bootstrap of the cluster means (BCa too)
    means = acc.reshape(30, 4).mean(axis=1)
    _, reps, _, _ = bootstrap_replicates("mean", acc, clusters=images, resamples=500, seed=2)
    assert (fast.low, fast.high) == pytest.approx(_scipy_ci((means,), np.mean, reps, "BCa"), rel=1e-10)
    # and it is wider than the (wrong) question bootstrap on correlated data
    items = bootstrap_ci("mean", acc, method="bca", resamples=500, seed=2)
    assert fast.high - fast.low > 1.3 * (items.high - items.low)


def test_cluster_labels_are_checked() -> None:
    with pytest.raises(DataError, match="one cluster label"):
        bootstrap_ci("mean", [1.0, 2.0, 3.0], clusters=["a", "b"])
    with pytest.raises(DataError, match="None/NaN"):
        bootstrap_ci("mean", [1.0, 2.0], clusters=["a", None])
    with pytest.raises(ConfigError, match="percentile"):
        bootstrap_ci("mean", [1.0, 2.0], method="basic")


@pytest.mark.parametrize("k,n", [(0, 30), (1, 30), (15, 30), (30, 30), (7, 200), (3, 5)])
@pytest.mark.parametrize("method,sm_method", [("wilson", "wilson"), ("clopper-pearson", "beta")])
def test_proportion_ci_equals_statsmodels(k: int, n: int, method: str, sm_method: str) -> None:
    ci = proportion_ci(k, n, method=method, unit="faces")
    assert (ci.low, ci.high) == pytest.approx(proportion_confint(k, n, alpha=0.05, method=sm_method), abs=1e-12)
    assert ci.estimate == k / n and ci.describe() == f"95% {'Wilson score' if method == 'wilson' else 'Clopper-Pearson exact'} interval over faces (n={n})"


def test_zero_of_thirty_is_not_zero_to_zero() -> None:
    ci = proportion_ci(0, 30)
    assert ci.low == 0.0 and ci.high == pytest.approx(0.1135, abs=1e-4)
    with pytest.raises(DataError):
        proportion_ci(3, 0)


def test_fisher_z_equals_scipy_pearsonr_interval() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=30)
    y = 0.5 * x + rng.normal(size=30)
    res = stats.pearsonr(x, y)
    ref = res.confidence_interval(0.95)
    ci = fisher_z_ci(res.statistic, 30)
    assert (ci.low, ci.high) == pytest.approx((ref.low, ref.high), rel=1e-12)
    assert math.isnan(fisher_z_ci(0.5, 3).low)


def test_holm_equals_statsmodels() -> None:
    rng = np.random.default_rng(7)
    for m in (1, 2, 5, 12):
        p = rng.random(m) ** 3
        p[: m // 3] = p[0]  # ties
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], rel=1e-12)
    out = holm([0.01, np.nan, 0.04])
    assert np.isnan(out[1]) and list(out[[0, 2]]) == pytest.approx(list(multipletests([0.01, 0.04], method="holm")[1]))


def test_minimum_detectable_difference_has_the_stated_power() -> None:
    n, sd = 50, 0.4
    mdd = minimum_detectable_difference(n, sd)
    assert TTestPower().power(effect_size=mdd / sd, nobs=n, alpha=0.05) == pytest.approx(0.8, abs=1e-6)
    # large n: the normal approximation (z_0.975 + z_0.8) sd / sqrt(n); NormalIndPower with a huge 2nd group is one-sample
    big = minimum_detectable_difference(5000, sd)
    assert big == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / math.sqrt(5000), rel=2e-3)
    es = NormalIndPower().solve_power(effect_size=None, nobs1=5000, ratio=1e6, alpha=0.05, power=0.8)
    assert big / sd == pytest.approx(es, rel=2e-3)
    # simulation: paired t-tests at the MDD reject ~80% of the time
    d = np.random.default_rng(8).normal(mdd, sd, size=(4000, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    assert np.mean(np.abs(t) > stats.t.ppf(0.975, n - 1)) == pytest.approx(0.8, abs=0.025)
    assert math.isnan(minimum_detectable_difference(1, sd)) and minimum_detectable_difference(10, 0.0) == 0.0


def test_p_formatting_and_labels() -> None:
    assert format_p(0.0, 2000) == "< 1/2000"
    assert format_p(0.0004, 2000) == "< 1/2000"
    assert format_p(0.001, 2000) == "0.001"
    assert format_p(1e-6) == "< 0.001" and format_p(0.04567) == "0.0457" and format_p(float("nan")) == "–"
    assert ci_label("percentile", "images", resamples=2000) == "95% percentile bootstrap over images, B=2000"
    iv = Interval(0.5, float("nan"), 0.7, "bca", "raters", 12, 0.9, 1000)
    assert iv.to_json() == {"estimate": 0.5, "low": None, "high": 0.7, "method": "bca", "unit": "raters", "n_units": 12,
                            "level": 0.9, "resamples": 1000, "dropped": 0, "ci": "90% BCa bootstrap over raters (n=12, B=1000)"}
    assert iv.to_dict()["value"] == 0.5 and iv.value == 0.5
    undefined = Interval(float("nan"), float("nan"), float("nan"), "percentile", "items", 30, dropped=2, note="only one class")
    assert undefined.to_json()["note"] == "only one class" and undefined.to_json()["estimate"] is None
    assert undefined.describe() == "95% percentile bootstrap over items (n=30; 2 rows with missing values dropped)"
