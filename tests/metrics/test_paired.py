"""Paired tests against scipy.stats.permutation_test and statsmodels mcnemar; bootstrap p matches its CI."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from vlmlab.errors import DataError
from vlmlab.metrics.paired import mcnemar_test, paired_bootstrap, paired_mdd, sign_flip_test


def _scipy_paired_perm(a: np.ndarray, b: np.ndarray, n_resamples: float, seed: int = 0) -> float:
    return stats.permutation_test((b, a), lambda x, y: np.mean(x - y), permutation_type="samples", vectorized=False,
                                  n_resamples=n_resamples, rng=np.random.default_rng(seed)).pvalue


def test_exact_sign_flip_equals_scipy_exact_permutation() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(12), rng.random(12) + 0.2
    ours = sign_flip_test(a, b)
    assert ours.test.startswith("exact") and ours.p_value == pytest.approx(_scipy_paired_perm(a, b, np.inf), rel=1e-12)
    assert ours.estimate == pytest.approx(np.mean(b - a))


def test_random_sign_flip_agrees_with_scipy_within_monte_carlo_error() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random(150), rng.random(150) + 0.06
    ours = sign_flip_test(a, b, resamples=20000)
    assert ours.resamples == 20000 and ours.p_value == pytest.approx(_scipy_paired_perm(a, b, 20000), abs=0.01)


def test_exact_sign_flip_on_zero_one_outcomes_is_exact_mcnemar() -> None:
    rng = np.random.default_rng(0)
    a = (rng.random(60) < 0.5).astype(float)
    b = np.where(rng.random(60) < 0.2, 1 - a, a)  # 12 discordant pairs (exact enumeration up to 16)
    table = [[np.sum((a == 1) & (b == 1)), np.sum((a == 1) & (b == 0))], [np.sum((a == 0) & (b == 1)), np.sum((a == 0) & (b == 0))]]
    ref = mcnemar(table, exact=True).pvalue
    assert sign_flip_test(a, b).p_value == pytest.approx(ref, rel=1e-10)
    m = mcnemar_test(a, b)
    assert m.test == "McNemar exact binomial" and m.p_value == pytest.approx(ref, rel=1e-12)


def test_mcnemar_chi_square_for_many_discordant_pairs_and_refuses_soft_scores() -> None:
    rng = np.random.default_rng(3)
    a = (rng.random(400) < 0.5).astype(float)
    b = np.where(rng.random(400) < 0.3, 1 - a, a)
    table = [[np.sum((a == 1) & (b == 1)), np.sum((a == 1) & (b == 0))], [np.sum((a == 0) & (b == 1)), np.sum((a == 0) & (b == 0))]]
    assert mcnemar_test(a, b).p_value == pytest.approx(mcnemar(table, exact=False, correction=True).pvalue, rel=1e-12)
    with pytest.raises(DataError, match="0/1 outcomes"):
        mcnemar_test([0.3, 1.0], [0.6, 0.0])


def test_paired_bootstrap_p_is_the_inversion_of_its_interval() -> None:
    rng = np.random.default_rng(4)
    for shift in (0.0, 0.03, 0.08, 0.2):
        a, b = rng.random(200), rng.random(200) + shift
        t = paired_bootstrap(a, b, resamples=1000, seed=1)
        assert (t.p_value < 0.05) == (t.difference.low > 0 or t.difference.high < 0)
    t = paired_bootstrap(np.zeros(300), np.ones(300) * 0.5 + rng.random(300) * 0.1, resamples=2000)
    assert t.p_value == 0.0 and t.p_text() == "< 1/2000"
    assert paired_bootstrap(np.ones(5), np.ones(5)).p_value == 1.0


def test_clustered_tests_use_images_as_units() -> None:
    rng = np.random.default_rng(5)
    images = np.repeat([f"img{i}" for i in range(50)], 4)
    shared = np.repeat(rng.normal(0, 0.4, 50), 4)  # the image decides whether B helps
    a = rng.random(200)
    b = np.clip(a + shared + rng.normal(0, 0.05, 200), 0, 1)
    clustered = paired_bootstrap(a, b, clusters=images, unit="images", seed=0)
    naive = paired_bootstrap(a, b, seed=0)
    assert clustered.n_units == 50 and clustered.difference.describe() == "95% percentile bootstrap over images (n=50, B=2000)"
    assert clustered.difference.high - clustered.difference.low > 1.5 * (naive.difference.high - naive.difference.low)
    flip = sign_flip_test(a, b, clusters=images, unit="images")
    assert flip.n_units == 50 and "over images" in flip.test
    mdd_c, g, _ = paired_mdd(a, b, clusters=images)
    mdd_q, n, sd = paired_mdd(a, b)
    assert (g, n) == (50, 200) and mdd_c > 1.5 * mdd_q and sd == pytest.approx(np.std(b - a, ddof=1))


def test_bad_pairs() -> None:
    with pytest.raises(DataError, match="equally long"):
        paired_bootstrap([1.0, 0.0], [1.0])
    with pytest.raises(DataError, match="NaN"):
        sign_flip_test([1.0, np.nan], [1.0, 0.0])
    with pytest.raises(DataError, match="no shared items"):
        paired_bootstrap([], [])


def test_clustered_mdd_uses_the_cluster_robust_standard_error_of_statsmodels() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(6)
    images = np.repeat(np.arange(70), rng.integers(1, 6, 70))  # unequal clusters
    a = rng.random(images.size)
    b = np.clip(a + np.repeat(rng.normal(0, 0.3, 70), np.bincount(images)) + rng.normal(0, 0.1, images.size), 0, 1)
    _, g, sd = paired_mdd(a, b, clusters=images)
    ols = sm.OLS(b - a, np.ones(images.size)).fit(cov_type="cluster", cov_kwds={"groups": images})
    assert g == 70 and sd / np.sqrt(g) == pytest.approx(float(ols.bse[0]), rel=1e-10)
