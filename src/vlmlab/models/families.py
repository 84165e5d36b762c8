"""Family facts of a vision-language checkpoint: derived from the checkpoint, overridden only where
they cannot be derived.

A leaf module (it imports nothing else of vlmlab but `errors`): `registry`, `hf`, `tiny` and
`train` all read it.

What is derived, and from where:

- **chat template**: the processor's, else its tokenizer's (`FamilySpec.default_chat_template`
  only for checkpoints that ship none, i.e. BLIP-2);
- **image placeholder**: the processor's `image_token` (else its tokenizer's);
- **prompt format** (`takes_interleaved_prompts`): a processor that takes one prompt as a list of
  text pieces and images (IDEFICS, the Flamingo architecture) is handed the chat template's text
  split at its image placeholders, with the images in their places; every other processor takes
  the text and an image list;
- **images per prompt**: a two-image conversation is rendered by the chat template; if the
  template places no image placeholder in the text, the processor puts the image features in
  front of the text once, so a prompt holds one image (BLIP-2); otherwise any number;
- **vision-feature cache**: the model's forward takes precomputed features (`mm_encoder_outputs`),
  its `generate` does not insist on pixels, and its image processor turns each image into pixel
  rows of its own (`per_image_processing`); whether a given batch can use them (one pixel row per
  image, or Qwen-style grids) is decided per batch by `vision_cache.batch_kind`;
- **LoRA targets** (`lora_targets(model)`): the linear layers inside the decoder layers of the
  module that owns the input embeddings (the language model), found by module structure, never by
  name substrings, so vision towers and projectors are never adapted.
  IDEFICS's gated cross-attention layers are adapted too: they are layer lists of the language
  model (queries are text states, their output is added to the text residual stream, the gates
  belong to the decoder), and in Flamingo they are exactly what is trained; the vision tower
  that feeds their keys/values is not.

`FamilySpec` entries (keyed by `config.json`'s `model_type`) carry only the facts that cannot be
derived (a default dtype, a chat template for checkpoints without one) and a short description
for `vlmlab models list`. A `model_type` without an entry goes through the same path; when a fact
it needs cannot be derived, `resolve_spec` raises one line naming the fact and how to supply it.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmlab.errors import ModelError

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
    """The facts of a family that cannot be derived from its checkpoint, plus its display name.

    Attributes:
        family: our family name (also the `vlmlab models tiny` name of the architecture).
        model_type: `config.json`'s model_type.
        default_dtype: dtype for `dtype="auto"`; None = the checkpoint's own. Gemma3 is bf16
            because its activations overflow in fp16 (a fact no config states).
        default_chat_template: used when a checkpoint ships none (BLIP-2).
        vision_cache: False disables the vision-feature cache where the model takes precomputed
            features but its outputs depend on more than each image on its own.
        image_tokens: how images reach the model, for `vlmlab models list`.
    """

    family: str
    model_type: str
    default_dtype: str | None = None
    default_chat_template: str | None = None
    vision_cache: bool = True
    image_tokens: str = ""

    @property
    def overrides(self) -> tuple[str, ...]:
        """The facts this entry states instead of deriving them."""
        out = []
        if self.default_dtype is not None:
            out.append("default_dtype")
        if self.default_chat_template is not None:
            out.append("default_chat_template")
        if not self.vision_cache:
            out.append("vision_cache")
        return tuple(out)


FAMILIES: dict[str, FamilySpec] = {}


def register_family(spec: FamilySpec) -> FamilySpec:
    """Add a family entry; a second entry for the same family or model_type is an error."""
    if spec.family in FAMILIES or any(f.model_type == spec.model_type for f in FAMILIES.values()):
        raise ModelError(f"family {spec.family!r} (model_type {spec.model_type!r}) is already registered")
    FAMILIES[spec.family] = spec
    return spec


for _spec in [
    FamilySpec("qwen2-vl", "qwen2_vl", image_tokens="dynamic: (h/28)*(w/28) <|image_pad|> per image"),
    FamilySpec("qwen2.5-vl", "qwen2_5_vl", image_tokens="dynamic: (h/28)*(w/28) <|image_pad|> per image"),
    FamilySpec("llava", "llava", image_tokens="fixed: one <image> per patch (576 at 336px)"),
    FamilySpec("idefics3", "idefics3", image_tokens="tiles + global image, image_seq_len <image> each"),
    FamilySpec("gemma3", "gemma3", default_dtype="bfloat16", image_tokens="fixed: 256 <image_soft_token> per image"),
    FamilySpec("internvl", "internvl", default_dtype="bfloat16", image_tokens="tiles of 256 <IMG_CONTEXT> each"),
    # display only (no override): the interleaved prompt format is derived from the processor
    FamilySpec("idefics", "idefics", image_tokens="one <image> per image; features via gated cross-attention"),
    FamilySpec("blip2", "blip-2", default_chat_template=BLIP2_TEMPLATE,
               image_tokens="32 Q-Former query tokens before the text"),
    # Qwen3-VL's forward also reads per-image deepstack features, which the cache does not keep
    FamilySpec("qwen3-vl", "qwen3_vl", vision_cache=False, image_tokens="dynamic: (h/32)*(w/32) <|image_pad|> per image"),
    FamilySpec("qwen3-vl-moe", "qwen3_vl_moe", vision_cache=False, image_tokens="dynamic: (h/32)*(w/32) <|image_pad|> per image"),
]:
    register_family(_spec)


def family_for_model_type(model_type: str) -> FamilySpec:
    """The registered entry of a model_type, else an entry with no overrides (the generic path)."""
    for fam in FAMILIES.values():
        if fam.model_type == model_type:
            return fam
    return FamilySpec(model_type.replace("_", "-"), model_type)


def read_model_type(path: Path) -> str:
    """`config.json`'s model_type of a checkpoint folder (one-line errors)."""
    cfg_file = Path(path) / "config.json"
    try:
        cfg = json.loads(cfg_file.read_text())
    except FileNotFoundError:
        raise ModelError(f"{cfg_file}: not found; pass a Hugging Face checkpoint folder") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{cfg_file}: not valid JSON ({exc})") from None
    model_type = cfg.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ModelError(f"{cfg_file}: no model_type; is this a Hugging Face checkpoint?")
    return model_type


