"""What each family supports, derived by the code the `hf` backend runs at load, for
`vlmlab models list` and the conformance matrix.

    family_support("paligemma")           # a tiny recipe, built in memory (no weights)
    checkpoint_support(Path("models/x"))   # a checkpoint folder (processor + an empty model)

Both go through `families.resolve_facts` (images per prompt, vision-feature cache, interleaved
prompts: the backend's own `ResolvedSpec`) and `families.lora_targets` (the linear layers LoRA
adapts), on a model built on the meta device, so nothing is loaded or initialised. The
conformance matrix checks that a tiny recipe's row equals its saved checkpoint's row and that the
behaviour it measures (refusal of a second image, cache hits, adapted layers) matches the row;
`vlmlab models list` prints the recipe rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmlab.errors import ModelError
from vlmlab.models.families import family_for_model_type, lora_targets, resolve_facts


@dataclass(frozen=True)
class FamilySupport:
    """One family's facts as the backend resolves them.

    Attributes:
        family / model_type: the family name and `config.json`'s model_type.
        max_images: images one prompt may hold (None = any number).
        vision_cache: whether vision features are computed once per image and reused.
        interleaved: whether prompts go to the processor as interleaved text and images (IDEFICS).
        lora_layers: linear layers LoRA adapts (the language model's attention and MLP projections).
        overrides: facts the family's registry entry states instead of deriving them.
        needs: modules the family's processor needs that are not installed (then nothing else is known).
    """

    family: str
    model_type: str
    max_images: int | None = None
    vision_cache: bool = False
    interleaved: bool = False
    lora_layers: int = 0
    overrides: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()

    def cells(self) -> dict[str, str]:
        """The row `vlmlab models list` shows (and `benchmarks/results/conformance.md` holds)."""
        overrides = ", ".join(self.overrides) or "-"
        if self.needs:  # its processor cannot be built here, so nothing is derived
            return {"images/prompt": "?", "vision cache": "?", "LoRA": "?", "interleaved": "?",
                    "needs": ", ".join(self.needs), "overrides": overrides}
        return {
            "images/prompt": "any" if self.max_images is None else str(self.max_images),
            "vision cache": "yes" if self.vision_cache else "no",
            "LoRA": f"{self.lora_layers} linear",
            "interleaved": "yes" if self.interleaved else "no",
            "needs": "-",
            "overrides": overrides,
        }


SUPPORT_COLUMNS = ("images/prompt", "vision cache", "LoRA", "interleaved", "needs", "overrides")


def support_of(model_type: str, processor: Any, model: Any, *, family: str | None = None, where: Any = None) -> FamilySupport:
    """The facts of a processor and a (meta-device) model of `model_type`."""
    spec = resolve_facts(model_type, processor, type(model), where=where)
    pattern = lora_targets(model)
    layers = sum(1 for name, _ in model.named_modules() if re.fullmatch(pattern, name))
    return FamilySupport(family or spec.family.family, model_type, spec.max_images, spec.vision_cache, spec.interleaved,
                         layers, spec.family.overrides)


def empty_model(config: Any) -> Any:
    """The `AutoModelForImageTextToText` model of a config on the meta device: its module tree, no weights."""
    import torch
    from transformers import AutoModelForImageTextToText

    with torch.device("meta"):
        return AutoModelForImageTextToText.from_config(config)


def checkpoint_support(path: Path) -> FamilySupport:
    """The facts of a checkpoint folder, as `HFBackend` resolves them when it loads it."""
    from transformers import AutoConfig

    from vlmlab.models.checkpoint import open_checkpoint

    processor, spec = open_checkpoint(Path(path))
    model = empty_model(AutoConfig.from_pretrained(path))
    return support_of(spec.family.model_type, processor, model, family=spec.family.family, where=path)


def family_support(family: str) -> FamilySupport:
    """The facts of a tiny family, from its recipe built in memory (processor + meta-device model)."""
    import torch

    from vlmlab.models.tiny import TINY_FAMILIES, _options, _recipe
    from vlmlab.models.tiny_base import _train_tokenizer

    recipe = _recipe(family)
    overrides = family_for_model_type(recipe.model_type).overrides
    if recipe.missing():
        return FamilySupport(family, recipe.model_type, overrides=overrides, needs=tuple(recipe.missing()))
    options = _options(TINY_FAMILIES[family], {})
    tok = _train_tokenizer(recipe, options["vocab_size"])
    with torch.device("meta"):
        model, processor = recipe.build(tok, options)
    try:
        return support_of(recipe.model_type, processor, model, family=family)
    except ModelError as exc:  # pragma: no cover - every recipe resolves (the conformance matrix loads each)
        raise ModelError(f"tiny {family}: {exc}") from None


# The modules whose code decides the facts: a change to any of them (or to transformers) is a new cache key.
_FACT_MODULES = ("families", "support", "tiny", "tiny_base", "tiny_extra", "processor", "checkpoint")


def _cache_key() -> str:
    import hashlib

    import transformers

    digest = hashlib.sha256(f"transformers {transformers.__version__}".encode())
    for name in _FACT_MODULES:
        digest.update((Path(__file__).parent / f"{name}.py").read_bytes())
    return digest.hexdigest()[:16]


def all_family_support(cache_root: Path | None = None) -> list[FamilySupport]:
    """`family_support` of every tiny family, in `TINY_FAMILIES` order.

    Building every recipe takes seconds (`vlmlab models list` runs this), so with `cache_root` the
    rows are kept in `support-<key>.json` there, the key hashing transformers' version and the source
    of the modules that decide the facts: a stale file is never read.
    """
    import json

    from vlmlab.models.tiny import TINY_FAMILIES

    cache = Path(cache_root) / f"support-{_cache_key()}.json" if cache_root is not None else None
    if cache is not None and cache.is_file():
        try:
            rows = [FamilySupport(**{k: tuple(v) if isinstance(v, list) else v for k, v in r.items()})
                    for r in json.loads(cache.read_text())]
        except (ValueError, TypeError):
            rows = []
        if [r.family for r in rows] == list(TINY_FAMILIES):
            return rows
    rows = [family_support(f) for f in TINY_FAMILIES]
    if cache is not None:
        from dataclasses import asdict

        from vlmlab.runs import atomic_write_text

        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    return rows


__all__ = ["SUPPORT_COLUMNS", "FamilySupport", "all_family_support", "checkpoint_support", "empty_model", "family_support",
           "support_of"]
