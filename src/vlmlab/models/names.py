"""Model names users type, mapped to a Hugging Face id (or a tiny offline build) and a family.

    spec = get_spec("qwen2-vl-2b")          # or a local checkpoint folder
    backend = vlmlab.models.loading.load_backend("qwen2-vl-2b", batch_size=8)

A family's facts are derived from the checkpoint (`families.resolve_spec`); the `FamilySpec`
entries in `families` override only what cannot be derived. Code never looks at substrings of a
model's name. A local folder's family comes from its `config.json`'s model_type; a model_type
without an entry takes the generic path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vlmlab.errors import ModelError
from vlmlab.models.families import FamilySpec, family_for_model_type, read_model_type
from vlmlab.models.tiny import TINY_FAMILIES
from vlmlab.registry import Registry

@dataclass(frozen=True)
class ModelSpec:
    """A model users can name: where it comes from and its family's facts."""

    name: str
    hf_id: str | None  # None for tiny models (built locally) and local folders
    family: FamilySpec
    description: str = ""
    default_dtype: str | None = None  # overrides the family's
    tiny: bool = False
    path: Path | None = None  # set for local folders

    @property
    def dtype(self) -> str | None:
        return self.default_dtype if self.default_dtype is not None else self.family.default_dtype



# Users register names too (`register`), so a duplicate is a `ModelError` (one line, exit 2), not a bug.
_REGISTRY: Registry[ModelSpec] = Registry(
    "model name", error=ModelError, duplicate_error=ModelError, cutoff=0.5,
    unknown=lambda name, hint, names: (
        f"unknown model {name!r}{'; ' + hint if hint else ''} (see `vlmlab models list`, or pass a checkpoint folder)"),
)


def register(spec: ModelSpec) -> ModelSpec:
    """Add a name; a duplicate name is an error."""
    return _REGISTRY.register(spec.name, spec)


for _name, _hf, _model_type, _desc in [
    ("qwen2-vl-2b", "Qwen/Qwen2-VL-2B-Instruct", "qwen2_vl", "Qwen2-VL 2B instruct"),
    ("qwen2-vl-7b", "Qwen/Qwen2-VL-7B-Instruct", "qwen2_vl", "Qwen2-VL 7B instruct"),
    ("qwen2.5-vl-3b", "Qwen/Qwen2.5-VL-3B-Instruct", "qwen2_5_vl", "Qwen2.5-VL 3B instruct"),
    ("internvl3.5-1b", "OpenGVLab/InternVL3_5-1B-HF", "internvl", "InternVL3.5 1B (HF format)"),
    ("internvl3.5-2b", "OpenGVLab/InternVL3_5-2B-HF", "internvl", "InternVL3.5 2B (HF format)"),
    ("gemma3-4b", "google/gemma-3-4b-it", "gemma3", "Gemma 3 4B instruct (bf16: overflows in fp16)"),
    ("blip2-opt-2.7b", "Salesforce/blip2-opt-2.7b", "blip-2", "BLIP-2 with OPT-2.7B"),
    ("smolvlm", "HuggingFaceTB/SmolVLM-Instruct", "idefics3", "SmolVLM 2B instruct (Idefics3)"),
    ("smolvlm2-2.2b", "HuggingFaceTB/SmolVLM2-2.2B-Instruct", "smolvlm", "SmolVLM2 2.2B instruct"),
    ("llama-3.2-11b-vision", "meta-llama/Llama-3.2-11B-Vision-Instruct", "mllama", "LLaMA-3.2 11B Vision instruct (gated)"),
    ("llava", "llava-hf/llava-1.5-7b-hf", "llava", "LLaVA-1.5 7B"),
]:
    register(ModelSpec(_name, _hf, family_for_model_type(_model_type), _desc))

# Tiny offline models: always float32 (they are tested for exact equalities on CPU).
for _recipe in TINY_FAMILIES.values():
    register(ModelSpec(f"tiny-{_recipe.family}", None, family_for_model_type(_recipe.model_type),
                       f"tiny offline {_recipe.family} (vlmlab models tiny)",
                       default_dtype="float32", tiny=True))


def list_specs() -> list[ModelSpec]:
    """All registered names, in registration order."""
    return [_REGISTRY.get(name) for name in _REGISTRY]


def spec_for_checkpoint(path: Path) -> ModelSpec:
    """The spec of a local checkpoint folder, from its config.json (and vlmlab_tiny.json if any)."""
    fam = family_for_model_type(read_model_type(Path(path)))
    tiny = (Path(path) / "vlmlab_tiny.json").exists()
    return ModelSpec(name=str(path), hf_id=None, family=fam, description="local checkpoint",
                     default_dtype="float32" if tiny else None, tiny=tiny, path=Path(path))


def get_spec(name_or_path: str | Path) -> ModelSpec:
    """A registered name, a path to a local checkpoint folder, or a hub id (`owner/name`).

    Raises:
        ModelError: unknown name (with a "did you mean"), or a folder of an unsupported family.
    """
    key = str(name_or_path)
    if key in _REGISTRY:
        return _REGISTRY.get(key)
    p = Path(key).expanduser()
    if p.is_dir():
        return spec_for_checkpoint(p)
    if re.fullmatch(r"[\w.-]+/[\w.-]+", key) and not p.exists():  # a hub id: its family comes from its config.json
        return ModelSpec(name=key, hf_id=key, family=FamilySpec("hub", ""), description="Hugging Face hub id")
    return _REGISTRY.get(key)  # not a registered name: the one-line error with a "did you mean"


__all__ = ["ModelSpec", "get_spec", "list_specs", "register", "spec_for_checkpoint"]
