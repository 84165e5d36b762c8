"""Coverage of the mixed model's Wald 95% CI for a planted group offset, in worlds made like the toy faces.

Each world: faces drawn as `vlmlab.toyworld.faces` draws them, kept when their true valence is
mid-scale (3.5-6.5, where the 1-9 clipping does not shrink a shift), 5 raters per face from a pool
of 40 with their own bias, ratings clip(round(valence + C offset + bias + noise)). Fit
`valence ~ group + true valence + (1|image) + (1|rater)` and count how often the CI of group C
holds the planted -0.5 (and B's holds 0). Offline, 1000 worlds of 150 faces: 96.2% (C), 94.9% (B),
mean estimate -0.497. Over all faces (1-9) the clipping pulls the estimate to -0.458 and the CI
covers -0.5 only 91.2% of the time (500 worlds): why the planted-effect checks use mid-scale faces.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlmlab.rating.mixed import linear_mixed
from vlmlab.toyworld import faces as toy

MID_SCALE = (3.5, 6.5)


def mid_scale_world(rng: np.random.Generator, n_faces: int, n_raters: int = 40, per_face: int = 5) -> pd.DataFrame:
    bias = rng.normal(0, toy.RATER_BIAS_SD, n_raters)
    rows, image = [], 0
    while image < n_faces:
        face = toy.sample_face(rng, occlusion_prob=0.1, noise_prob=0.1)
        if not MID_SCALE[0] <= face.valence <= MID_SCALE[1]:
            continue
        image += 1
        offset = toy.C_VALENCE_OFFSET if face.group == "C" else 0.0
        for r in rng.permutation(n_raters)[:per_face]:
            rating = int(np.clip(np.rint(face.valence + offset + bias[r] + rng.normal(0, toy.VALENCE_NOISE_SD)), 1, 9))
            rows.append((f"i{image}", f"r{r}", face.group, face.valence, rating))
    return pd.DataFrame(rows, columns=["image", "rater", "group", "true_valence", "valence"])


@pytest.mark.slow
def test_group_offset_wald_ci_covers_95_percent():
    rng = np.random.default_rng(0)
    hits_c, hits_b = [], []
    for _ in range(250):
        fit = linear_mixed(mid_scale_world(rng, 80), "valence", ["group", "true_valence"], random=["image", "rater"])
        effects = {e["term"]: e for e in fit["fixed_effects"]}
        c, b = effects["group[C vs A]"], effects["group[B vs A]"]
        hits_c.append(c["low"] <= toy.C_VALENCE_OFFSET <= c["high"])
        hits_b.append(b["low"] <= 0.0 <= b["high"])
    assert 0.93 <= np.mean(hits_c) <= 0.97  # 93.6%
    assert 0.93 <= np.mean(hits_b) <= 0.97  # type-I error of the no-effect group: 4.8%
