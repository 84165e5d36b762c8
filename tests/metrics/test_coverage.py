"""Intervals the rating analysis uses for clustered rows: against statsmodels/scipy, and their coverage.

Ratings on 1-9 are simulated as the toy faces make them (`vlmlab.toyworld.faces`: a face's valence
from its emotion, rater bias, noise, rounding, clipping), several raters per face, each rating
against the mean (or majority) of the other raters of its face: the human-agreement row. The truth
is the statistic on 200,000 faces; coverage must be within 93-97%. Offline, 2000 simulations each:
Fisher z with a cluster-jackknife SE 94.9% (15 faces x 3 raters) / 95.0% (30 x 5) / 95.2% (60 x 5),
cluster BCa 91.9% / 93.7% / 95.1% (which is why it is not the default for clustered r). Shares
(1000 simulations, 15 x 3 / 40 x 5 / 100 x 5): Wilson on the design-effect n 94.9% / 94.0% / 95.1%,
the cluster percentile bootstrap 91.2% / 92.8% / 94.9%.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from vlmlab.metrics import agreement as ag
from vlmlab.metrics.clustered import clustered_fisher_z_ci, clustered_proportion_ci, design_effect
from vlmlab.toyworld import faces as toy

VALENCE_MEANS = np.array([v for v, _ in toy.EMOTION_VA.values()])


def _ratings(rng: np.random.Generator, faces: int, raters: int, pool: int | None = 40) -> np.ndarray:
    """[faces, raters] valence ratings; raters drawn from a pool with fixed biases (None: a new rater per rating)."""
    mu = np.clip(VALENCE_MEANS[rng.integers(0, len(VALENCE_MEANS), faces)] + rng.normal(0, toy.VA_JITTER_SD, faces), 1, 9)
    if pool is None:
        bias = rng.normal(0, toy.RATER_BIAS_SD, (faces, raters))
    else:
        b = rng.normal(0, toy.RATER_BIAS_SD, pool)
        bias = np.stack([b[rng.permutation(pool)[:raters]] for _ in range(faces)])
    return np.clip(np.rint(mu[:, None] + bias + rng.normal(0, toy.VALENCE_NOISE_SD, (faces, raters))), 1, 9)


def _leave_one_out(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean of the other raters, own rating, face id) per rating."""
    k = y.shape[1]
    others = (y.sum(axis=1, keepdims=True) - y) / (k - 1)
    return others.ravel(), y.ravel(), np.repeat(np.arange(y.shape[0]), k)


def test_cluster_jackknife_equals_leave_one_cluster_out_scipy():
    rng = np.random.default_rng(3)
    x, y, faces = _leave_one_out(_ratings(rng, 12, 4))
    labels = np.array([f"face{f}" for f in faces])
    ci = clustered_fisher_z_ci(x, y, labels, unit="images")
    z_loo = np.array([math.atanh(stats.pearsonr(x[faces != f], y[faces != f])[0]) for f in range(12)])
    se = math.sqrt(11 / 12 * ((z_loo - z_loo.mean()) ** 2).sum())
    half = stats.t.ppf(0.975, 11) * se
    r = stats.pearsonr(x, y)[0]
    assert ci.estimate == pytest.approx(r, rel=1e-12) and ci.n_units == 12 and ci.method == "fisher-z-jackknife"
    assert (ci.low, ci.high) == pytest.approx((math.tanh(math.atanh(r) - half), math.tanh(math.atanh(r) + half)), rel=1e-10)
    assert ag.estimate(ag.pearson_r, x, y, clusters=labels, unit="images").to_json()["ci"] == \
        "95% Fisher z interval with a cluster-jackknife SE over images (n=12)"


@pytest.mark.parametrize("faces,raters", [(15, 3), (30, 5)])
def test_clustered_r_interval_covers_95_percent(faces: int, raters: int):
    rng = np.random.default_rng(0)
    truth = ag.pearson_r(*_leave_one_out(_ratings(rng, 200_000, raters, pool=None))[:2])
    hits = []
    for _ in range(1000):
        x, y, ids = _leave_one_out(_ratings(rng, faces, raters))
        e = ag.estimate(ag.pearson_r, x, y, clusters=ids, unit="images")  # the default: what human_agreement uses
        hits.append(e.low <= truth <= e.high)
    assert 0.93 <= np.mean(hits) <= 0.97


def test_design_effect_wilson_equals_statsmodels():
    """deff from statsmodels' cluster-robust SE of an intercept-only OLS; the interval is statsmodels'
    Wilson on n / deff trials."""
    import statsmodels.api as sm
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(2)
    faces = np.repeat(np.arange(25), 4)
    y = (rng.random(100) < rng.beta(0.8, 0.6, 25)[faces]).astype(float)  # faces differ a lot: deff > 1
    fit = sm.OLS(y, np.ones_like(y)).fit(cov_type="cluster", cov_kwds={"groups": faces})
    p = y.mean()
    deff = float(fit.bse[0] ** 2 / (p * (1 - p) / 100))
    assert design_effect(y, faces) == pytest.approx(deff, rel=1e-10) and deff > 1
    ci = clustered_proportion_ci(y, faces, unit="images")
    assert (ci.low, ci.high) == pytest.approx(proportion_confint(p * 100 / deff, 100 / deff, method="wilson"), rel=1e-10)
    assert ci.n_units == 25 and ci.method == "wilson-design-effect"
    independent = clustered_proportion_ci(y, np.arange(100))  # every row its own cluster: CR1's deff is n / (n - 1)
    assert (independent.low, independent.high) == pytest.approx(proportion_confint(p * 99, 99, method="wilson"), rel=1e-10)
    none = clustered_proportion_ci(np.ones(12), np.repeat(np.arange(4), 3))  # no variation: each face counts once
    assert (none.low, none.high) == pytest.approx(proportion_confint(4, 4, method="wilson"))


@pytest.mark.parametrize("faces,raters", [(15, 3), (40, 5)])
def test_clustered_proportion_covers_95_percent(faces: int, raters: int):
    """Human agreement accuracy: share of ratings equal to the other raters' majority, several per face.
    Faces differ in how recognisable they are (P(correct) ~ Beta(4, 1.5)), so ratings of one face correlate."""
    rng = np.random.default_rng(1)
    a, b = 4.0, 1.5
    truth = a / (a + b)
    hits = []
    for _ in range(1000):
        correct = (rng.random((faces, raters)) < rng.beta(a, b, faces)[:, None]).astype(float).ravel()
        ci = clustered_proportion_ci(correct, np.repeat(np.arange(faces), raters), unit="images")
        hits.append(ci.low <= truth <= ci.high)
    assert 0.93 <= np.mean(hits) <= 0.97


def test_spearman_bca_covers_95_percent_at_n_30():
    """Per-condition Spearman r (one rating per image, BCa): 94.2% / 93.9% at rho 0.4 / 0.7 offline (1000 simulations)."""
    rng = np.random.default_rng(0)

    def pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
        z = rng.multivariate_normal([0, 0], [[1, 0.4], [0.4, 1]], size=n)
        return np.clip(np.round(5 + 1.5 * z[:, 0]), 1, 9), np.clip(np.round(5.8 + 1.5 * z[:, 1]), 1, 9)

    truth = stats.spearmanr(*pairs(400_000))[0]
    hits = []
    for seed in range(600):
        e = ag.estimate(ag.spearman_r, *pairs(30), n_boot=1000, seed=seed)
        hits.append(e.low <= truth <= e.high)
    assert 0.93 <= np.mean(hits) <= 0.97
