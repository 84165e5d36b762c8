"""CKA (linear, debiased, RBF) and RSA: known properties and independent reference computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist
from scipy.stats import ortho_group

from vlmlab.metrics.representation import kernel_cka, linear_cka, rbf_cka, rdm, rsa, rsa_rdms


@pytest.fixture
def reps():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 12))
    Y = X @ rng.normal(size=(12, 8)) + 0.5 * rng.normal(size=(60, 8))
    return X, Y


@pytest.mark.parametrize("fn", [linear_cka, lambda a, b: linear_cka(a, b, debiased=True), rbf_cka])
def test_cka_of_a_representation_with_itself_is_one(reps, fn):
    X, _ = reps
    assert fn(X, X) == pytest.approx(1.0)


@pytest.mark.parametrize("fn", [linear_cka, lambda a, b: linear_cka(a, b, debiased=True), rbf_cka])
def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling(reps, fn):
    X, Y = reps
    Q = ortho_group.rvs(12, random_state=1)
    base = fn(X, Y)
    assert fn(X @ Q * 3.7, Y) == pytest.approx(base, rel=1e-9)
    assert fn(X, Y * 0.01) == pytest.approx(base, rel=1e-9)
    assert 0 < base < 1


def test_linear_cka_equals_the_gram_matrix_definition(reps):
    X, Y = reps
    n = X.shape[0]
    H = np.eye(n) - 1 / n
    K, L = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    expected = np.trace(K @ L) / np.sqrt(np.trace(K @ K) * np.trace(L @ L))
    assert linear_cka(X, Y) == pytest.approx(expected)
    assert kernel_cka(X @ X.T, Y @ Y.T) == pytest.approx(expected)


def test_debiased_cka_matches_a_direct_unbiased_hsic(reps):
    X, Y = reps
    X, Y = X - X.mean(0), Y - Y.mean(0)

    def hsic_u(K, L):  # Song et al. (2012), eq. 5, written out term by term
        n = K.shape[0]
        K, L = K * (1 - np.eye(n)), L * (1 - np.eye(n))
        one = np.ones(n)
        return (np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ K @ L @ one) / (n * (n - 3))

    K, L = X @ X.T, Y @ Y.T
    expected = hsic_u(K, L) / np.sqrt(hsic_u(K, K) * hsic_u(L, L))
    assert linear_cka(X, Y, debiased=True) == pytest.approx(expected)


def test_debiased_cka_removes_the_bias_for_unrelated_wide_representations():
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(40, 500)), rng.normal(size=(40, 500))
    assert linear_cka(X, Y) > 0.5  # biased CKA of noise is high when features >> items
    assert abs(linear_cka(X, Y, debiased=True)) < 0.1


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean"])
def test_rsa_is_spearman_between_pdist_rdms(reps, metric):
    X, Y = reps
    expected = stats.spearmanr(pdist(X, metric), pdist(Y, metric))[0]
    assert rsa(X, Y, metric=metric) == pytest.approx(expected)
    assert rsa(X, X, metric=metric) == pytest.approx(1.0)
    np.testing.assert_allclose(rdm(X, metric), pdist(X, metric))


def test_rsa_against_one_dimensional_human_ratings(reps):
    X, _ = reps
    ratings = X[:, 0] * 2 + 5
    value = rsa(X, ratings, metric="correlation", metric_y="euclidean")
    assert value == pytest.approx(stats.spearmanr(pdist(X, "correlation"), pdist(ratings[:, None], "euclidean"))[0])
    assert rsa_rdms(pdist(X), pdist(X), method="pearson") == pytest.approx(1.0)