@dataclass(frozen=True)
class ResolvedSpec:
    """Everything the `hf` backend needs to know about one checkpoint, resolved once at load.

    Attributes:
        family: the `FamilySpec` (registered, or the generic one of an unknown model_type).
        dtype: the dtype `dtype="auto"` means (None = the checkpoint's own).
        image_token: the text placeholder of one image in the chat template's output, if any.
        max_images: images one prompt may hold (None = any number).
        min_images: images one prompt must hold (1 when images come before the text: BLIP-2).
        vision_cache: whether the model takes precomputed vision features.
        interleaved: whether its processor takes interleaved prompts (`takes_interleaved_prompts`).
        derived: fact name -> where it came from ("checkpoint", "registry").
    """

    family: FamilySpec
    dtype: str | None
    image_token: str | None
    max_images: int | None
    min_images: int
    vision_cache: bool
    derived: dict[str, str] = field(default_factory=dict)
    interleaved: bool = False

    @property
    def name(self) -> str:
        return self.family.family


def processor_image_token(processor: Any) -> str | None:
    """The processor's image placeholder text (else its tokenizer's), if any."""
    for owner in (processor, getattr(processor, "tokenizer", None)):
        token = getattr(owner, "image_token", None)
        if token is not None and str(token):
            return str(token)  # a str, or an AddedToken (BLIP-2) whose str() is its content
    return None


def resolve_spec(path: Path, processor: Any, model_class: type | None = None) -> ResolvedSpec:
    """Resolve a checkpoint's family facts from its processor (loaded) and model class.

    Raises:
        ModelError: a fact the generic path needs cannot be derived; the line names it and how to
            supply it.
    """
    return resolve_facts(read_model_type(path), processor, model_class, where=path)


