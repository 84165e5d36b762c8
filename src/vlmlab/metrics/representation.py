"""Representation similarity: linear, debiased and RBF-kernel CKA, and RSA between RDMs.

Inputs are (n_items, n_features) arrays whose rows describe the same items (e.g. hidden states of a
layer for each face, and human valence/arousal ratings for the same faces).

- `linear_cka(X, Y)`: Kornblith et al. (2019), ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F) on centred
  columns; invariant to orthogonal transforms and isotropic scaling, CKA(X, X) = 1.
- `linear_cka(X, Y, debiased=True)`: with the unbiased HSIC estimator (Song et al. 2012), which
  removes the upward bias of CKA when features outnumber items.
- `rbf_cka(X, Y, sigma=0.5)`: Gaussian kernels with bandwidth sigma x the median pairwise distance.
- `rdm(X, metric)` and `rsa(X, Y, metric=...)`: representational dissimilarity matrices
  (condensed, scipy `pdist` metrics: correlation, cosine, euclidean, ...) compared by Spearman
  (or Pearson) correlation; `rsa_rdms(a, b)` compares precomputed RDMs.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.spatial.distance import pdist

from vlmlab.errors import ConfigError, DataError


def _pair(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise DataError(f"representations must be (items, features) with the same items; got {X.shape} and {Y.shape}")
    return X, Y


def _unbiased_hsic(K: np.ndarray, L: np.ndarray) -> float:
    n = K.shape[0]
    K = K.copy()
    L = L.copy()
    np.fill_diagonal(K, 0.0)
    np.fill_diagonal(L, 0.0)
    ones_K = K.sum(axis=0)
    ones_L = L.sum(axis=0)
    term = (K * L).sum() + ones_K.sum() * ones_L.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * ones_K @ ones_L
    return float(term / (n * (n - 3)))


def linear_cka(X: np.ndarray, Y: np.ndarray, debiased: bool = False) -> float:
    """Linear CKA between two representations of the same items (debiased needs > 3 items)."""
    X, Y = _pair(X, Y)
    X = X - X.mean(axis=0)
    Y = Y - Y.mean(axis=0)
    if not debiased:
        num = np.linalg.norm(Y.T @ X) ** 2
        den = np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)
        return float(num / den) if den > 0 else math.nan
    if X.shape[0] < 4:
        raise DataError("debiased CKA needs at least 4 items")
    K, L = X @ X.T, Y @ Y.T
    xy, xx, yy = _unbiased_hsic(K, L), _unbiased_hsic(K, K), _unbiased_hsic(L, L)
    den = math.sqrt(xx * yy) if xx > 0 and yy > 0 else 0.0
    return xy / den if den > 0 else math.nan


def rbf_gram(X: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    """Gaussian kernel exp(-d^2 / (2 (sigma * median d)^2)) over the rows of X."""
    X = np.asarray(X, dtype=np.float64)
    sq = np.sum(X**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0)
    np.fill_diagonal(d2, 0.0)
    med = np.median(d2)
    if med <= 0:
        raise DataError("RBF CKA: all items have the same representation (median distance 0)")
    return np.exp(-d2 / (2 * sigma**2 * med))


def kernel_cka(K: np.ndarray, L: np.ndarray) -> float:
    """CKA between two Gram matrices of the same items (biased HSIC with centring)."""
    n = K.shape[0]
    H = np.eye(n) - 1.0 / n
    Kc, Lc = H @ K @ H, H @ L @ H
    den = np.linalg.norm(Kc) * np.linalg.norm(Lc)
    return float((Kc * Lc).sum() / den) if den > 0 else math.nan


def rbf_cka(X: np.ndarray, Y: np.ndarray, sigma: float = 0.5) -> float:
    """Kernel CKA with Gaussian kernels (bandwidth = sigma x median pairwise distance)."""
    X, Y = _pair(X, Y)
    return kernel_cka(rbf_gram(X, sigma), rbf_gram(Y, sigma))


def rdm(X: np.ndarray, metric: str = "correlation") -> np.ndarray:
    """Condensed representational dissimilarity matrix (scipy `pdist` with `metric`)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    try:
        return pdist(X, metric=metric)
    except ValueError as exc:
        raise ConfigError(f"unknown RDM distance {metric!r}; use e.g. correlation, cosine, euclidean") from exc


def rsa_rdms(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> float:
    """Correlation between two condensed RDMs (`spearman` or `pearson`)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise DataError(f"RDMs differ in size: {a.shape} vs {b.shape}")
    if method == "spearman":
        return float(stats.spearmanr(a, b)[0])
    if method == "pearson":
        return float(stats.pearsonr(a, b)[0])
    raise ConfigError(f"unknown RSA method {method!r}; use 'spearman' or 'pearson'")


def rsa(X: np.ndarray, Y: np.ndarray, metric: str = "correlation", metric_y: str | None = None, method: str = "spearman") -> float:
    """RSA: correlation between the RDMs of two representations of the same items.

    Args:
        X, Y: (items, features) arrays.
        metric: distance for X's RDM (and Y's unless `metric_y` is given).
        metric_y: distance for Y's RDM (e.g. "euclidean" for 1-D human ratings).
        method: "spearman" (default, as usual in RSA) or "pearson".
    """
    X, Y = _pair(X, Y)
    return rsa_rdms(rdm(X, metric), rdm(Y, metric_y or metric), method)
