"""Bias of raters by group: false-positive-rate differences, mixed models, and human raters as a baseline.

- `fpr_by_group`: P(rater says c | human consensus is not c) per group with Wilson CIs (unit:
  images, one rating per image per condition) and the difference of each group from the reference
  group with statsmodels' `test_proportions_2indep` / `confint_proportions_2indep`.
- `human_models` / `rater_models`: the mixed models of `vlmlab.rating.mixed` on the human ratings
  (`rating ~ factors + (1|image) + (1|rater)`) and on one VLM's ratings, its repeats nested in images
  (`rating ~ factors [+ temperature] + (1|image)`), and image-clustered GEEs of "labelled angry"
  among neutral faces and of "labelled correctly". "Neutral" and "correctly" refer to the face's
  intended emotion when a stimuli table is joined (`vlmlab.rating.stimuli`), else for a human rating
  to the majority of the *other* raters of the face (leave one out: a rating never votes on its own
  reference), for a model to the human consensus.
- `human_agreement`: each human rating against the other raters of the same image (leave one rater
  out), so humans sit in the same table as the VLMs and the classifier baselines.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Sequence

import numpy as np
import pandas as pd

from vlmlab.errors import DataError
from vlmlab.metrics import agreement as ag
from vlmlab.metrics.clustered import clustered_proportion_ci
from vlmlab.metrics.inference import bootstrap_ci, proportion_ci
from vlmlab.rating.mixed import binary_gee, check_columns, linear_mixed
from vlmlab.rating.stimuli import INTENDED_EMOTION

DIMENSIONS = ("valence", "arousal")


def fpr_by_group(human: Sequence[str], model: Sequence[str], groups: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Per category c: FPR per group (Wilson) and each group minus the first (alphabetical) group."""
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    h, m, g = np.asarray(human), np.asarray(model), np.asarray(groups)
    levels = sorted(set(g.tolist()))
    out: dict[str, Any] = {"rates": {}, "differences": []}
    for c in labels:
        negatives = h != c
        counts = {grp: (int(((m == c) & negatives & (g == grp)).sum()), int((negatives & (g == grp)).sum())) for grp in levels}
        out["rates"][c] = {grp: proportion_ci(k, n, unit="images").to_dict() for grp, (k, n) in counts.items() if n > 0}
        ref = levels[0]
        k0, n0 = counts[ref]
        for grp in levels[1:]:
            k1, n1 = counts[grp]
            if n0 == 0 or n1 == 0 or k0 + k1 == 0:
                continue  # no difference to test: a group without negatives, or no false positive at all
            with np.errstate(divide="ignore", invalid="ignore"):  # statsmodels also computes an unused ratio
                test = test_proportions_2indep(k1, n1, k0, n0, compare="diff")
            low, high = confint_proportions_2indep(k1, n1, k0, n0, compare="diff")
            out["differences"].append({
                "category": c, "group": grp, "reference": ref, "estimate": k1 / n1 - k0 / n0, "low": float(low), "high": float(high),
                "p": float(test.pvalue), "n": n1, "n_reference": n0, "k": k1, "k_reference": k0,
                "method": "difference of proportions: Newcomb 95% CI, Agresti-Caffo test (statsmodels)", "unit": "images",
            })
    return out


def human_frame(records: Sequence[Any]) -> pd.DataFrame:
    """One row per human rating: image, rater, emotion, valence, arousal and every group column."""
    rows = []
    for r in records:
        rows.append({"image": r.image_id, "rater": r.rater_id if r.rater_id is not None else f"row{len(rows)}",
                     "emotion": r.emotion, "valence": r.valence, "arousal": r.arousal, **r.groups})
    return pd.DataFrame(rows)


