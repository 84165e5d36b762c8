"""Cartoon faces with known emotion, valence, arousal and group, rated by simulated humans.

Each face is drawn from its parameters: valence bends the mouth (smile or frown), arousal opens
the eyes and mouth, the emotion sets the brows (angry: inner ends down; sad and fearful: inner ends
up; surprised: raised) and special mouths (surprised: an O). The group (A, B, C) changes the face
style: head shape, skin tone, hair. Some faces are occluded (a band over the eyes or the mouth)
or noisy.

`ratings.csv` holds several simulated raters per face. The rating model is stated exactly in
`truth.json`, including planted effects an analysis should find:
  - group B's neutral faces are labelled "angry" `B_NEUTRAL_ANGRY_PP` percentage points more often
    than groups A and C (same occlusion status);
  - group C's valence is rated `C_VALENCE_OFFSET` lower;
  - occluded faces are labelled correctly less often.
Rater valence/arousal = clip(round(true + rater bias + group offset + noise), 1, 9).

Call `generate_faces(out_dir, n=1200, seed=0)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image

from vlmlab.toyworld.scenes import SUPERSAMPLE, canvas, finish_canvas, pick
from vlmlab.toyworld.writers import DatasetWriter, Manifest

EMOTIONS: tuple[str, ...] = ("happy", "sad", "angry", "fearful", "surprised", "neutral")
GROUPS: tuple[str, ...] = ("A", "B", "C")
# Mean (valence, arousal) of each emotion on the 1-9 scales; faces jitter around them.
EMOTION_VA: dict[str, tuple[float, float]] = {
    "happy": (7.5, 6.0), "sad": (2.5, 3.0), "angry": (2.5, 7.5),
    "fearful": (3.0, 7.5), "surprised": (6.0, 8.0), "neutral": (5.0, 2.5),
}
VA_JITTER_SD = 0.6
GROUP_STYLE = {
    "A": {"head": "round", "skin": (245, 205, 165), "hair": None},
    "B": {"head": "oval", "skin": (195, 145, 105), "hair": (60, 40, 30)},
    "C": {"head": "square", "skin": (140, 95, 65), "hair": (20, 20, 20)},
}
# Where a rater's wrong label goes, per true emotion.
CONFUSION: dict[str, dict[str, float]] = {
    "happy": {"surprised": 0.5, "neutral": 0.5},
    "sad": {"neutral": 0.5, "fearful": 0.3, "angry": 0.2},
    "angry": {"sad": 0.3, "neutral": 0.3, "fearful": 0.4},
    "fearful": {"surprised": 0.6, "sad": 0.2, "angry": 0.2},
    "surprised": {"fearful": 0.6, "happy": 0.4},
    "neutral": {"sad": 0.5, "angry": 0.25, "happy": 0.25},
}
ACCURACY = 0.80
ACCURACY_OCCLUDED = 0.60
B_NEUTRAL_ANGRY_PP = 15.0
C_VALENCE_OFFSET = -0.5
VALENCE_NOISE_SD = 1.0
AROUSAL_NOISE_SD = 1.2
RATER_BIAS_SD = 0.3


@dataclass(frozen=True)
class Face:
    """Parameters of one face; `occlusion` is None, "eyes" or "mouth"."""

    emotion: str
    valence: float
    arousal: float
    group: str
    occlusion: str | None
    noisy: bool


def sample_face(rng: np.random.Generator, occlusion_prob: float, noise_prob: float) -> Face:
    emotion = pick(rng, EMOTIONS)
    v0, a0 = EMOTION_VA[emotion]
    valence = round(float(np.clip(v0 + rng.normal(0, VA_JITTER_SD), 1, 9)), 1)
    arousal = round(float(np.clip(a0 + rng.normal(0, VA_JITTER_SD), 1, 9)), 1)
    occlusion = pick(rng, ("eyes", "mouth")) if rng.random() < occlusion_prob else None
    return Face(emotion, valence, arousal, pick(rng, GROUPS), occlusion, bool(rng.random() < noise_prob))


def draw_face(face: Face, rng: np.random.Generator, size: int = 84, noise_sd: float = 12.0) -> PIL.Image.Image:
    """Render a face at `size`x`size`; `rng` only drives pixel noise when `face.noisy`."""
    k = SUPERSAMPLE * size / 100.0  # draw in a 100-unit coordinate system
    image, draw = canvas(size, size, (225, 230, 235))

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (x0 * k, y0 * k, x1 * k, y1 * k)

    style = GROUP_STYLE[face.group]
    if style["hair"] is not None:
        draw.ellipse(box(14, 4, 86, 60), fill=style["hair"])
    if style["head"] == "round":
        draw.ellipse(box(15, 12, 85, 92), fill=style["skin"])
    elif style["head"] == "oval":
        draw.ellipse(box(22, 10, 78, 95), fill=style["skin"])
    else:
        draw.rounded_rectangle(box(18, 14, 82, 92), radius=14 * k, fill=style["skin"])
        draw.ellipse(box(11, 45, 21, 60), fill=style["skin"])
        draw.ellipse(box(79, 45, 89, 60), fill=style["skin"])

    arousal01 = (face.arousal - 1) / 8
    valence11 = (face.valence - 5) / 4
    # Eyes: white, height grows with arousal; pupils.
    eye_h = 3 + 7 * arousal01 + (3 if face.emotion in ("surprised", "fearful") else 0)
    for cx in (37, 63):
        draw.ellipse(box(cx - 7, 45 - eye_h / 2, cx + 7, 45 + eye_h / 2), fill=(255, 255, 255), outline=(40, 30, 30), width=max(1, int(k)))
        draw.ellipse(box(cx - 2.5, 45 - 2.5, cx + 2.5, 45 + 2.5), fill=(30, 30, 30))
    # Brows: inner-end offset by emotion, height by arousal.
    lift = 4 * arousal01 + (5 if face.emotion == "surprised" else 0)
    tilt = {"angry": 5.0, "sad": -4.0, "fearful": -4.0}.get(face.emotion, 0.0)
    y = 36 - lift - eye_h / 2
    for outer, inner in ((27, 45), (73, 55)):
        draw.line([(outer * k, y * k), (inner * k, (y + tilt) * k)], fill=(50, 35, 25), width=max(1, int(2.5 * k)))
    # Mouth: a curve whose bend follows valence; it opens with arousal; surprise is an O.
    if face.emotion == "surprised":
        r = 4 + 4 * arousal01
        draw.ellipse(box(50 - r * 0.8, 74 - r, 50 + r * 0.8, 74 + r), fill=(90, 20, 30))
    else:
        xs = [30 + 40 * i / 12 for i in range(13)]
        bend = 9 * valence11
        upper = [(x, 74 + bend * (1 - ((x - 50) / 20) ** 2) - bend / 2) for x in xs]
        opening = 8 * max(0.0, arousal01 - 0.45) + (3 if face.emotion == "fearful" else 0)
        if opening > 0.5:
            lower = [(x, yy + opening * math.sin(math.pi * (x - 30) / 40)) for x, yy in reversed(upper)]
            draw.polygon([(x * k, yy * k) for x, yy in upper + lower], fill=(90, 20, 30))
        else:
            draw.line([(x * k, yy * k) for x, yy in upper], fill=(90, 20, 30), width=max(1, int(2.5 * k)))
    if face.occlusion == "eyes":
        draw.rectangle(box(20, 30, 80, 55), fill=(60, 60, 70))
    elif face.occlusion == "mouth":
        draw.rectangle(box(25, 62, 75, 90), fill=(170, 200, 215))
    out = finish_canvas(image)
    if face.noisy:
        arr = np.asarray(out, dtype=np.float32) + rng.normal(0, noise_sd, size=(size, size, 3))
        out = PIL.Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")
    return out


def emotion_probs(face: Face) -> dict[str, float]:
    """P(rater label | face): accuracy on the diagonal, `CONFUSION` elsewhere, plus the B effect."""
    acc = ACCURACY_OCCLUDED if face.occlusion else ACCURACY
    probs = {e: (1 - acc) * CONFUSION[face.emotion].get(e, 0.0) for e in EMOTIONS}
    probs[face.emotion] = acc
    if face.group == "B" and face.emotion == "neutral":
        shift = B_NEUTRAL_ANGRY_PP / 100
        probs["angry"] += shift
        probs["neutral"] -= shift
    return probs


def _rate(value: float, bias: float, sd: float, rng: np.random.Generator) -> int:
    return int(np.clip(np.rint(value + bias + rng.normal(0, sd)), 1, 9))


def truth_json(n_raters: int, raters_per_image: int, occlusion_prob: float, noise_prob: float) -> dict:
    """The generating model, stated so an analysis can be checked against it."""
    base_angry = (1 - ACCURACY) * CONFUSION["neutral"]["angry"]
    return {
        "emotions": list(EMOTIONS), "groups": list(GROUPS),
        "emotion_va_means": {e: list(v) for e, v in EMOTION_VA.items()}, "va_jitter_sd": VA_JITTER_SD,
        "group_styles": {g: s["head"] for g, s in GROUP_STYLE.items()},
        "raters": {
            "n_raters": n_raters, "raters_per_image": raters_per_image,
            "valence_noise_sd": VALENCE_NOISE_SD, "arousal_noise_sd": AROUSAL_NOISE_SD, "rater_bias_sd": RATER_BIAS_SD,
            "rounding": "round to nearest integer, then clip to 1..9",
            "expected_valence_residual_sd_unclipped": math.sqrt(VALENCE_NOISE_SD**2 + RATER_BIAS_SD**2 + 1 / 12),
            "expected_arousal_residual_sd_unclipped": math.sqrt(AROUSAL_NOISE_SD**2 + RATER_BIAS_SD**2 + 1 / 12),
        },
        "emotion_accuracy": ACCURACY, "emotion_accuracy_occluded": ACCURACY_OCCLUDED, "confusion": CONFUSION,
        "occlusion_prob": occlusion_prob, "noise_prob": noise_prob,
        "effects": [
            {"name": "B_neutral_rated_angry", "group": "B", "true_emotion": "neutral", "rated_emotion": "angry",
             "delta_pp": B_NEUTRAL_ANGRY_PP, "base_rate_unoccluded": base_angry,
             "description": "P(label angry | true neutral) is delta_pp points higher for group B than for A and C at the same occlusion status"},
            {"name": "C_valence_offset", "group": "C", "delta": C_VALENCE_OFFSET,
             "description": "group C valence ratings are shifted by delta before rounding"},
            {"name": "occlusion_lowers_accuracy", "accuracy": ACCURACY, "accuracy_occluded": ACCURACY_OCCLUDED,
             "description": "occluded faces are labelled with their true emotion less often"},
        ],
    }


def generate_faces(out_dir: str | Path, n: int = 1200, seed: int = 0, image_size: int = 84, n_raters: int = 40,
                   raters_per_image: int = 5, occlusion_prob: float = 0.1, noise_prob: float = 0.1, overwrite: bool = False) -> Manifest:
    """Write `n` faces, `stimuli.csv` (true values), `ratings.csv` and `truth.json`.

    Args:
        out_dir: output folder (empty, or a previous toy-world output which is replaced).
        n: number of faces.
        seed: the only source of randomness.
        image_size: side in pixels (84 = 3x3 Qwen2-VL tokens).
        n_raters, raters_per_image: rater pool and how many distinct raters see each face.
        occlusion_prob, noise_prob: share of faces with an occluding band / pixel noise.
    """
    if not 1 <= raters_per_image <= n_raters:
        raise ValueError(f"raters_per_image must be in 1..n_raters ({n_raters}), got {raters_per_image}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 404]))
    writer = DatasetWriter(out_dir, kind="faces", seed=seed, n=n, overwrite=overwrite)
    raters = [f"r{i + 1:03d}" for i in range(n_raters)]
    bias = {r: (float(rng.normal(0, RATER_BIAS_SD)), float(rng.normal(0, RATER_BIAS_SD))) for r in raters}
    stimuli, ratings = [], []
    for image_id in range(1, n + 1):
        face = sample_face(rng, occlusion_prob, noise_prob)
        rel = f"images/face_{image_id:05d}.png"
        writer.png(rel, draw_face(face, rng, image_size))
        stimuli.append((image_id, rel, face.group, face.emotion, face.valence, face.arousal, face.occlusion or "none", int(face.noisy)))
        probs = emotion_probs(face)
        for r in sorted(int(i) for i in rng.permutation(n_raters)[:raters_per_image]):
            rater = raters[r]
            label = EMOTIONS[int(rng.choice(len(EMOTIONS), p=[probs[e] for e in EMOTIONS]))]
            offset = C_VALENCE_OFFSET if face.group == "C" else 0.0
            valence = _rate(face.valence + offset, bias[rater][0], VALENCE_NOISE_SD, rng)
            arousal = _rate(face.arousal, bias[rater][1], AROUSAL_NOISE_SD, rng)
            ratings.append((image_id, rel, rater, label, valence, arousal, face.group))
    writer.table("stimuli.csv", ("image_id", "image", "group", "emotion", "valence", "arousal", "occlusion", "noisy"), stimuli)
    writer.table("ratings.csv", ("image_id", "image", "rater_id", "emotion", "valence", "arousal", "group"), ratings)
    truth = truth_json(n_raters, raters_per_image, occlusion_prob, noise_prob)
    truth["rater_biases"] = {r: {"valence": round(b[0], 6), "arousal": round(b[1], 6)} for r, b in bias.items()}
    writer.json("truth.json", truth)
    return writer.finish({"faces": n, "ratings": len(ratings)})
