"""Recipe identity: names, hashes, quick variants, and prompt defaults copied from the rating study."""

from __future__ import annotations

import pytest

from vlmlab.errors import ConfigError
from vlmlab.toymodels import RECIPE_NAMES, FacePrompts, face_rater_recipe, get_recipe, recipe_hash
from vlmlab.toymodels import recipes as recipes_module


def test_every_recipe_has_a_quick_variant_with_fewer_steps() -> None:
    for name in ("captioner-base", "captioner", "icl-vqa", "face-rater"):
        full, quick = get_recipe(name), get_recipe(f"{name}-quick")
        assert {name, f"{name}-quick"} <= set(RECIPE_NAMES)
        assert quick.quick and not full.quick
        assert sum(s.steps for s in quick.stages) < sum(s.steps for s in full.stages)
        assert quick.name == f"{name}-quick"


def test_hash_is_stable_and_covers_fields_base_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    a = recipe_hash(get_recipe("icl-vqa"))
    assert a == recipe_hash(get_recipe("icl-vqa")) and len(a) == 12
    changed = get_recipe("icl-vqa").model_copy(update={"seed": 1})
    assert recipe_hash(changed) != a
    assert len({recipe_hash(get_recipe(n)) for n in RECIPE_NAMES}) == len(RECIPE_NAMES)
    captioner = recipe_hash(get_recipe("captioner"))
    monkeypatch.setattr(recipes_module, "TOYMODELS_VERSION", recipes_module.TOYMODELS_VERSION + 1)
    assert recipe_hash(get_recipe("icl-vqa")) != a  # a new training version rebuilds
    assert recipe_hash(get_recipe("captioner")) != captioner


def test_custom_prompts_change_the_hash() -> None:
    default = face_rater_recipe()
    custom = face_rater_recipe(prompts=FacePrompts(emotion="Name the emotion ({emotions})."))
    assert recipe_hash(default) != recipe_hash(custom)
    assert recipe_hash(default) == recipe_hash(face_rater_recipe(prompts=FacePrompts()))


def test_unknown_recipe_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'icl-vqa'"):
        get_recipe("icl-vga")


def test_recipes_are_frozen() -> None:
    with pytest.raises(Exception):
        get_recipe("icl-vqa").seed = 3  # type: ignore[misc]


def test_face_prompt_defaults_equal_the_rating_study_defaults() -> None:
    """Copied as data (core must not import a study); this test keeps the copy honest."""
    from vlmlab.rating.config import DEFAULT_EMOTIONS, PromptConfig

    study = PromptConfig()
    ours = FacePrompts()
    for key in ("emotion", "valence", "arousal", "single_shot", "text_only_valence", "text_only_arousal"):
        assert getattr(ours, key) == getattr(study, key), key
    assert list(ours.emotions) == list(DEFAULT_EMOTIONS)
