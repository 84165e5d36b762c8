"""Model names users type, mapped to a Hugging Face id and the facts that differ between families.

    spec = get_spec("qwen2-vl-2b")          # or a local checkpoint folder
    backend = load_backend("qwen2-vl-2b", batch_size=8)
    backend = load_backend("http://localhost:8000/v1", kind="openai", model="Qwen/Qwen2-VL-2B-Instruct")

Family differences (default dtype, LoRA target modules, image-token handling, vision-feature
cache support) live in `FamilySpec` entries keyed by the checkpoint's `model_type`; code never
looks at substrings of a model's name. A local folder's family comes from its `config.json`.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vlmlab.errors import ModelError

VisionCacheKind = Literal["grid", "stacked", "stacked-tensor"]

# BLIP-2 checkpoints ship no chat template (the processor puts the query tokens before the text);
# this is the VQA prompt format of the BLIP-2 paper.
BLIP2_TEMPLATE = (
    "{% for message in messages %}"
    "{% set text = message['content'] if message['content'] is string else "
    "(message['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join(' ')) %}"
    "{% if message['role'] == 'user' %}{{ 'Question: ' + text + ' ' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Answer: ' + text + eos_token + ' ' }}"
    "{% else %}{{ text + ' ' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Answer:' }}{% endif %}"
)


@dataclass(frozen=True)
class FamilySpec:
    """What differs between model families.

    Attributes:
        family: our family name (also the `tiny` family of the same architecture).
        model_type: `config.json`'s model_type.
        default_dtype: dtype for `dtype="auto"`; None = the checkpoint's own. Gemma3 is bf16
            because its activations overflow in fp16.
        lora_target_modules: PEFT `target_modules` regex (full match on module names) selecting
            the language model's attention/MLP projections and nothing of the vision tower.
        image_tokens: how images reach the model (for docs and `vlmlab models list`).
        vision_cache: how per-image vision features can be cached ("grid": Qwen-style patch rows
            split by image_grid_thw; "stacked": one pixel tensor per image, features passed as a
            tuple; "stacked-tensor": the same, passed as one tensor (Gemma3)), or None when an
            image may span several pixel tensors (tiling: Idefics3, InternVL) or the family does
            not take precomputed features.
        supports_score: whether teacher-forced scoring is supported.
        min_images, max_images: images one prompt must/may hold (BLIP-2: exactly 1); None = any.
        default_chat_template: used when a checkpoint ships none (BLIP-2).
    """

    family: str
    model_type: str
    default_dtype: str | None
    lora_target_modules: str
    image_tokens: str
    vision_cache: VisionCacheKind | None
    supports_score: bool = True
    min_images: int = 0
    max_images: int | None = None
    default_chat_template: str | None = None




def _lm_lora(prefix: str) -> str:
    """A PEFT `target_modules` regex: attention and MLP projections of the language model only
    (vision towers also have `q_proj`s; a plain name list would adapt them too)."""
    return rf"{prefix}\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"


_ATTN_MLP = _lm_lora(r"model\.language_model")

FAMILIES: dict[str, FamilySpec] = {
    f.family: f
    for f in [
        FamilySpec("qwen2-vl", "qwen2_vl", None, _ATTN_MLP, "dynamic: (h/28)*(w/28) <|image_pad|> per image", "grid"),
        FamilySpec("qwen2.5-vl", "qwen2_5_vl", None, _ATTN_MLP, "dynamic: (h/28)*(w/28) <|image_pad|> per image", "grid"),
        FamilySpec("llava", "llava", None, _ATTN_MLP, "fixed: one <image> per patch (576 at 336px)", "stacked"),
        FamilySpec("idefics3", "idefics3", None, _lm_lora(r"model\.text_model"), "tiles + global image, image_seq_len <image> each", None),
        FamilySpec("gemma3", "gemma3", "bfloat16", _ATTN_MLP, "fixed: 256 <image_soft_token> per image", "stacked-tensor"),
        FamilySpec("internvl", "internvl", "bfloat16", _ATTN_MLP, "tiles of 256 <IMG_CONTEXT> each", None),
        FamilySpec("blip2", "blip-2", None,
                   r"language_model\.model\.decoder\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|fc1|fc2)",
                   "32 Q-Former query tokens before the text", None,
                   min_images=1, max_images=1, default_chat_template=BLIP2_TEMPLATE),
    ]
}


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

    # Conveniences for callers that only need one fact.
    @property
    def lora_target_modules(self) -> str:
        return self.family.lora_target_modules

    @property
    def supports_score(self) -> bool:
        return self.family.supports_score

    @property
    def vision_cache(self) -> VisionCacheKind | None:
        return self.family.vision_cache


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a name; a duplicate name is an error."""
    if spec.name in _REGISTRY:
        raise ModelError(f"model name {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


for _name, _hf, _fam, _desc in [
    ("qwen2-vl-2b", "Qwen/Qwen2-VL-2B-Instruct", "qwen2-vl", "Qwen2-VL 2B instruct"),
    ("qwen2.5-vl-3b", "Qwen/Qwen2.5-VL-3B-Instruct", "qwen2.5-vl", "Qwen2.5-VL 3B instruct"),
    ("internvl3.5-1b", "OpenGVLab/InternVL3_5-1B-HF", "internvl", "InternVL3.5 1B (HF format)"),
    ("internvl3.5-2b", "OpenGVLab/InternVL3_5-2B-HF", "internvl", "InternVL3.5 2B (HF format)"),
    ("gemma3-4b", "google/gemma-3-4b-it", "gemma3", "Gemma 3 4B instruct (bf16: overflows in fp16)"),
    ("blip2-opt-2.7b", "Salesforce/blip2-opt-2.7b", "blip2", "BLIP-2 with OPT-2.7B"),
    ("smolvlm", "HuggingFaceTB/SmolVLM-Instruct", "idefics3", "SmolVLM 2B instruct (Idefics3)"),
    ("llava", "llava-hf/llava-1.5-7b-hf", "llava", "LLaVA-1.5 7B"),
]:
    register(ModelSpec(_name, _hf, FAMILIES[_fam], _desc))

# Tiny offline models: always float32 (they are tested for exact equalities on CPU).
for _fam in ("qwen2-vl", "qwen2.5-vl", "llava", "idefics3", "gemma3", "internvl", "blip2"):
    register(ModelSpec(f"tiny-{_fam}", None, FAMILIES[_fam], f"tiny offline {_fam} (vlmlab models tiny)",
                       default_dtype="float32", tiny=True))


def list_specs() -> list[ModelSpec]:
    """All registered names, in registration order."""
    return list(_REGISTRY.values())


def family_for_model_type(model_type: str, where: str) -> FamilySpec:
    for fam in FAMILIES.values():
        if fam.model_type == model_type:
            return fam
    known = ", ".join(sorted(f.model_type for f in FAMILIES.values()))
    raise ModelError(f"{where}: model_type {model_type!r} is not a supported family (supported: {known})")


def spec_for_checkpoint(path: Path) -> ModelSpec:
    """The spec of a local checkpoint folder, from its config.json (and vlmlab_tiny.json if any)."""
    cfg_file = Path(path) / "config.json"
    try:
        cfg = json.loads(cfg_file.read_text())
    except FileNotFoundError:
        raise ModelError(f"{cfg_file}: not found; pass a Hugging Face checkpoint folder") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{cfg_file}: not valid JSON ({exc})") from None
    fam = family_for_model_type(cfg.get("model_type", ""), str(cfg_file))
    tiny = (Path(path) / "vlmlab_tiny.json").exists()
    return ModelSpec(name=str(path), hf_id=None, family=fam, description="local checkpoint",
                     default_dtype="float32" if tiny else None, tiny=tiny, path=Path(path))


def get_spec(name_or_path: str | Path) -> ModelSpec:
    """A registered name, or a path to a local checkpoint folder.

    Raises:
        ModelError: unknown name (with a "did you mean"), or a folder of an unsupported family.
    """
    key = str(name_or_path)
    if key in _REGISTRY:
        return _REGISTRY[key]
    p = Path(key).expanduser()
    if p.is_dir():
        return spec_for_checkpoint(p)
    close = difflib.get_close_matches(key, list(_REGISTRY), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ModelError(f"unknown model {key!r}{hint} (see `vlmlab models list`, or pass a checkpoint folder)")


def load_backend(ref: str | Path, *, kind: Literal["hf", "openai", "ollama"] = "hf", tiny_root: Path | None = None,
                 **options: Any) -> Any:
    """The one entry point studies call to get a `Backend`.

    Args:
        ref: for kind="hf", a registered name (`qwen2-vl-2b`, `tiny-qwen2-vl`, ...) or a checkpoint
            folder; for "openai"/"ollama", the server's base URL.
        kind: which backend.
        tiny_root: where `tiny-*` names are built and cached (default ~/.cache/vlmlab/tiny).
        **options: passed to the backend (`HFBackend`: dtype, device_map, adapter, quantization,
            batch_size, vision_cache, max_length; HTTP backends: model, and their own options).
    """
    if kind == "openai":
        from vlmlab.models.openai_compat import OpenAIBackend

        return OpenAIBackend(base_url=str(ref), **options)
    if kind == "ollama":
        from vlmlab.models.ollama import OllamaBackend

        return OllamaBackend(base_url=str(ref), **options)
    if kind != "hf":
        raise ModelError(f"unknown backend kind {kind!r}; use hf, openai or ollama")
    from vlmlab.models.hf import HFBackend

    spec = get_spec(ref)
    if spec.tiny and spec.path is None:
        from vlmlab.models.tiny import tiny_model_path

        root = tiny_root if tiny_root is not None else Path.home() / ".cache" / "vlmlab" / "tiny"
        path: str | Path = tiny_model_path(spec.family.family, root)
    elif spec.path is not None:
        path = spec.path
    else:
        assert spec.hf_id is not None
        path = spec.hf_id
    if "dtype" not in options and spec.dtype is not None:
        options["dtype"] = spec.dtype
    return HFBackend(path, **options)


__all__ = ["FAMILIES", "FamilySpec", "ModelSpec", "check_model", "get_spec", "list_specs", "load_backend", "register", "spec_for_checkpoint"]


def check_model(ref: str | Path, *, tiny_root: Path | None = None, **options: Any) -> dict[str, Any]:
    """Load a model, run one generate and one score on a generated image; timings and token counts.

    Used by `vlmlab models check`; returns a flat dict (seconds, token counts, texts, facts).
    """
    import time

    import PIL.Image

    from vlmlab.data.images import Image
    from vlmlab.models.base import GenerationRequest, ScoreRequest, Turn

    t0 = time.perf_counter()
    backend = load_backend(ref, tiny_root=tiny_root, **options)
    load_s = time.perf_counter() - t0
    picture = PIL.Image.new("RGB", (224, 224), (255, 255, 255))
    for x in range(56, 168):
        for y in range(56, 168):
            picture.putpixel((x, y), (220, 30, 30))
    image = Image.from_pil(picture)
    conv = [Turn("user", [image, "What colour is the square? Answer in one word."])]
    t1 = time.perf_counter()
    gen = backend.generate([GenerationRequest(id="check", conversation=conv, max_new_tokens=16)])[0]
    gen_s = time.perf_counter() - t1
    if gen.status == "error":
        raise ModelError(f"{ref}: generate failed: {gen.error}")
    t2 = time.perf_counter()
    sc = backend.score([ScoreRequest(id="check", conversation=conv, target="red")])[0]
    score_s = time.perf_counter() - t2
    if sc.status == "error":
        raise ModelError(f"{ref}: score failed: {sc.error}")
    facts = backend.describe() if hasattr(backend, "describe") else {}
    return facts | {
        "load_seconds": round(load_s, 3),
        "generate_seconds": round(gen_s, 3),
        "score_seconds": round(score_s, 3),
        "prompt_tokens": gen.prompt_tokens,
        "generated_tokens": gen.generated_tokens,
        "generated_text": gen.text,
        "generate_status": gen.status,
        "score_target_tokens": len(sc.token_ids),
        "score_mean_logprob": round(sc.mean_logprob, 4),
    }