def _majority(labels: Sequence[str]) -> str:
    return sorted(Counter(labels).items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def leave_one_out_consensus(frame: pd.DataFrame) -> pd.Series:
    """Per rating: the majority emotion of the *other* raters of its image (None without one).

    A rating must not vote on its own reference: with the full consensus, a rater who calls a
    neutral face angry makes "neutral" less likely to be the consensus, so the face leaves the
    "neutral faces" set together with exactly the labels being counted.
    """
    out = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    labelled = frame.dropna(subset=["emotion"])
    for _, rows in labelled.groupby("image"):
        labels = rows["emotion"].tolist()
        for i, index in enumerate(rows.index):
            others = labels[:i] + labels[i + 1:]
            if others:
                out[index] = _majority(others)
    return out


def _reference(frame: pd.DataFrame, fallback: pd.Series, fallback_text: str) -> tuple[pd.Series, str]:
    """The label each rating is judged against: the stimuli table's intended emotion when joined."""
    if INTENDED_EMOTION in frame.columns:
        return frame[INTENDED_EMOTION].where(frame[INTENDED_EMOTION].notna(), None), "intended emotion (stimuli table)"
    return fallback, fallback_text


def _labelled_models(frame: pd.DataFrame, reference: pd.Series, what: str, fixed: Sequence[str], focus: tuple[str, str],
                     also_cluster: str | None = None) -> dict[str, Any]:
    """Image-clustered GEEs of "labelled `focus[1]`" among `focus[0]` faces, and of "labelled as the reference"."""
    out: dict[str, Any] = {}
    has = frame["emotion"].notna() & reference.notna()
    data = frame[has].assign(reference=reference[has])
    focus_rows = data[data["reference"] == focus[0]]
    if len(focus_rows):
        angry = focus_rows.assign(labelled=(focus_rows["emotion"] == focus[1]).astype(int))
        out[f"labelled_{focus[1]}"] = {"among": f"ratings of faces whose {what} is {focus[0]}",
                                       **_try(binary_gee, angry, "labelled", list(fixed), cluster="image", also_cluster=also_cluster)}
    if len(data):
        correct = data.assign(labelled=(data["emotion"] == data["reference"]).astype(int))
        out["labelled_correctly"] = {"among": f"labelled ratings; correct: equal to the {what}",
                                     **_try(binary_gee, correct, "labelled", list(fixed), cluster="image", also_cluster=also_cluster)}
    return out


def _try(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A fit, or why it could not be made (a model that cannot be fitted is a finding, not a crash)."""
    try:
        return fn(*args, **kwargs)
    except DataError as exc:
        return {"error": str(exc)}
    except (np.linalg.LinAlgError, ValueError) as exc:
        return {"error": f"fit failed: {exc}"}


def human_models(frame: pd.DataFrame, factors: Sequence[str], focus: tuple[str, str] = ("neutral", "angry")) -> dict[str, Any]:
    """Mixed models of the human ratings; a factor that is not a column raises a one-line DataError.

    Binary outcomes judge each rating against the face's intended emotion when a stimuli table is
    joined (`stimulus_emotion`), else against the other raters' majority (leave-one-out), and
    cluster by image; with rater ids, each risk difference also gets a two-way (image, rater)
    cluster-robust interval (`binary_gee(also_cluster=...)`).
    """
    check_columns(frame, factors, "mixed model of the human ratings")
    out: dict[str, Any] = {}
    # Only factors with repeated levels can carry a variance (FER-2013/AffectNet: one rating per image).
    random = [r for r in ("image", "rater") if len(frame) and frame.groupby(r).size().max() > 1]
    for dim in DIMENSIONS:
        if frame[dim].notna().sum() == 0:
            continue
        if not random:
            out[dim] = {"error": "one rating per image and no rater ids: image and rater variances cannot be separated from noise"}
        else:
            out[dim] = _try(linear_mixed, frame, dim, list(factors), random=random)
    reference, what = _reference(frame, leave_one_out_consensus(frame), "other raters' majority (leave one out)")
    out.update(_labelled_models(frame, reference, what, factors, focus, also_cluster="rater" if "rater" in random else None))
    return out


def rater_frame(runs: Sequence[Any]) -> pd.DataFrame:
    """One row per (image, condition) of one model family: its repeats and temperatures stacked."""
    rows = []
    for run in runs:
        for r in run.records:
            rows.append({"image": r["image_id"], "repeat": run.config["repeat"], "temperature": float(run.config["temperature"]),
                         "group": r.get("group"), "emotion": r.get("emotion"), "valence": r.get("valence"), "arousal": r.get("arousal"),
                         "human_emotion": r["human"].get("emotion"), **(r.get("factors") or {})})
    return pd.DataFrame(rows)


def rater_models(runs: Sequence[Any], factors: Sequence[str], focus: tuple[str, str] = ("neutral", "angry"),
                 image_factors: pd.DataFrame | None = None) -> dict[str, Any]:
    """Mixed models of one model family's ratings: repeats nested in images, temperature as a factor.

    `image_factors` (indexed by image id) adds per-image columns of the human ratings file or the
    stimuli table, and keeps only the images it lists; its `stimulus_emotion` (intended emotion)
    is then what "correct" means, else the human consensus.
    """
    frame = rater_frame(runs)
    if image_factors is not None:
        frame = frame.join(image_factors, on="image", how="inner")
    check_columns(frame, factors, f"mixed model of {runs[0].label}")
    fixed = list(factors) + (["temperature"] if frame["temperature"].nunique() > 1 else [])
    out: dict[str, Any] = {"conditions": len(runs)}
    per_image = frame.groupby("image").size()
    for dim in DIMENSIONS:
        if frame[dim].notna().sum() == 0:
            continue
        if per_image.max() < 2:
            out[dim] = {"error": "one rating per image: the image variance cannot be separated from noise; run repeats (temperature > 0)"}
        else:
            out[dim] = _try(linear_mixed, frame, dim, fixed, random=["image"])
    human = frame["human_emotion"].where(frame["human_emotion"].notna(), None)
    reference, what = _reference(frame, human, "human consensus")
    out.update(_labelled_models(frame, reference, what, fixed, focus))
    return out


def human_agreement(frame: pd.DataFrame, *, seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """Each human rating against the other raters of its image: accuracy/kappa vs their majority,
    Pearson r vs their mean. CIs resample images (a face's ratings stay together)."""
    out: dict[str, Any] = {}
    reference = leave_one_out_consensus(frame)
    has = frame["emotion"].notna() & reference.notna()
    if has.any():
        ids, ref, own = (frame.loc[has, "image"].astype(str).to_numpy(), reference[has].to_numpy(dtype=object).astype(str),
                         frame.loc[has, "emotion"].to_numpy(dtype=object).astype(str))
        common = dict(clusters=ids, unit="images", n_boot=n_boot, seed=seed)
        out["emotion"] = {
            "n": int(has.sum()),
            # several ratings per image: Wilson on the design-effect n (a cluster percentile bootstrap under-covers
            # with few faces; coverage in tests/metrics/test_coverage.py)
            "accuracy": clustered_proportion_ci((ref == own).astype(float), ids, unit="images").to_dict(),
            "kappa": ag.estimate(ag.cohen_kappa, ref, own, **common).to_dict(),
        }
    for dim in DIMENSIONS:
        rows = frame.dropna(subset=[dim])
        sums = rows.groupby("image")[dim].agg(["sum", "count"])
        rows = rows[rows["image"].map(sums["count"]) > 1]
        if len(rows) < 3:
            continue
        total, count = rows["image"].map(sums["sum"]), rows["image"].map(sums["count"])
        others = (total - rows[dim]) / (count - 1)
        # Rows of one face share its mean: Fisher z with a jackknife SE over faces (coverage: tests/metrics/test_coverage.py)
        out[dim] = {"n": len(rows), "pearson": ag.estimate(ag.pearson_r, others.to_numpy(float), rows[dim].to_numpy(float),
                                                           clusters=rows["image"].astype(str).to_numpy(), unit="images",
                                                           n_boot=n_boot, seed=seed).to_dict()}
    return out


def pooled_repeat_sd(values_by_image: dict[str, list[float]], *, seed: int = 0, n_boot: int = 1000) -> dict[str, Any] | None:
    """SD of one repeat's noise from all repeats: sqrt of the within-image variance pooled over
    images (each weighted by its degrees of freedom), CI by resampling images."""
    groups = [(image, np.asarray(v, float)) for image, v in sorted(values_by_image.items()) if len(v) > 1]
    if len(groups) < 2:
        return None
    ss = np.array([float(((v - v.mean()) ** 2).sum()) for _, v in groups])
    df = np.array([len(v) - 1 for _, v in groups], float)

    def pooled(ss: np.ndarray, df: np.ndarray) -> float:
        return float(np.sqrt(ss.sum() / df.sum()))

    ci = bootstrap_ci(pooled, ss, df, unit="images", resamples=n_boot, seed=seed).to_dict()
    return {**ci, "repeats_per_image": float(np.mean([len(v) for _, v in groups]))}


def values_by_image(runs: Sequence[Any], key: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for run in runs:
        for r in run.records:
            if r.get(key) is not None:
                out[r["image_id"]].append(r[key])
    return out
