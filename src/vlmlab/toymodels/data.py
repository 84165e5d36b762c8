"""Training examples for toy model recipes, drawn from the toy world's own generators.

`stage_examples(recipe, data, data_dir)` returns the `TrainExample`s of one recipe stage. Every
builder draws only from `recipe.data_seed` (mixed with the stage name), so the same recipe always
trains on the same examples. Data sets are generated with the toy world's public generators
(`generate_captions`, `generate_panorama`, `generate_faces`) into `data_dir`; VQA episodes are
sampled in memory with `vlmlab.toyworld.vqa`'s scene sampler, renderer, question wordings and
`canonical_answer`, so their images are drawn exactly like the VQA data set's.

Stages and what they teach:

- `shapes-captions`: "Describe the image." -> one of the references of a shapes scene.
- `panorama-captions`: a panorama query ("What is on the left side?") -> one of its references.
- `explicit` (icl-vqa warm-up): an explicit question about one attribute -> its canonical answer.
- `episodes` (icl-vqa): 0-4 demonstrations sharing the query's hidden attribute, then the query; the
  attribute is uniform over the valid ones, so without demonstrations an ambiguous query is a guess.
- `ratings` (face-rater): the rating study's context-carry conversation (emotion word, valence
  digit, arousal digit), single-shot JSON and text-only prompts, answered with the face's truth.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

import numpy as np

from vlmlab.data.images import Image
from vlmlab.errors import ConfigError
from vlmlab.models.base import Turn
from vlmlab.toymodels.recipes import FacePrompts, ToyRecipe
from vlmlab.train import TrainExample

MAX_DEMOS = 4


def _rng(recipe: ToyRecipe, data: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([recipe.data_seed, *data.encode()]))


def stage_examples(recipe: ToyRecipe, data: str, data_dir: Path) -> list[TrainExample]:
    """The training examples of stage `data` of `recipe`; toy data sets are written under `data_dir`."""
    if data not in _BUILDERS:
        raise ConfigError(f"recipe {recipe.name!r}: unknown stage data {data!r}; known: {', '.join(_BUILDERS)}")
    return _BUILDERS[data](recipe, Path(data_dir), _rng(recipe, data))


# ---------------------------------------------------------------- captions


def _caption_examples(root: Path, rng: np.random.Generator, refs_per_pair: int, prefix: str) -> list[TrainExample]:
    coco = json.loads((root / "captions_train.json").read_text())
    refs: dict[int, list[str]] = {}
    for ann in coco["annotations"]:
        refs.setdefault(ann["image_id"], []).append(ann["caption"])
    images: dict[str, Image] = {}
    examples = []
    for entry in coco["images"]:
        image = images.setdefault(entry["file_name"], Image(path=root / entry["file_name"]))
        chosen = rng.permutation(len(refs[entry["id"]]))[:refs_per_pair]
        for k in chosen:
            examples.append(TrainExample(f"{prefix}{entry['id']}-{int(k)}", [Turn("user", [image, entry["query"]])],
                                         refs[entry["id"]][int(k)]))
    return examples


def shapes_caption_examples(recipe: ToyRecipe, data_dir: Path, rng: np.random.Generator) -> list[TrainExample]:
    """Shapes scenes with "Describe the image." and two of their five references each."""
    from vlmlab.toyworld.captions import generate_captions

    root = data_dir / "captions"
    generate_captions(root, n=recipe.data_size, seed=recipe.data_seed)
    return _caption_examples(root, rng, 2, "cap")


def panorama_caption_examples(recipe: ToyRecipe, data_dir: Path, rng: np.random.Generator) -> list[TrainExample]:
    """Panorama (image, query) pairs with two of their five references each."""
    from vlmlab.toyworld.panorama import generate_panorama

    root = data_dir / "panorama"
    generate_panorama(root, n=recipe.data_size, seed=recipe.data_seed)
    return _caption_examples(root, rng, 2, "pano")


# ---------------------------------------------------------------- ambiguous VQA


def _vqa_pool(n: int, rng: np.random.Generator) -> list[tuple[object, Image]]:
    from vlmlab.toyworld.vqa import draw_vqa_scene, sample_vqa_scene

    pool = []
    for _ in range(n):
        scene = sample_vqa_scene(rng)
        pool.append((scene, Image.from_pil(draw_vqa_scene(scene))))
    return pool


def vqa_question(attribute: str, rng: np.random.Generator) -> str:
    """A question asking `attribute`: ambiguous (50%), a hint shared with another attribute (30%), explicit (20%)."""
    from vlmlab.toyworld.vqa import AMBIGUOUS, EXPLICIT, HINTS, KIND_PROBS
    from vlmlab.toyworld.scenes import pick, pick_weighted

    kind = pick_weighted(rng, KIND_PROBS)
    hints = [h for pair, wordings in HINTS.items() if attribute in pair for h in wordings]
    if kind == "hint" and hints:
        return pick(rng, hints)
    if kind == "explicit":
        return pick(rng, EXPLICIT[attribute])
    return pick(rng, AMBIGUOUS)


def explicit_vqa_examples(recipe: ToyRecipe, data_dir: Path, rng: np.random.Generator) -> list[TrainExample]:
    """One explicit question per pooled image (several passes), answered canonically."""
    from vlmlab.toyworld.scenes import pick
    from vlmlab.toyworld.vqa import EXPLICIT, canonical_answer, valid_attributes

    examples = []
    for i, (scene, image) in enumerate(_vqa_pool(max(40, recipe.data_size // 3), rng)):
        for j, attribute in enumerate(rng.permutation(valid_attributes(scene)).tolist()[:2]):
            examples.append(TrainExample(f"x{i}-{j}", [Turn("user", [image, pick(rng, EXPLICIT[attribute])])],
                                         canonical_answer(scene, attribute)))
    return examples


def vqa_episode_examples(recipe: ToyRecipe, data_dir: Path, rng: np.random.Generator) -> list[TrainExample]:
    """Episodes of 0-4 demonstrations sharing the query's hidden attribute (loss on every answer)."""
    from vlmlab.toyworld.vqa import ATTRIBUTES, canonical_answer, valid_attributes

    pool = _vqa_pool(max(40, recipe.data_size // 3), rng)
    by_attribute = {a: [p for p in pool if a in valid_attributes(p[0])] for a in ATTRIBUTES}
    examples = []
    for i in range(recipe.data_size):
        attribute = ATTRIBUTES[int(rng.integers(len(ATTRIBUTES)))]
        candidates = by_attribute[attribute]
        n_demos = int(rng.integers(0, MAX_DEMOS + 1))
        picks = [candidates[int(k)] for k in rng.choice(len(candidates), size=n_demos + 1, replace=False)]
        turns: list[Turn] = []
        for scene, image in picks[:-1]:
            turns.append(Turn("user", [image, vqa_question(attribute, rng)]))
            turns.append(Turn("assistant", canonical_answer(scene, attribute)))
        scene, image = picks[-1]
        turns.append(Turn("user", [image, vqa_question(attribute, rng)]))
        examples.append(TrainExample(f"ep{i}", turns, canonical_answer(scene, attribute)))
    return examples


# ---------------------------------------------------------------- faces


def face_json_answer(emotion: str, valence: int, arousal: int) -> str:
    """The single-shot answer, in the key order of the rating study's prompt."""
    return json.dumps({"emotion": emotion, "valence": valence, "arousal": arousal})


def face_rating_examples(recipe: ToyRecipe, data_dir: Path, rng: np.random.Generator) -> list[TrainExample]:
    """Context-carry, single-shot and text-only conversations answered with each face's truth."""
    from vlmlab.toyworld.faces import EMOTION_VA, generate_faces

    prompts = recipe.prompts or FacePrompts()
    names = ", ".join(prompts.emotions)
    root = data_dir / "faces"
    generate_faces(root, n=recipe.data_size, seed=recipe.data_seed)
    with open(root / "stimuli.csv", newline="", encoding="utf-8") as fh:
        stimuli = list(csv.DictReader(fh))
    emotion_q = prompts.emotion.format(emotions=names)
    valence_q = prompts.valence.format(emotions=names)
    arousal_q = prompts.arousal.format(emotions=names)
    single_q = prompts.single_shot.format(emotions=names)
    examples = []
    for row in stimuli:
        image = Image(path=root / row["image"])
        emotion = row["emotion"]
        valence, arousal = int(np.clip(np.rint(float(row["valence"])), 1, 9)), int(np.clip(np.rint(float(row["arousal"])), 1, 9))
        sid = row["image_id"]
        carry = [Turn("user", [image, emotion_q]), Turn("assistant", emotion), Turn("user", valence_q),
                 Turn("assistant", str(valence)), Turn("user", arousal_q)]
        examples.append(TrainExample(f"cc{sid}", carry, str(arousal)))
        examples.append(TrainExample(f"ss{sid}", [Turn("user", [image, single_q])], face_json_answer(emotion, valence, arousal)))
    text_only = []
    for emotion in prompts.emotions:
        if emotion not in EMOTION_VA or prompts.text_only_valence is None:
            continue
        v, a = (int(np.rint(x)) for x in EMOTION_VA[emotion])
        text_only.append(TrainExample(f"tv-{emotion}", [Turn("user", prompts.text_only_valence.format(emotion=emotion, emotions=names))], str(v)))
        text_only.append(TrainExample(f"ta-{emotion}", [Turn("user", prompts.text_only_arousal.format(emotion=emotion, emotions=names))], str(a)))
    return examples + text_only


_BUILDERS: dict[str, Callable[[ToyRecipe, Path, np.random.Generator], list[TrainExample]]] = {
    "shapes-captions": shapes_caption_examples,
    "panorama-captions": panorama_caption_examples,
    "explicit": explicit_vqa_examples,
    "episodes": vqa_episode_examples,
    "ratings": face_rating_examples,
}
