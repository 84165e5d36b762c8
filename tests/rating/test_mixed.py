"""Mixed models of ratings against statsmodels, and the toy faces' planted effects recovered."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from vlmlab.errors import DataError
from vlmlab.rating.mixed import binary_gee, linear_mixed
from vlmlab.toyworld.faces import generate_faces


def crossed_data(seed: int = 3, images: int = 40, raters: int = 8, per_image: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u_img, u_rat = rng.normal(0, 0.8, images), rng.normal(0, 0.5, raters)
    rows = []
    for i in range(images):
        group = "ABC"[i % 3]
        for r in rng.permutation(raters)[:per_image]:
            y = 5 + (-0.7 if group == "C" else 0.0) + u_img[i] + u_rat[r] + rng.normal(0, 1)
            rows.append({"image": f"i{i}", "rater": f"r{r}", "group": group, "valence": y, "x": float(rng.normal())})
    return pd.DataFrame(rows)


def test_crossed_random_intercepts_match_statsmodels_vc_formula():
    df = crossed_data()
    df["one"] = 1
    ref = smf.mixedlm("valence ~ C(group) + x", df, groups="one", re_formula="0",
                      vc_formula={"image": "0 + C(image)", "rater": "0 + C(rater)"}).fit(reml=True, method=["lbfgs"])
    ours = linear_mixed(df, "valence", ["group", "x"], random=["image", "rater"])
    est = {e["term"]: e for e in ours["fixed_effects"]}
    names = {"Intercept": "Intercept", "C(group)[T.B]": "group[B vs A]", "C(group)[T.C]": "group[C vs A]", "x": "x"}
    ci = ref.conf_int()
    for sm_name, our_name in names.items():
        assert est[our_name]["estimate"] == pytest.approx(ref.fe_params[sm_name], abs=2e-4)
        assert est[our_name]["se"] == pytest.approx(ref.bse_fe[sm_name], rel=2e-3)
        assert est[our_name]["low"] == pytest.approx(ci.loc[sm_name, 0], abs=1e-3)
    vc = dict(zip(ref.model.exog_vc.names, ref.vcomp))
    assert ours["variance_components"]["image"] == pytest.approx(vc["image"], rel=1e-2)
    assert ours["variance_components"]["rater"] == pytest.approx(vc["rater"], rel=1e-2)
    assert ours["variance_components"]["residual"] == pytest.approx(ref.scale, rel=1e-3)
    assert ours["n_obs"] == 160 and ours["n_groups"] == {"image": 40, "rater": 8}
    assert ours["converged"] and ours["warnings"] == []


def test_one_random_factor_matches_statsmodels_groups():
    """The VLM case: repeats of one model nested in images."""
    rng = np.random.default_rng(5)
    rows = [{"image": f"i{i}", "group": "AB"[i % 2], "valence": 4 + 0.5 * (i % 2) + u + rng.normal(0, 0.7)}
            for i, u in enumerate(rng.normal(0, 1.0, 30)) for _ in range(3)]
    df = pd.DataFrame(rows)
    ref = smf.mixedlm("valence ~ C(group)", df, groups="image").fit(reml=True)
    ours = linear_mixed(df, "valence", ["group"], random=["image"])
    effect = {e["term"]: e for e in ours["fixed_effects"]}["group[B vs A]"]
    assert effect["estimate"] == pytest.approx(ref.fe_params["C(group)[T.B]"], abs=1e-5)
    assert effect["se"] == pytest.approx(ref.bse_fe["C(group)[T.B]"], rel=1e-3)
    assert ours["variance_components"]["image"] == pytest.approx(float(ref.cov_re.iloc[0, 0]), rel=1e-3)
    assert ours["variance_components"]["residual"] == pytest.approx(ref.scale, rel=1e-3)


def test_binary_gee_matches_statsmodels_gee():
    rng = np.random.default_rng(2)
    rows = [{"image": f"i{i}", "group": "AB"[i % 2], "angry": int(rng.random() < (0.1 if i % 2 == 0 else 0.3) + 0.1 * (i % 5 == 0))}
            for i in range(80) for _ in range(4)]
    df = pd.DataFrame(rows)
    fit = binary_gee(df, "angry", ["group"], cluster="image")
    ref = smf.gee("angry ~ C(group)", "image", df, family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable()).fit()
    logit = {e["term"]: e for e in fit["logistic"]}["group[B vs A]"]
    assert logit["estimate"] == pytest.approx(ref.params["C(group)[T.B]"], rel=1e-6)
    assert logit["se"] == pytest.approx(ref.bse["C(group)[T.B]"], rel=1e-6)
    rd = {e["term"]: e for e in fit["risk_difference"]}["group[B vs A]"]
    rates = df.groupby("group")["angry"].mean()
    assert rd["estimate"] == pytest.approx(rates["B"] - rates["A"], abs=1e-9)
    assert fit["n_groups"] == {"image": 80} and fit["n_obs"] == 320


def test_factor_that_is_not_a_column_is_one_line_error():
    df = crossed_data()
    with pytest.raises(DataError, match=r"no column 'age' to use as a factor") as info:
        linear_mixed(df, "valence", ["age"])
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def toy_faces(tmp_path_factory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("toyfaces") / "faces"
    generate_faces(folder, n=600, seed=7, image_size=24)
    ratings = pd.read_csv(folder / "ratings.csv").drop(columns=["image"])
    stimuli = pd.read_csv(folder / "stimuli.csv")[["image_id", "valence", "arousal", "emotion", "occlusion"]]
    stimuli = stimuli.rename(columns={"valence": "true_valence", "arousal": "true_arousal", "emotion": "true_emotion"})
    return ratings.merge(stimuli, on="image_id").rename(columns={"image_id": "image", "rater_id": "rater"})


def test_toy_faces_planted_valence_offset_inside_ci(toy_faces):
    fit = linear_mixed(toy_faces, "valence", ["group", "true_valence"])
    effects = {e["term"]: e for e in fit["fixed_effects"]}
    c, b = effects["group[C vs A]"], effects["group[B vs A]"]
    assert c["low"] <= -0.5 <= c["high"] and c["high"] < 0  # planted -0.5, detected
    assert b["low"] <= 0.0 <= b["high"]  # nothing planted
    # Planted rater bias SD 0.3 and noise SD 1.0 (+ rounding) separate into their components.
    assert 0.15 < fit["sd_components"]["rater"] < 0.45
    assert 0.9 < fit["sd_components"]["residual"] < 1.1


def test_toy_faces_planted_neutral_angry_inside_ci(toy_faces):
    neutral = toy_faces[toy_faces["true_emotion"] == "neutral"].assign(angry=lambda d: (d["emotion"] == "angry").astype(int))
    fit = binary_gee(neutral, "angry", ["group", "occlusion"], cluster="image")
    rd = {e["term"]: e for e in fit["risk_difference"]}
    assert rd["group[B vs A]"]["low"] <= 0.15 <= rd["group[B vs A]"]["high"] and rd["group[B vs A]"]["low"] > 0
    assert rd["group[C vs A]"]["low"] <= 0.0 <= rd["group[C vs A]"]["high"]
    odds = {e["term"]: e for e in fit["logistic"]}["group[B vs A]"]
    assert odds["odds_ratio_low"] > 1


def test_separation_is_a_warning_not_a_crash():
    rows = [{"image": f"i{i}", "group": "AB"[i % 2], "angry": int(i % 2 == 1 and j < 2)} for i in range(20) for j in range(3)]
    fit = binary_gee(pd.DataFrame(rows), "angry", ["group"], cluster="image")
    odds = {e["term"]: e for e in fit["logistic"]}["group[B vs A]"]
    assert odds["odds_ratio"] is None and any("separation" in w for w in fit["warnings"])
    rd = {e["term"]: e for e in fit["risk_difference"]}["group[B vs A]"]
    assert rd["estimate"] == pytest.approx(2 / 3)


def test_zero_robust_se_gives_no_interval():
    rows = [{"image": f"i{i}", "group": "AB"[i % 2], "angry": int(i % 4 == 1)} for i in range(12) for _ in range(2)]
    rows += [{"image": "j", "group": "A", "angry": 1}, {"image": "j", "group": "A", "angry": 0}]
    fit = binary_gee(pd.DataFrame(rows), "angry", ["group"], cluster="image")
    rd = {e["term"]: e for e in fit["risk_difference"]}["group[B vs A]"]
    assert rd["se"] > 0 and rd["low"] is not None  # variation within B (images i1, i5, i9 vs i3, i7, i11)
    same = [{"image": f"i{i}", "group": "AB"[i % 2], "angry": i % 2} for i in range(12)]
    fit = binary_gee(pd.DataFrame(same), "angry", ["group"], cluster="image")
    rd = {e["term"]: e for e in fit["risk_difference"]}["group[B vs A]"]
    assert rd["estimate"] == pytest.approx(1.0) and rd["low"] is None and any("robust SE is 0" in w for w in fit["warnings"])


def test_two_way_clustered_risk_difference_matches_statsmodels_ols():
    """Raters crossed with images: the risk difference's second interval clusters by both (statsmodels OLS, two-way)."""
    rng = np.random.default_rng(8)
    lean = rng.normal(0, 0.1, 12)  # some raters say "angry" more often, on every image they rate
    rows = [{"image": f"i{i}", "rater": f"r{r}", "group": "AB"[i % 2], "angry": int(rng.random() < 0.15 + 0.1 * (i % 2) + lean[r])}
            for i in range(60) for r in rng.permutation(12)[:4]]
    df = pd.DataFrame(rows)
    fit = binary_gee(df, "angry", ["group"], cluster="image", also_cluster="rater")
    ref = smf.ols("angry ~ C(group)", df).fit(cov_type="cluster", cov_kwds={"groups": np.column_stack(
        [pd.Categorical(df["image"]).codes, pd.Categorical(df["rater"]).codes])})
    rd = {e["term"]: e for e in fit["risk_difference"]}["group[B vs A]"]
    assert rd["two_way"]["se"] == pytest.approx(ref.bse["C(group)[T.B]"], rel=1e-9)
    assert rd["two_way"]["low"] == pytest.approx(ref.conf_int().loc["C(group)[T.B]", 0], rel=1e-9)
    assert rd["estimate"] == pytest.approx(ref.params["C(group)[T.B]"], abs=1e-9) and fit["n_groups"] == {"image": 60, "rater": 12}
    assert "two_way" not in {e["term"]: e for e in binary_gee(df, "angry", ["group"])["risk_difference"]}["group[B vs A]"]
