"""Toy model recipes: frozen descriptions of how to train one tiny VLM on the toy world.

A recipe names a tiny architecture (`family` + `ModelShape`), what the model is for (`kind`), the
size and seed of the toy-world data it is trained on (`data_size`, `data_seed`), and one or more
training `Stage`s, each a call of `vlmlab.train.fine_tune` (full fine-tuning) on the examples of the
stage's `data` builder (`vlmlab.toymodels.data`), starting from the previous stage's weights. A recipe may start from another recipe's finished model (`base`), so the
`captioner` reuses the `captioner-base` build.

The recipe hash covers every field, the base recipe's hash, and `training_version()` (this module's
`TOYMODELS_VERSION`, the tiny-model builder's version, transformers and torch): a change to any of
them builds a new folder instead of reusing a stale one.

    recipe = get_recipe("icl-vqa")            # or "icl-vqa-quick"
    recipe_hash(recipe)                       # '3f2a9c0d1b7e'
    face_rater_recipe(prompts=FacePrompts(emotion="Which emotion? {emotions}."))   # other templates
"""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vlmlab.errors import ConfigError

# Bump when the data builders or the build procedure change in a way that changes the weights.
TOYMODELS_VERSION = 1

RecipeKind = Literal["caption-pretrain", "caption-finetune", "icl-vqa", "face-rater"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelShape(_Frozen):
    """Options of `vlmlab.models.tiny.build_tiny` plus the processor's image side in pixels."""

    hidden_size: int = 128
    intermediate_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    vision_depth: int = 2
    vision_dim: int = 128
    vocab_size: int = 768
    image_side: int = Field(56, ge=28)  # images are resized to image_side^2 pixels (multiple of 28)

    def tiny_options(self) -> dict[str, int]:
        return self.model_dump(exclude={"image_side"})


class Stage(_Frozen):
    """One full fine-tuning pass: `steps` optimizer steps of `batch_size` samples on `data` examples."""

    data: str  # the name the kind's data builder knows ("warmup", "episodes", ...)
    steps: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    batch_size: int = Field(16, ge=1)
    loss_on: Literal["last", "all_assistant"] = "last"
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    max_length: int = Field(512, ge=16)


class FacePrompts(_Frozen):
    """The rating study's prompt templates (a copy of `vlmlab.rating.config.PromptConfig`'s defaults)."""

    emotion: str = "Which emotion does this face show? Answer with one word from: {emotions}."
    valence: str = "Rate the valence of this facial expression from 1 (very negative) to 9 (very positive). Answer with one number."
    arousal: str = "Rate the arousal of this facial expression from 1 (very calm) to 9 (very excited). Answer with one number."
    single_shot: str = (
        'Look at this face. Answer with JSON only: {{"emotion": one of {emotions}, "valence": 1-9, "arousal": 1-9}}.'
    )
    text_only_valence: str | None = "The facial expression is {emotion}. Rate the valence from 1-9. Answer with one number."
    text_only_arousal: str | None = "The facial expression is {emotion}. Rate the arousal from 1-9. Answer with one number."
    emotions: tuple[str, ...] = ("happy", "sad", "angry", "fearful", "surprised", "neutral")


class ToyRecipe(_Frozen):
    """Everything that determines a toy model's weights (see the module docstring)."""

    name: str
    kind: RecipeKind
    description: str
    family: str = "qwen2-vl"
    shape: ModelShape = ModelShape()
    seed: int = 0  # weight initialisation and sample order
    data_seed: int = 0  # the toy-world data
    data_size: int = Field(600, ge=1)  # images generated for training
    base: str | None = None  # a recipe name whose model this one starts from
    stages: tuple[Stage, ...]
    prompts: FacePrompts | None = None  # face-rater only
    quick: bool = False


def training_version() -> str:
    """Versions that change toy-model weights: this package, the tiny builder, transformers, torch."""
    import torch
    import transformers

    from vlmlab.models.tiny import RECIPE_VERSION

    return f"toymodels-{TOYMODELS_VERSION}/tiny-{RECIPE_VERSION}/transformers-{transformers.__version__}/torch-{torch.__version__}"


def recipe_hash(recipe: ToyRecipe) -> str:
    """12 hex chars: the recipe's fields, its base recipe's hash and `training_version()`."""
    payload = {"recipe": recipe.model_dump(mode="json"), "version": training_version()}
    if recipe.base is not None:
        payload["base"] = recipe_hash(get_recipe(recipe.base))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


# ---------------------------------------------------------------- the built-in recipes


def captioner_base_recipe(*, quick: bool = False) -> ToyRecipe:
    """A tiny Qwen2-VL pretrained to caption toy *shapes* scenes ("Describe the image.").

    It is the "before" model of the caption study: it sees and names colours and shapes, but has
    never seen a panorama or a query about one, so on panorama queries it answers with a shapes-style
    caption and scores a low CIDEr. Fine-tuning it on panorama captions (the `captioner` recipe, or
    the caption study's own LoRA/full fine-tune) raises held-out CIDEr far above it.

    Measured with 220 base steps (60 held-out panorama pairs, grouped CIDEr-D): captioner-base 0.02,
    captioner 0.93 (full fine-tuning, 200 steps x 16 samples, lr 1e-3, on 500 panoramas x 3 queries
    x 2 references). Since 160 base steps (to keep the demo under five minutes) the demo's LoRA study
    goes 0.037 -> 0.271; the science tests' bounds hold.
    Images are 112x112 (16 image tokens): at 56x56 the three regions of a panorama blur together.
    """
    steps = 20 if quick else 160
    return ToyRecipe(
        name="captioner-base-quick" if quick else "captioner-base", kind="caption-pretrain",
        description="tiny Qwen2-VL pretrained on toy shapes captions; the caption study's model before fine-tuning",
        shape=ModelShape(image_side=112), data_size=60 if quick else 600, data_seed=11,
        stages=(Stage(data="shapes-captions", steps=steps, learning_rate=1e-3, batch_size=16),), quick=quick,
    )


def captioner_recipe(*, quick: bool = False) -> ToyRecipe:
    """`captioner-base` fully fine-tuned on toy panorama captions, captioning with the query."""
    steps = 20 if quick else 200
    return ToyRecipe(
        name="captioner-quick" if quick else "captioner", kind="caption-finetune",
        description="captioner-base fine-tuned on toy panorama captions (query-dependent)",
        shape=ModelShape(image_side=112), data_size=60 if quick else 500, data_seed=12,
        base="captioner-base-quick" if quick else "captioner-base",
        stages=(Stage(data="panorama-captions", steps=steps, learning_rate=1e-3, batch_size=16),), quick=quick,
    )


def icl_vqa_recipe(*, quick: bool = False) -> ToyRecipe:
    """Meta-ICL on toy VQA episodes (notes/toy-icl-feasibility.md).

    Stage 1 teaches vision on explicit single questions (without it vision does not learn); stage 2
    trains on episodes of 0-4 demonstrations sharing the query's hidden attribute, with loss on
    every answer, so the model learns to read the attribute off the demonstrations.
    """
    return ToyRecipe(
        name="icl-vqa-quick" if quick else "icl-vqa", kind="icl-vqa",
        description="tiny Qwen2-VL meta-trained to answer ambiguous toy VQA from 0-4 demonstrations",
        data_size=150 if quick else 1500, data_seed=21,
        stages=(
            # lr 1e-3 with a 10% warm-up: vision breaks through after ~200 steps (lr 2e-3, or a 5%
            # warm-up over 250 steps, stayed at the count-only plateau: colour and shape at chance).
            Stage(data="explicit", steps=15 if quick else 400, learning_rate=1e-3, batch_size=16, warmup_ratio=0.1),
            Stage(data="episodes", steps=15 if quick else 200, learning_rate=5e-4, batch_size=16,
                  loss_on="all_assistant", max_length=1024),
        ),
        quick=quick,
    )


def face_rater_recipe(*, quick: bool = False, prompts: FacePrompts | None = None) -> ToyRecipe:
    """A rater of toy faces answering the rating study's prompts.

    Trained on conversations in the study's prompt modes with the faces' true parameters as answers:
    context-carry (emotion word, then valence digit, then arousal digit in one conversation) and
    single-shot JSON. Pass `prompts` to train on other templates (their hash differs).
    """
    return ToyRecipe(
        name="face-rater-quick" if quick else "face-rater", kind="face-rater",
        description="tiny Qwen2-VL rating toy faces: emotion word, valence/arousal digits, single-shot JSON",
        shape=ModelShape(image_side=84), data_size=100 if quick else 800, data_seed=31,
        stages=(Stage(data="ratings", steps=15 if quick else 400, learning_rate=1e-3, batch_size=16,
                      loss_on="all_assistant", warmup_ratio=0.1),),
        prompts=prompts or FacePrompts(), quick=quick,
    )


_BUILDERS = {
    "captioner-base": captioner_base_recipe,
    "captioner": captioner_recipe,
    "icl-vqa": icl_vqa_recipe,
    "face-rater": face_rater_recipe,
}
RECIPE_NAMES: tuple[str, ...] = tuple(n for base in _BUILDERS for n in (base, f"{base}-quick"))


def get_recipe(name: str) -> ToyRecipe:
    """The built-in recipe called `name` (`captioner`, `icl-vqa-quick`, ...); a typo gets a suggestion."""
    base = name.removesuffix("-quick")
    if base not in _BUILDERS:
        close = difflib.get_close_matches(name, RECIPE_NAMES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown toy model recipe {name!r}; {hint}known: {', '.join(RECIPE_NAMES)}")
    return _BUILDERS[base](quick=name.endswith("-quick"))
