"""Agreement statistics against scikit-learn/scipy, known properties, and seeded bootstrap CIs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from vlmlab.errors import DataError
from vlmlab.metrics.agreement import (
    Estimate,
    entropy,
    estimate,
    false_positive_rate,
    false_positive_rates,
    mae,
    pearson_r,
    rating_distribution,
    spearman_r,
    within_category_spread,
)
from vlmlab.metrics.label_agreement import cohen_kappa, confusion_matrix, per_class_accuracy


@pytest.fixture
def ratings():
    rng = np.random.default_rng(0)
    human = rng.integers(1, 10, 300)
    model = np.clip(human + rng.integers(-2, 3, 300), 1, 9)
    return human, model


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_equals_sklearn(ratings, weights):
    human, model = ratings
    assert cohen_kappa(human, model, weights=weights) == pytest.approx(cohen_kappa_score(human, model, weights=weights), abs=1e-12)


def test_kappa_of_identical_labels_is_one_and_labels_can_be_strings():
    labels = ["happy", "sad", "angry", "happy", "neutral"]
    assert cohen_kappa(labels, labels) == 1.0
    a = ["happy", "sad", "sad", "angry", "happy", "neutral"]
    b = ["happy", "sad", "angry", "angry", "sad", "neutral"]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_confusion_matrix_and_per_class_accuracy(ratings):
    human, model = ratings
    labels = list(range(1, 10))
    np.testing.assert_array_equal(confusion_matrix(human, model, labels), sk_confusion_matrix(human, model, labels=labels))
    acc = per_class_accuracy(["a", "a", "b", "b", "b"], ["a", "b", "b", "b", "a"])
    assert acc == {"a": 0.5, "b": pytest.approx(2 / 3)}


def test_correlations_and_mae_equal_scipy(ratings):
    human, model = ratings
    assert pearson_r(human, model) == pytest.approx(stats.pearsonr(human, model)[0])
    assert spearman_r(human, model) == pytest.approx(stats.spearmanr(human, model)[0])
    assert mae(human, model) == pytest.approx(np.mean(np.abs(human - model)))
    assert math.isnan(pearson_r([1, 2, 3], [5, 5, 5]))


def test_within_category_spread():
    out = within_category_spread([7, 7, 7, 2, 4, 6], ["happy"] * 3 + ["sad"] * 3)
    assert out["happy"] == {"sd": 0.0, "n_distinct": 1, "n": 3, "missing": 0}
    assert out["sad"]["sd"] == pytest.approx(2.0) and out["sad"]["n_distinct"] == 3


def test_rating_distribution_and_entropy():
    top = {"5": math.log(0.5), " 5": math.log(0.1), "6": math.log(0.2), "The": math.log(0.2)}
    p = rating_distribution(top)
    assert p[4] == pytest.approx(0.75) and p[5] == pytest.approx(0.25) and p.sum() == pytest.approx(1.0)
    assert entropy(p) == pytest.approx(stats.entropy(p, base=2))
    assert entropy(np.full(9, 1 / 9)) == pytest.approx(math.log2(9))
    with pytest.raises(DataError):
        rating_distribution({"The": -0.1})


def test_false_positive_rates_per_category_and_group():
    true = ["happy", "sad", "sad", "neutral", "neutral", "happy"]
    pred = ["happy", "happy", "sad", "happy", "neutral", "happy"]
    groups = ["g1", "g1", "g2", "g2", "g1", "g2"]
    assert false_positive_rate(true, pred, "happy") == pytest.approx(2 / 4)
    out = false_positive_rates(true, pred, groups, n_boot=200, seed=1)
    assert out["all"]["happy"].value == pytest.approx(0.5)
    assert out["by_group"]["g1"]["happy"].value == pytest.approx(1 / 2)
    assert out["by_group"]["g2"]["happy"].value == pytest.approx(1 / 2)
    assert out["all"]["sad"].value == 0.0


def test_bootstrap_is_seeded_and_covers_the_value(ratings):
    human, model = ratings
    a = estimate(cohen_kappa, human, model, weights="quadratic", seed=3, n_boot=300)
    b = estimate(cohen_kappa, human, model, weights="quadratic", seed=3, n_boot=300)
    c = estimate(cohen_kappa, human, model, weights="quadratic", seed=4, n_boot=300)
    assert a == b and a != c
    assert isinstance(a, Estimate) and a.low < a.value < a.high
    assert a.to_dict()["value"] == a.value
    with pytest.raises(DataError):
        estimate(mae, [1, 2], [1])


def test_agreement_summary_for_ordinal_ratings(ratings):
    from vlmlab.metrics.agreement import agreement_summary

    human, model = ratings
    out = agreement_summary(human, model, ordinal=True, n_boot=200, seed=0)
    assert set(out) == {"accuracy", "kappa", "kappa_linear", "kappa_quadratic", "pearson_r", "spearman_r", "mae"}
    assert out["kappa_quadratic"].value == pytest.approx(cohen_kappa_score(human, model, weights="quadratic"))
    assert all(e.low <= e.value <= e.high for e in out.values())
    assert set(agreement_summary(["a", "b", "a"], ["a", "b", "b"], ordinal=False, n_boot=50)) == {"accuracy", "kappa"}