def resolve_facts(model_type: str, processor: Any, model_class: type | None = None, *, where: Any = None) -> ResolvedSpec:
    """`resolve_spec` for a processor that is not (yet) in a folder, e.g. a tiny recipe built in
    memory for `vlmlab models list`; `where` names it in errors (default: the model_type)."""
    fam = family_for_model_type(model_type)
    path = where if where is not None else f"model_type {model_type!r}"
    derived = {k: "registry" for k in fam.overrides}
    template = getattr(processor, "chat_template", None)
    token = processor_image_token(processor)
    missing = []  # every fact that cannot be derived, each with how to supply it, in one line
    if not template:
        missing.append(
            "a chat template (the folder ships none and no registry entry has one): add chat_template.jinja to the folder, "
            f"or register_family(FamilySpec({fam.family!r}, {fam.model_type!r}, default_chat_template=...))"
        )
    if token is None:
        missing.append(
            "the image placeholder (neither the processor nor its tokenizer names an image_token, so vlmlab cannot place "
            'images in a prompt): name it in tokenizer_config.json, e.g. "extra_special_tokens": {"image_token": "<image>"}, '
            "with a processor that expands it"
        )
    if missing:
        raise ModelError(f"{path}: model_type {fam.model_type!r} lacks " + "; and ".join(missing))
    derived["chat_template"] = "registry" if template == fam.default_chat_template else "checkpoint"
    max_images, min_images = _images_per_prompt(processor, token)
    derived["max_images"] = "checkpoint"
    cache = (fam.vision_cache and model_class is not None and _takes_precomputed_features(model_class)
             and per_image_processing(processor))
    if fam.vision_cache:
        derived["vision_cache"] = "checkpoint"
    interleaved = takes_interleaved_prompts(processor)
    derived["prompt format"] = "checkpoint"
    return ResolvedSpec(fam, fam.default_dtype, token, max_images, min_images, cache, derived, interleaved)


_INTERLEAVED: dict[type, bool] = {}


def takes_interleaved_prompts(processor: Any) -> bool:
    """Whether the processor takes a prompt as one list of text pieces and images, placing each
    image where it stands (IDEFICS: `processor(text=[["User:", image, "What is it?"]])`).

    Found by asking the processor (once per processor class): an interleaved one-image prompt must
    come back with one image placeholder token and one image. Such processors cannot be handed the
    chat-rendered text plus an image list: IDEFICS would put the images in front of the text and
    leave the template's own placeholders without images.
    """
    cls = type(processor)
    if cls not in _INTERLEAVED:
        _INTERLEAVED[cls] = _answers_interleaved(processor)
    return _INTERLEAVED[cls]


def _answers_interleaved(processor: Any) -> bool:
    import PIL.Image

    token = processor_image_token(processor)
    tokenizer = getattr(processor, "tokenizer", None)
    if token is None or tokenizer is None or getattr(processor, "image_processor", None) is None:
        return False
    try:
        out = processor(text=[["?", PIL.Image.new("RGB", (32, 32))]], return_tensors="pt")
    except Exception:  # noqa: BLE001 - any refusal means the same: it does not take interleaved prompts
        return False
    ids, pixels = out.get("input_ids"), out.get("pixel_values")
    if ids is None or pixels is None or getattr(ids, "ndim", 0) != 2:
        return False
    return int((ids == tokenizer.convert_tokens_to_ids(token)).sum()) == 1 and pixels.shape[0] == 1


