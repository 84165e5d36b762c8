"""Mixed-effects models of ratings: `rating ~ fixed factors + (1|image) + (1|rater)`.

Averaging ratings per image loses the raters: their bias and their noise end up in one pooled SD,
and a group effect gets a CI that ignores that faces, not ratings, were sampled. A linear mixed
model with crossed random intercepts for image and rater separates them (variance components) and
gives the fixed effects (e.g. "group C rated 0.5 lower") honest CIs.

statsmodels fits crossed random effects only as variance components of one all-encompassing
group, which builds dense n x n work and takes minutes on a few thousand ratings. `linear_mixed`
therefore fits the same model (REML, Gaussian, independent random intercepts per factor) through
the cross-products only (Henderson's equations with the Woodbury identity), which takes well under
a second; tests check it against statsmodels `MixedLM` with `vc_formula` on small data.

Binary outcomes ("labelled angry") use statsmodels GEE clustered by image: a logistic GEE (odds
ratios) and a linear-probability GEE whose coefficients are risk differences in probability points,
both with image-clustered robust SEs.

    frame = pandas.DataFrame(...)  # one row per rating: image, rater, valence, group, ...
    fit = linear_mixed(frame, "valence", ["group"], random=["image", "rater"])
    angry = binary_gee(frame, "angry", ["group"], cluster="image")
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import linalg, optimize, stats

from vlmlab.errors import DataError

Z95 = float(stats.norm.ppf(0.975))


def _one_blas_thread() -> Any:
    """The fits multiply matrices of tens to hundreds of rows, thousands of times: BLAS threads cost
    more than they give there (10x slower per REML step on a busy 2-core machine)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise a one-line DataError naming the first column the frame lacks."""
    for column in columns:
        if column not in frame.columns:
            have = ", ".join(str(c) for c in frame.columns)
            raise DataError(f"{what}: no column {column!r} to use as a factor; columns: {have}")


def design(frame: pd.DataFrame, fixed: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Intercept plus one column per non-reference level (text factors) or per number column.

    Text factors use treatment coding with the alphabetically first level as the reference, so
    `group[B]` is "group B minus group A". Names say so: `group[B vs A]`.
    """
    columns = [np.ones(len(frame))]
    names = ["Intercept"]
    for factor in fixed:
        values = frame[factor]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            columns.append(values.to_numpy(float))
            names.append(factor)
            continue
        levels = sorted({str(v) for v in values})
        text = values.astype(str).to_numpy()
        for level in levels[1:]:
            columns.append((text == level).astype(float))
            names.append(f"{factor}[{level} vs {levels[0]}]")
    return np.column_stack(columns), names


