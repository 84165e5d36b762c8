"""Tiny but real VLM checkpoints built offline, for tests, the toy world and benchmarks.

`build_tiny("qwen2-vl", out_dir)` builds the real `transformers` architecture of a family from a
small config (a few hundred thousand to ~2 M parameters), a byte-level BPE tokenizer trained
locally on a fixed built-in corpus, the family's processor (image processor configured by hand)
and chat template, and saves them with `save_pretrained`. The folder then loads through the `hf`
backend exactly like a real checkpoint. Nothing touches the network.

Determinism: the same family, seed and overrides give the same bytes (weights are initialised
under a forked torch RNG seeded with `seed`; the tokenizer trainer is deterministic).

`tiny_model_path(family, cache_root)` builds once per recipe hash and reuses the folder.

Families (see `TINY_FAMILIES`): qwen2-vl, qwen2.5-vl, llava, idefics3, gemma3, internvl, blip2
(one image per prompt; BLIP-2 has no chat template, so `registry.BLIP2_TEMPLATE` is used). Each image is
resized to 56x56 pixels; the number of image tokens per image is recorded in
`vlmlab_tiny.json` next to the weights.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from vlmlab.errors import ModelError
from vlmlab.models.families import BLIP2_TEMPLATE
from vlmlab.models.tiny_extra import EXTRA_FAMILIES
from vlmlab.models.tiny_base import (
    _DEFAULTS,
    _IDEFICS3_TEMPLATE,
    _LLAVA_TEMPLATE,
    _QWEN_SPECIAL,
    _QWEN_TEMPLATE,
    IMAGE_SIZE,
    TinyRecipe,
    _llama_text,
    _qwen_image_processor,
    _qwen_text_config,
    _text_defaults,
    _Tok,
    _train_tokenizer,
)
from vlmlab.registry import did_you_mean

RECIPE_VERSION = 1  # bump when any recipe changes, so cached tiny models are rebuilt

# ---------------------------------------------------------------- chat templates (family formats)

_GEMMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<start_of_image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}{% endfor %}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


_INTERNVL_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# ---------------------------------------------------------------- family builders


def _build_qwen2_vl(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    from vlmlab._compat import image_only_processor_class

    text = _qwen_text_config(tok, o)
    vision = dict(depth=o["vision_depth"], embed_dim=o["vision_dim"], hidden_size=o["hidden_size"], num_heads=4,
                  mlp_ratio=2, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
    config = Qwen2VLConfig(
        text_config=text, vision_config=vision,
        image_token_id=tok.id("<|image_pad|>"), video_token_id=tok.id("<|video_pad|>"),
        vision_start_token_id=tok.id("<|vision_start|>"), vision_end_token_id=tok.id("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    model = Qwen2VLForConditionalGeneration(config)
    proc = image_only_processor_class(Qwen2VLProcessor)(
        image_processor=_qwen_image_processor(), tokenizer=tok.hf, chat_template=_QWEN_TEMPLATE
    )
    return model, proc


def _build_qwen2_5_vl(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    from vlmlab._compat import image_only_processor_class

    text = _qwen_text_config(tok, o)
    vision = dict(depth=o["vision_depth"], hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"],
                  num_heads=4, out_hidden_size=o["hidden_size"], patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2, window_size=56, fullatt_block_indexes=[o["vision_depth"] - 1])
    config = Qwen2_5_VLConfig(
        text_config=text, vision_config=vision,
        image_token_id=tok.id("<|image_pad|>"), video_token_id=tok.id("<|video_pad|>"),
        vision_start_token_id=tok.id("<|vision_start|>"), vision_end_token_id=tok.id("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    model = Qwen2_5_VLForConditionalGeneration(config)
    proc = image_only_processor_class(Qwen2_5_VLProcessor)(
        image_processor=_qwen_image_processor(), tokenizer=tok.hf, chat_template=_QWEN_TEMPLATE
    )
    return model, proc


def _build_llava(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    vision = CLIPVisionConfig(hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"],
                              num_hidden_layers=o["vision_depth"], num_attention_heads=4,
                              image_size=IMAGE_SIZE, patch_size=14, projection_dim=o["vision_dim"])
    config = LlavaConfig(
        vision_config=vision, text_config=_llama_text(tok, o, "<s>", "</s>", "<pad>"),
        image_token_index=tok.id("<image>"), image_seq_length=16, vision_feature_layer=-1,
        vision_feature_select_strategy="default", tie_word_embeddings=True,
    )
    model = LlavaForConditionalGeneration(config)
    ip = CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    proc = LlavaProcessor(image_processor=ip, tokenizer=tok.hf, patch_size=14, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, image_token="<image>", chat_template=_LLAVA_TEMPLATE)
    return model, proc


def _build_idefics3(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    vision = dict(hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"], num_hidden_layers=o["vision_depth"],
                  num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=14)
    config = Idefics3Config(
        vision_config=vision, text_config=_llama_text(tok, o, "<|im_start|>", "<end_of_utterance>", "<|endoftext|>"),
        image_token_id=tok.id("<image>"), scale_factor=2, tie_word_embeddings=True,
    )
    model = Idefics3ForConditionalGeneration(config)
    ip = Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": IMAGE_SIZE},
                                   max_image_size={"longest_edge": IMAGE_SIZE}, do_resize=True)
    proc = Idefics3Processor(image_processor=ip, tokenizer=tok.hf, image_seq_len=4, chat_template=_IDEFICS3_TEMPLATE)
    return model, proc


def _build_gemma3(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    head = o["hidden_size"] // o["num_heads"]
    text = _text_defaults(o) | dict(
        vocab_size=tok.vocab_size, bos_token_id=tok.id("<bos>"), eos_token_id=tok.id("<end_of_turn>"),
        pad_token_id=tok.id("<pad>"), query_pre_attn_scalar=head, sliding_window=64,
    )
    vision = dict(model_type="siglip_vision_model", hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"],
                  num_hidden_layers=o["vision_depth"], num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=14)
    config = Gemma3Config(
        text_config=text, vision_config=vision, mm_tokens_per_image=4,
        boi_token_index=tok.id("<start_of_image>"), eoi_token_index=tok.id("<end_of_image>"),
        image_token_index=tok.id("<image_soft_token>"), tie_word_embeddings=True,
    )
    model = Gemma3ForConditionalGeneration(config)
    # transformers initialises the projector's weight to zeros (a released checkpoint overwrites it),
    # which would make every image the same zero features: images must reach a random tiny model too
    torch.nn.init.normal_(model.model.multi_modal_projector.mm_input_projection_weight, std=config.text_config.initializer_range)
    ip = Gemma3ImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_pan_and_scan=False)
    proc = Gemma3Processor(image_processor=ip, tokenizer=tok.hf, image_seq_length=4, chat_template=_GEMMA3_TEMPLATE)
    return model, proc


def _build_internvl(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import InternVLConfig, InternVLForConditionalGeneration, InternVLProcessor
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    from vlmlab._compat import image_only_processor_class

    text = _text_defaults(o) | dict(
        model_type="qwen2", vocab_size=tok.vocab_size, bos_token_id=tok.id("<|endoftext|>"),
        eos_token_id=tok.id("<|im_end|>"), pad_token_id=tok.id("<|endoftext|>"), tie_word_embeddings=True,
    )
    vision = dict(hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"], num_hidden_layers=o["vision_depth"],
                  num_attention_heads=4, image_size=[IMAGE_SIZE, IMAGE_SIZE], patch_size=[14, 14])
    config = InternVLConfig(vision_config=vision, text_config=text, image_token_id=tok.id("<IMG_CONTEXT>"),
                            image_seq_length=4, downsample_ratio=0.5, tie_word_embeddings=True)
    model = InternVLForConditionalGeneration(config)
    ip = GotOcr2ImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, crop_to_patches=False,
                                  min_patches=1, max_patches=1)
    proc = image_only_processor_class(InternVLProcessor)(
        image_processor=ip, tokenizer=tok.hf, image_seq_length=4, chat_template=_INTERNVL_TEMPLATE
    )
    return model, proc


def _build_blip2(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    vision = dict(hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"], num_hidden_layers=o["vision_depth"],
                  num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=14)
    qformer = dict(hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"], num_hidden_layers=2,
                   num_attention_heads=4, encoder_hidden_size=o["vision_dim"], vocab_size=32)
    text = dict(model_type="opt", vocab_size=tok.vocab_size, hidden_size=o["hidden_size"], ffn_dim=o["intermediate_size"],
                num_hidden_layers=o["num_layers"], num_attention_heads=o["num_heads"], word_embed_proj_dim=o["hidden_size"],
                max_position_embeddings=2048, bos_token_id=tok.id("<s>"), eos_token_id=tok.id("</s>"),
                pad_token_id=tok.id("<pad>"))
    config = Blip2Config(vision_config=vision, qformer_config=qformer, text_config=text, num_query_tokens=4,
                         image_token_index=tok.id("<image>"))
    model = Blip2ForConditionalGeneration(config)
    ip = BlipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    proc = Blip2Processor(image_processor=ip, tokenizer=tok.hf, num_query_tokens=4)
    proc.chat_template = BLIP2_TEMPLATE  # Blip2Processor.__init__ drops the chat_template argument
    return model, proc


TINY_FAMILIES: dict[str, TinyRecipe] = {
    "qwen2-vl": TinyRecipe("qwen2-vl", "qwen2_vl", _QWEN_SPECIAL, None, "<|im_end|>", "<|endoftext|>", _QWEN_TEMPLATE,
                           _build_qwen2_vl, _DEFAULTS, 4),
    "qwen2.5-vl": TinyRecipe("qwen2.5-vl", "qwen2_5_vl", _QWEN_SPECIAL, None, "<|im_end|>", "<|endoftext|>", _QWEN_TEMPLATE,
                             _build_qwen2_5_vl, _DEFAULTS, 4),
    "llava": TinyRecipe("llava", "llava", ("<unk>", "<s>", "</s>", "<pad>", "<image>"), "<s>", "</s>", "<pad>",
                        _LLAVA_TEMPLATE, _build_llava, _DEFAULTS | dict(vision_dim=64), 16,
                        (("image_token", "<image>"),)),
    "idefics3": TinyRecipe("idefics3", "idefics3", ("<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<image>",
                                        "<fake_token_around_image>", "<global-img>"),
                           "<|im_start|>", "<end_of_utterance>", "<|endoftext|>", _IDEFICS3_TEMPLATE,
                           _build_idefics3, _DEFAULTS | dict(vision_dim=64), 4,
                           (("image_token", "<image>"), ("fake_image_token", "<fake_token_around_image>"),
                            ("global_image_token", "<global-img>"), ("end_of_utterance_token", "<end_of_utterance>"))),
    "gemma3": TinyRecipe("gemma3", "gemma3", ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>",
                                    "<start_of_image>", "<end_of_image>", "<image_soft_token>"),
                         "<bos>", "<end_of_turn>", "<pad>", _GEMMA3_TEMPLATE, _build_gemma3,
                         _DEFAULTS | dict(vision_dim=64), 4,
                         (("image_token", "<image_soft_token>"), ("boi_token", "<start_of_image>"),
                          ("eoi_token", "<end_of_image>")), revision=1),  # 1: a random (not zero) projector
    "internvl": TinyRecipe("internvl", "internvl", _QWEN_SPECIAL[:3] + ("<img>", "</img>", "<IMG_CONTEXT>", "<video>"),
                           None, "<|im_end|>", "<|endoftext|>", _INTERNVL_TEMPLATE, _build_internvl,
                           _DEFAULTS | dict(vision_dim=64), 4,
                           (("start_image_token", "<img>"), ("end_image_token", "</img>"),
                            ("context_image_token", "<IMG_CONTEXT>"), ("video_token", "<video>"))),
    "blip2": TinyRecipe("blip2", "blip-2", ("<unk>", "<s>", "</s>", "<pad>", "<image>"), "<s>", "</s>", "<pad>",
                        BLIP2_TEMPLATE, _build_blip2, _DEFAULTS | dict(vision_dim=64), 4),
}
TINY_FAMILIES |= EXTRA_FAMILIES


def _recipe(family: str) -> TinyRecipe:
    if family not in TINY_FAMILIES:
        hint = did_you_mean(family, TINY_FAMILIES)
        raise ModelError(f"unknown tiny model family {family!r}{'; ' + hint if hint else ''} (known: {', '.join(TINY_FAMILIES)})")
    return TINY_FAMILIES[family]


def _options(recipe: TinyRecipe, overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(recipe.defaults))
    if unknown:
        raise ModelError(f"unknown tiny model option(s) {unknown} for {recipe.family}; valid: {sorted(recipe.defaults)}")
    return recipe.defaults | overrides


def recipe_hash(family: str, *, seed: int = 0, **config_overrides: Any) -> str:
    """12 hex chars identifying what `build_tiny` would build (family, options, seed, versions)."""
    import transformers

    recipe = _recipe(family)
    payload = {"family": family, "seed": seed, "options": _options(recipe, config_overrides),
               "recipe": RECIPE_VERSION, "transformers": transformers.__version__}
    if recipe.revision:
        payload["revision"] = recipe.revision
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def build_tiny(family: str, out_dir: Path, *, seed: int = 0, **config_overrides: Any) -> Path:
    """Build a tiny checkpoint of `family` into `out_dir` (created) and return it.

    Args:
        family: one of `TINY_FAMILIES` (e.g. "qwen2-vl").
        out_dir: folder to write; existing files with the same names are overwritten.
        seed: seeds the weight initialisation only.
        **config_overrides: hidden_size, intermediate_size, num_layers, num_heads, num_kv_heads,
            vision_depth, vision_dim, vocab_size.

    Returns:
        `out_dir`, loadable with `vlmlab.models.hf.HFBackend(out_dir)`.
    """
    import torch

    recipe = _recipe(family)
    opts = _options(recipe, config_overrides)
    if recipe.missing():
        raise ModelError(f"tiny {family}: its processor needs {', '.join(recipe.missing())}, which is not installed here; "
                         f"pip install {' '.join(recipe.missing())} to build it")
    tok = _train_tokenizer(recipe, opts["vocab_size"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, processor = recipe.build(tok, opts)
    model.eval()
    model.generation_config.pad_token_id = tok.id(recipe.pad)
    model.generation_config.eos_token_id = tok.id(recipe.eos)
    if recipe.bos is not None:
        model.generation_config.bos_token_id = tok.id(recipe.bos)
    model.generation_config.do_sample = False
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    meta = {"family": family, "seed": seed, "options": opts, "image_size": IMAGE_SIZE,
            "image_tokens_per_image": recipe.image_tokens, "recipe_hash": recipe_hash(family, seed=seed, **config_overrides)}
    (out_dir / "vlmlab_tiny.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out_dir


def tiny_model_path(family: str, cache_root: Path, seed: int = 0, **config_overrides: Any) -> Path:
    """The folder of a tiny model under `cache_root`, built on first use (atomically, by rename)."""
    key = recipe_hash(family, seed=seed, **config_overrides)
    final = Path(cache_root) / f"{family}-{key}"
    if (final / "vlmlab_tiny.json").exists():
        return final
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{family}-", dir=cache_root))
    try:
        build_tiny(family, tmp, seed=seed, **config_overrides)
        try:
            tmp.rename(final)
        except OSError:  # another process built it first
            if not (final / "vlmlab_tiny.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
