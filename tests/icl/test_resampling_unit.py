"""Simulation: when VQA questions share images, resampling questions is wrong and resampling images is right.

100 images with 4 questions each; an image's difficulty is shared by A and B, and B's effect varies
by image (helps on some, hurts on others) with mean 0 (a true null, by symmetry). Measured with
these seeds: paired bootstrap over images rejects 5.0% at alpha 0.05, over questions 13%; the
default accuracy CI (over images) covers the true accuracy 95.25% (over questions: 87%).
"""

from __future__ import annotations

import numpy as np

from vlmlab.icl.compare import paired_bootstrap_p
from vlmlab.icl.evaluate import accuracy_interval

IMAGES, PER_IMAGE, SPREAD, SIMULATIONS, B = 100, 4, 0.45, 400, 400


def test_cluster_bootstrap_keeps_type_one_error_and_coverage() -> None:
    rng = np.random.default_rng(0)
    images = np.repeat(np.arange(IMAGES), PER_IMAGE)
    reject_images = reject_questions = covered = covered_questions = 0
    for s in range(SIMULATIONS):
        difficulty = np.repeat(rng.beta(2, 2, IMAGES), PER_IMAGE)  # mean accuracy 0.5
        effect = np.repeat(rng.normal(0, SPREAD, IMAGES), PER_IMAGE)
        a = (rng.random(images.size) < difficulty).astype(float)
        b = (rng.random(images.size) < np.clip(difficulty + effect, 0, 1)).astype(float)
        reject_images += paired_bootstrap_p(a, b, B, s, clusters=images) < 0.05
        reject_questions += paired_bootstrap_p(a, b, B, s) < 0.05
        ci = accuracy_interval(a, images, n_boot=B, seed=s)  # the eval default: unit "image"
        covered += ci.low <= 0.5 <= ci.high
        q = accuracy_interval(a, images, unit="question", n_boot=B, seed=s)
        covered_questions += q.low <= 0.5 <= q.high
    assert ci.unit == "images" and ci.n_units == IMAGES and q.unit == "questions"
    assert 0.03 <= reject_images / SIMULATIONS <= 0.07
    assert 0.12 <= reject_questions / SIMULATIONS <= 0.18
    assert 0.93 <= covered / SIMULATIONS <= 0.97
    assert covered_questions / SIMULATIONS < 0.91
