"""Science checks on one full demo run (toy world, tiny models): each effect with a stated margin.

Numbers seen on the reference machine (seed 0, full plan) are in each test's docstring; the margins
leave room for another CPU's floating point, not for a broken study.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_fine_tuning_raises_held_out_cider(demo_result) -> None:
    """Held-out CIDEr (grouped references) of the captioner-base toy model on 60 panorama queries:
    0.037 before, 0.271 after 120 LoRA steps on the reference machine."""
    cap = demo_result.summary["caption"]
    before, after = cap["before"]["CIDEr"], cap["after"]["CIDEr"]
    assert after - before > 0.08, (before, after)
    assert after > 4 * before, (before, after)
    assert cap["after"]["empty_rate"] == 0.0


def test_infoscore_demonstrations_beat_random_ones(demo_result) -> None:
    """Anchors answered with their best InfoScore beam vs random sequences from the same pool:
    0.873 vs 0.473 (gain 0.40, 95% CI [0.34, 0.46]) over 160 anchors on the reference machine."""
    info = demo_result.summary["icl"]["infoscore"]
    assert info["anchors"] >= 150
    assert info["beam_accuracy"] - info["random_accuracy"] > 0.25, info
    assert info["gain_ci"][0] > 0.2, info


def test_selector_beats_random_and_text_retrieval_at_two_shots(demo_result) -> None:
    """2-shot VQA accuracy on 120 held-out queries, seed 0, reference machine: selector 0.708 [0.63,
    0.78], text 0.483 [0.40, 0.57], image 0.533, random 0.363, zero-shot 0.420 (1 shot: selector
    0.722, text 0.505).

    Why this margin is not a lucky draw: in a world of the same context strength, selectors trained
    on random 80-anchor subsets of 160 beams beat text retrieval by 0.03-0.05, on 120-anchor subsets
    by 0.06-0.09 and on all 160 by 0.13-0.22 (closing note of issue #9): the gain grows with
    anchors. The margin asked here is about half of what 160 anchors give; the selector must also
    clear the upper end of text retrieval's 95% CI, and win at one shot too.
    """
    acc = demo_result.summary["icl"]["accuracy"]
    selector, random_, text = (acc[m]["2"]["accuracy"] for m in ("selector", "random", "text"))
    assert selector - random_ > 0.2, (selector, random_, text)
    assert selector - text > 0.07, (selector, random_, text)
    assert selector > acc["text"]["2"]["ci_high"], (acc["selector"]["2"], acc["text"]["2"])
    assert acc["selector"]["1"]["accuracy"] > acc["text"]["1"]["accuracy"]  # and at one shot


def test_rating_analysis_recovers_planted_effects(demo_result) -> None:
    """Planted in the toy faces (truth.json); seen on the reference machine: noise SD 1.057 (planted
    1.083 before clipping), C valence offset -0.51 [-0.86, -0.15] (planted -0.5; mixed model with
    image and rater random intercepts, mid-scale faces), B neutral->angry +0.24 [0.09, 0.40] (planted +0.15;
    image-clustered GEE), valence identical in 19% of faces across two t=1 repeats."""
    effects = {e["effect"]: e for e in demo_result.summary["rating"]["effects"]}
    noise = effects["human rater noise SD (valence)"]
    assert abs(noise["recovered"] - noise["planted"]) < 0.15, noise
    offset = effects["group C valence offset"]
    assert offset["low"] <= offset["planted"] <= offset["high"], offset
    assert offset["high"] < 0, offset  # detected: group C is rated lower
    angry = effects["group B neutral faces labelled angry"]
    assert angry["low"] <= angry["planted"] <= angry["high"], angry
    assert effects["repeats agree exactly at temperature 1"]["recovered"] < 0.9  # seeded repeats differ
    rating = demo_result.summary["rating"]
    assert rating["kappa"] > 0.6 and rating["valence_r"] > 0.5, rating  # the face-rater rates like the humans


def test_rerun_resumes_every_stage(demo_result, demo_cache, demo_folder_lock) -> None:
    from vlmlab.demo import run_demo

    with demo_folder_lock():  # the report test of the other worker reads the same folder
        again = run_demo(demo_result.out, quick=False, seed=0, cache_root=demo_cache, png=False)
    stages = set(demo_result.timings["stages"]) - {"report"}
    assert set(again.skipped) == stages
    assert again.summary["icl"]["accuracy"] == demo_result.summary["icl"]["accuracy"]
    assert again.summary["caption"] == demo_result.summary["caption"]