def _drop_missing(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    kept = frame.dropna(subset=list(columns))
    return kept, len(frame) - len(kept)


def _effects(names: Sequence[str], beta: np.ndarray, cov: np.ndarray) -> list[dict[str, Any]]:
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    out = []
    for name, b, s in zip(names, beta, se):
        z = b / s if s > 0 else float("nan")
        out.append({"term": name, "estimate": float(b), "se": float(s), "low": float(b - Z95 * s), "high": float(b + Z95 * s),
                    "p": float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else None, "method": "Wald, normal 95%"})
    return out


class _CrossedREML:
    """Profiled REML of y = X b + sum_k Z_k u_k + e, u_k ~ N(0, t_k^2 s2 I), e ~ N(0, s2 I).

    With L = diag(t) per level and A = I + L Z'Z L: H = I + Z L L Z' has |H| = |A| and
    M'H^-1 M = M'M - (L Z'M)' A^-1 (L Z'M) for M = [X y] (Woodbury). The first factor's block of
    Z'Z is diagonal (each row has one level), so it is eliminated in closed form and only the
    other factors' levels (e.g. 40 raters) need a dense Cholesky. t = 0 (no variance) is allowed.
    """

    def __init__(self, y: np.ndarray, X: np.ndarray, codes: Sequence[np.ndarray]):
        self.n, self.p = X.shape
        self.sizes = [int(c.max()) + 1 for c in codes]
        M = np.column_stack([X, y])
        self.MtM = M.T @ M
        first, rest = codes[0], codes[1:]
        self.d1 = np.bincount(first, minlength=self.sizes[0]).astype(float)
        self.Z1tM = np.zeros((self.sizes[0], M.shape[1]))
        np.add.at(self.Z1tM, first, M)
        offsets = np.cumsum([0] + self.sizes[1:-1]) if rest else []
        cols = [c + o for c, o in zip(rest, offsets)]
        q2 = sum(self.sizes[1:])
        self.Z1tZ2 = np.zeros((self.sizes[0], q2))
        self.Z2tZ2 = np.zeros((q2, q2))
        self.Z2tM = np.zeros((q2, M.shape[1]))
        for a in cols:
            np.add.at(self.Z1tZ2, (first, a), 1.0)
            np.add.at(self.Z2tM, a, M)
            for b in cols:
                np.add.at(self.Z2tZ2, (a, b), 1.0)
        self.block2 = np.concatenate([np.full(s, k) for k, s in enumerate(self.sizes[1:])]) if rest else np.zeros(0, int)

    def parts(self, theta: np.ndarray) -> dict[str, Any]:
        t1, t2 = float(theta[0]), np.asarray(theta[1:], float)[self.block2]
        a11 = 1.0 + t1 * t1 * self.d1
        B1 = t1 * self.Z1tM
        quad = B1.T @ (B1 / a11[:, None])
        logdet = float(np.sum(np.log(a11)))
        if t2.size:
            A12 = t1 * self.Z1tZ2 * t2[None, :]
            S = np.eye(t2.size) + t2[:, None] * self.Z2tZ2 * t2[None, :] - A12.T @ (A12 / a11[:, None])
            R = t2[:, None] * self.Z2tM - A12.T @ (B1 / a11[:, None])
            factor = linalg.cho_factor(S, lower=True)
            quad = quad + R.T @ linalg.cho_solve(factor, R)
            logdet += 2.0 * float(np.sum(np.log(np.diag(factor[0]))))
        G = self.MtM - quad
        p = self.p
        XHX, XHy, yHy = G[:p, :p], G[:p, p], float(G[p, p])
        beta = linalg.solve(XHX, XHy, assume_a="pos")
        s2 = float(yHy - beta @ XHy) / (self.n - p)
        objective = (self.n - p) * math.log(s2) + logdet + float(np.linalg.slogdet(XHX)[1])
        return {"objective": objective, "beta": beta, "s2": s2, "XHX": XHX}

    def fit(self) -> tuple[np.ndarray, dict[str, Any], optimize.OptimizeResult]:
        import itertools

        k = len(self.sizes)
        # A coarse grid first: the profiled REML surface can be flat near 0, where a local search
        # from an arbitrary start stalls on the boundary.
        grid = [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0]
        start = min((np.array(t) for t in itertools.product(grid, repeat=k)), key=lambda t: self.parts(t)["objective"])
        result = optimize.minimize(lambda t: self.parts(t)["objective"], start, method="L-BFGS-B", bounds=[(0.0, 100.0)] * k)
        return result.x, self.parts(result.x), result


def linear_mixed(frame: pd.DataFrame, response: str, fixed: Sequence[str], random: Sequence[str] = ("image", "rater")) -> dict[str, Any]:
    """REML fit of `response ~ fixed + (1|r) for r in random` (crossed random intercepts).

    Returns fixed effects with Wald 95% CIs, variance components (each random factor and the
    residual), the number of observations and of levels per random factor, rows dropped for a
    missing value, and warnings (non-convergence, a variance component on the boundary at 0).

    Raises:
        DataError: a factor or the response is not a column; too few rows or levels to fit.
    """
    check_columns(frame, [response, *fixed, *random], f"mixed model of {response}")
    data, dropped = _drop_missing(frame, [response, *fixed, *random])
    X, names = design(data, fixed)
    levels = {r: sorted({str(v) for v in data[r]}) for r in random}
    if len(data) <= X.shape[1] + len(random) or any(len(v) < 2 for v in levels.values()):
        raise DataError(f"mixed model of {response}: {len(data)} rows and levels {({r: len(v) for r, v in levels.items()})} are too few to fit")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise DataError(f"mixed model of {response}: the fixed factors {list(fixed)} are collinear (a factor with one level, or one factor determining another)")
    order = sorted(random, key=lambda r: -len(levels[r]))  # the factor with most levels is eliminated in closed form
    codes = [pd.Categorical(data[r].astype(str), categories=levels[r]).codes.astype(int) for r in order]
    model = _CrossedREML(data[response].to_numpy(float), X, codes)
    with _one_blas_thread():
        theta, best, result = model.fit()
    s2 = best["s2"]
    cov = s2 * np.linalg.inv(best["XHX"])
    notes = []
    if not result.success:
        notes.append(f"REML optimisation did not converge: {result.message}")
    fitted = dict(zip(order, theta))
    variances = {r: float(fitted[r] ** 2 * s2) for r in random}
    for r in random:
        t = fitted[r]
        if t < 1e-4:
            notes.append(f"variance of {r} estimated at 0 (boundary of the parameter space)")
    terms = " + ".join(list(fixed) or ["1"])
    return {
        "model": "linear mixed model, REML, crossed random intercepts",
        "formula": f"{response} ~ {terms} + " + " + ".join(f"(1|{r})" for r in random),
        "fixed_effects": _effects(names, best["beta"], cov),
        "variance_components": {**variances, "residual": float(s2)},
        "sd_components": {**{r: math.sqrt(v) for r, v in variances.items()}, "residual": math.sqrt(s2)},
        "n_obs": int(len(data)),
        "n_groups": {r: len(v) for r, v in levels.items()},
        "dropped_missing": int(dropped),
        "converged": bool(result.success),
        "warnings": notes,
    }


def binary_gee(frame: pd.DataFrame, response: str, fixed: Sequence[str], cluster: str = "image",
               also_cluster: str | None = None) -> dict[str, Any]:
    """GEE of a 0/1 outcome clustered by `cluster`: logistic (odds ratios) and risk differences.

    The logistic GEE uses an exchangeable working correlation; the linear-probability GEE
    (independence, robust SEs) gives each coefficient as a difference in probability, the scale on
    which effects like "+15 points more often labelled angry" are stated. Warnings statsmodels
    raises (non-convergence, perfect separation) are returned, not swallowed.

    A GEE has one cluster level. Human raters are crossed with images, and a rater who uses a label
    more often than others ties together the images they rated; `also_cluster="rater"` adds to each
    risk difference the two-way (image and rater) cluster-robust interval of the same linear
    probability model (statsmodels OLS, Cameron-Gelbach-Miller), as a check of the one-way one.
    """
    import statsmodels.api as sm

    extra = [also_cluster] if also_cluster else []
    check_columns(frame, [response, *fixed, cluster, *extra], f"GEE of {response}")
    data, dropped = _drop_missing(frame, [response, *fixed, cluster, *extra])
    X, names = design(data, fixed)
    y = data[response].astype(float).to_numpy()
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise DataError(f"GEE of {response}: the outcome must be 0/1, got values {sorted(set(np.unique(y)))[:5]}")
    groups = pd.Categorical(data[cluster].astype(str)).codes
    order = np.argsort(groups, kind="stable")
    y, X, groups = y[order], X[order], groups[order]
    second = pd.Categorical(data[also_cluster].astype(str)).codes[order] if also_cluster else None
    notes: list[str] = []
    out: dict[str, Any] = {"formula": f"{response} ~ {' + '.join(list(fixed) or ['1'])}, clusters: {cluster}", "n_obs": int(len(y)),
                           "n_groups": {cluster: int(len(np.unique(groups)))}, "dropped_missing": int(dropped), "events": int(y.sum())}
    if y.min() == y.max():
        raise DataError(f"GEE of {response}: every outcome is {int(y[0])}; a model of it is undefined")
    with warnings.catch_warnings(record=True) as caught, _one_blas_thread():
        warnings.simplefilter("always")
        logit = sm.GEE(y, X, groups=groups, family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable()).fit()
        linear = sm.GEE(y, X, groups=groups, family=sm.families.Gaussian(), cov_struct=sm.cov_struct.Independence()).fit()
    notes += sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
    logit_effects = _effects(names, np.asarray(logit.params), np.asarray(logit.cov_params()))
    for e in logit_effects:
        separated = not (math.isfinite(e["estimate"]) and math.isfinite(e["se"])) or abs(e["estimate"]) > 15 or e["se"] > 100
        if separated:  # a level with no (or only) events: the log-odds run off to infinity
            notes.append(f"logistic term {e['term']}: (quasi-)complete separation, its odds ratio is not estimable; read the risk difference")
        e.update(odds_ratio=None if separated else math.exp(e["estimate"]), odds_ratio_low=None if separated else math.exp(e["low"]),
                 odds_ratio_high=None if separated else math.exp(e["high"]), method="GEE logistic, exchangeable, image-clustered robust SE, Wald 95%")
        if separated:
            e.update({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in e.items()})
    rd = _effects(names, np.asarray(linear.params), np.asarray(linear.cov_params()))
    for e in rd:
        e["method"] = "GEE linear probability, clustered robust SE, Wald 95%"
        if e["term"] != "Intercept" and not e["se"] > 1e-12:  # every cluster alike within each level: no honest interval
            notes.append(f"risk difference {e['term']}: robust SE is 0 (no variation within levels); no CI")
            e.update(low=None, high=None, p=None)
    if second is not None:
        two_way = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": np.column_stack([groups, second])})
        for e, b, s in zip(rd, np.asarray(two_way.params), np.asarray(two_way.bse)):
            if e["low"] is not None and s > 0:
                e["two_way"] = {"se": float(s), "low": float(b - Z95 * s), "high": float(b + Z95 * s), "p": float(2 * stats.norm.sf(abs(b / s))),
                                "method": f"OLS linear probability, two-way ({cluster}, {also_cluster}) cluster-robust SE, Wald 95%"}
        out["n_groups"][also_cluster] = int(len(np.unique(second)))
    out.update(logistic=logit_effects, risk_difference=rd, warnings=notes)
    return out
