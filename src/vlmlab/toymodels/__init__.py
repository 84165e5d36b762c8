"""Toy models: tiny real-architecture VLMs trained on the toy world with vlmlab's own fine-tuning.

    from vlmlab.toymodels import build_toy_model
    path = build_toy_model("icl-vqa")          # built once, then reused from the cache
    HFBackend(path)

Recipes (each also as `<name>-quick` with fewer steps, for `vlmlab demo --quick`):

- `captioner-base`: pretrained on toy shapes captions; the caption study's "before" model.
- `captioner`: `captioner-base` fine-tuned on toy panorama captions (captions with the query).
- `icl-vqa`: meta-trained on ambiguous toy VQA episodes with 0-4 demonstrations.
- `face-rater`: answers the rating study's prompts about toy faces.
"""

from vlmlab.toymodels.build import build_toy_model, default_cache_root, is_built, toy_model_dir
from vlmlab.toymodels.recipes import (
    RECIPE_NAMES,
    FacePrompts,
    ModelShape,
    Stage,
    ToyRecipe,
    captioner_base_recipe,
    captioner_recipe,
    face_rater_recipe,
    get_recipe,
    icl_vqa_recipe,
    recipe_hash,
    training_version,
)

__all__ = [
    "RECIPE_NAMES", "FacePrompts", "ModelShape", "Stage", "ToyRecipe", "build_toy_model", "captioner_base_recipe",
    "captioner_recipe", "default_cache_root", "face_rater_recipe", "get_recipe", "icl_vqa_recipe", "is_built",
    "recipe_hash", "toy_model_dir", "training_version",
]