def _images_per_prompt(processor: Any, token: str) -> tuple[int | None, int]:
    """(max, min) images per prompt: one when the template places no image in the text."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "?"}]}]
    try:
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception as exc:  # noqa: BLE001 - any template error means the same: the fact is not derivable
        raise ModelError(f"the chat template cannot render a prompt with images ({type(exc).__name__}: {exc})") from None
    return (None, 0) if token in text else (1, 1)


def per_image_processing(processor: Any) -> bool:
    """Whether `ImageInputCache` may serve this processor: its image processor turns each image
    into rows of `pixel_values` (plus Qwen-style `image_grid_thw` and per-image counts), so a batch's
    outputs are the per-image outputs concatenated. Processors that pad per sample (Idefics3),
    tile with recorded sizes (LLaVA-NeXT) or emit aspect-ratio ids (Mllama) are left alone."""
    import PIL.Image

    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None:
        return False
    try:
        out = image_processor([PIL.Image.new("RGB", (32, 32))], return_tensors="pt")
    except (ValueError, TypeError, RuntimeError):
        return False
    # per-image counts beside the pixels (Gemma3's num_crops, InternVL's num_patches) concatenate too
    counts = {k for k, v in out.items() if getattr(v, "ndim", 0) == 1 and len(v) == 1}
    keys = set(out.keys()) - counts
    if keys == {"pixel_values", "image_grid_thw"}:
        return True
    return keys == {"pixel_values"} and getattr(out["pixel_values"], "ndim", 0) == 4


def _takes_precomputed_features(model_class: type) -> bool:
    """Its forward takes `mm_encoder_outputs` and its generate does not insist on pixels (BLIP-2's does)."""
    if "mm_encoder_outputs" not in inspect.signature(model_class.forward).parameters:
        return False
    pixels = inspect.signature(model_class.generate).parameters.get("pixel_values")
    return pixels is None or pixels.default is not inspect.Parameter.empty


def language_model_layers(model: Any) -> tuple[str, list[str]]:
    """(name of the language model's decoder, names of its layer lists), found by structure.

    The language model is the module that owns the input embeddings; its layer lists are its
    direct `ModuleList` children (decoder layers; Flamingo-style gated cross-attention layers).
    Vision towers and projectors live elsewhere, so nothing of them is returned.
    """
    import torch

    embeddings = model.get_input_embeddings()
    names = {id(m): n for n, m in model.named_modules()}
    emb_name = names.get(id(embeddings))
    if emb_name is None:  # pragma: no cover - get_input_embeddings returns a submodule
        raise ModelError(f"{type(model).__name__}: its input embeddings are not one of its modules")
    owner_name = emb_name.rpartition(".")[0]
    owner = model.get_submodule(owner_name) if owner_name else model
    lists = [n for n, m in owner.named_children() if isinstance(m, torch.nn.ModuleList) and len(m) > 0]
    if not lists:
        raise ModelError(
            f"{type(model).__name__}: the module that owns the input embeddings ({owner_name or 'the model'}) holds no "
            "layer list; pass LoRA target_modules explicitly"
        )
    return owner_name, lists


def lora_targets(model: Any) -> str:
    """A PEFT `target_modules` regex (full match) for the language model's linear projections
    (attention and MLP of every decoder layer), derived from the module tree."""
    import torch

    owner, lists = language_model_layers(model)
    prefix = f"{re.escape(owner)}\\." if owner else ""
    base = model.get_submodule(owner) if owner else model
    suffixes: set[str] = set()
    for lst in lists:
        for i, layer in enumerate(base.get_submodule(lst)):
            for n, m in layer.named_modules():
                if isinstance(m, torch.nn.Linear) and n:
                    suffixes.add(n)
    if not suffixes:
        raise ModelError(f"{type(model).__name__}: its language model layers hold no linear layers; pass LoRA target_modules explicitly")
    alts = "|".join(re.escape(s) for s in sorted(suffixes))
    return rf"{prefix}({'|'.join(re.escape(x) for x in lists)})\.\d+\.({alts})"


__all__ = [
    "BLIP2_TEMPLATE", "FAMILIES", "FamilySpec", "ResolvedSpec", "family_for_model_type", "language_model_layers",
    "lora_targets", "per_image_processing", "processor_image_token", "read_model_type", "register_family", "resolve_facts", "resolve_spec",
    "takes_interleaved_prompts",
]
