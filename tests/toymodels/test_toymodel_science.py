"""Science checks: each built toy model does what its recipe promises, on held-out toy data.

Margins are stated with the numbers measured when the recipes were tuned (single seed, see the
comments); the asserted bounds leave room for machine-to-machine float differences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from toymodel_checks import caption_cider, face_rating_scores, icl_vqa_accuracy

pytestmark = pytest.mark.slow


def test_icl_vqa_uses_same_attribute_demonstrations(toy_model: Callable[[str], Path], heldout_vqa: Path) -> None:
    from vlmlab.models.hf import HFBackend

    backend = HFBackend(toy_model("icl-vqa"), batch_size=16)
    acc = {mode: icl_vqa_accuracy(None, heldout_vqa, demos=mode, n_demos=2, n_queries=120, seed=0, backend=backend)
           for mode in ("none", "same", "random")}
    # measured with 300 meta-ICL steps: none 0.25, same 0.98, random 0.33 (89 held-out ambiguous queries;
    # with 2 demonstrations of another attribute 0.01, and 0.91 on explicit questions without
    # demonstrations); the recipe has 200 steps since session 2 and passes the same bounds
    assert acc["same"] >= acc["none"] + 0.4, acc
    assert acc["same"] >= acc["random"] + 0.4, acc
    assert acc["same"] >= 0.8, acc


def test_fine_tuned_captioner_beats_its_base_on_heldout_cider(toy_model: Callable[[str], Path], heldout_panorama: Path) -> None:
    base, _ = caption_cider(toy_model("captioner-base"), heldout_panorama, n_pairs=60)
    tuned, predictions = caption_cider(toy_model("captioner"), heldout_panorama, n_pairs=60)
    # measured: base 0.02, fine-tuned 0.93 (60 held-out panorama (image, query) pairs, grouped CIDEr-D)
    assert tuned >= base + 0.5, (base, tuned, list(predictions.values())[:5])
    assert tuned >= 0.6, (base, tuned)


def test_face_rater_tracks_the_truth(toy_model: Callable[[str], Path], heldout_faces: Path) -> None:
    scores = face_rating_scores(toy_model("face-rater"), heldout_faces, n_faces=120)
    # measured: emotion accuracy 0.97 (majority class 0.19), valence r 0.73, arousal r 0.94, unparsed 0
    assert scores["emotion_accuracy"] >= scores["chance"] + 0.5, scores
    assert scores["valence_r"] >= 0.5, scores
    assert scores["arousal_r"] >= 0.6, scores
    assert scores["unparsed"] <= 0.05, scores
