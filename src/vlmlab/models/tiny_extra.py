"""Tiny recipes of the families beyond the original seven: LLaVA-NeXT, LLaVA-OneVision, VipLLaVA,
Qwen3-VL, PaliGemma, Mllama, SmolVLM, IDEFICS (Flamingo), Idefics2, Aya Vision, Mistral3 (Pixtral).

Each builds the real `transformers` architecture from a small config and the family's processor
with its image processor configured by hand (56 px images, a handful of image tokens), plus a
chat template in the family's own format. `tiny.TINY_FAMILIES` merges `EXTRA_FAMILIES`.
"""

from __future__ import annotations

from typing import Any

from vlmlab.models.tiny_base import (
    _DEFAULTS,
    _IDEFICS3_TEMPLATE,
    _LLAVA_TEMPLATE,
    _QWEN_SPECIAL,
    _QWEN_TEMPLATE,
    IMAGE_SIZE,
    TinyRecipe,
    _llama_text,
    _qwen_text_config,
    _text_defaults,
    _Tok,
)

_LLAVA_SPECIAL = ("<unk>", "<s>", "</s>", "<pad>", "<image>")


def _clip(o: dict[str, Any]) -> Any:
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"],
                            num_hidden_layers=o["vision_depth"], num_attention_heads=4,
                            image_size=IMAGE_SIZE, patch_size=14, projection_dim=o["vision_dim"])


def _siglip(o: dict[str, Any]) -> dict[str, Any]:
    return dict(model_type="siglip_vision_model", hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"],
                num_hidden_layers=o["vision_depth"], num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=14)


def _qwen2_text(tok: _Tok, o: dict[str, Any]) -> dict[str, Any]:
    return _text_defaults(o) | dict(
        model_type="qwen2", vocab_size=tok.vocab_size, bos_token_id=tok.id("<|endoftext|>"),
        eos_token_id=tok.id("<|im_end|>"), pad_token_id=tok.id("<|endoftext|>"), tie_word_embeddings=True,
    )


def _build_llava_next(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextProcessor
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

    grid = [[IMAGE_SIZE, IMAGE_SIZE]]
    config = LlavaNextConfig(
        vision_config=_clip(o), text_config=_llama_text(tok, o, "<s>", "</s>", "<pad>"),
        image_token_index=tok.id("<image>"), image_grid_pinpoints=grid, vision_feature_layer=-1,
        vision_feature_select_strategy="default", tie_word_embeddings=True,
    )
    model = LlavaNextForConditionalGeneration(config)
    ip = LlavaNextImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                    image_grid_pinpoints=grid)
    proc = LlavaNextProcessor(image_processor=ip, tokenizer=tok.hf, patch_size=14, vision_feature_select_strategy="default",
                              num_additional_image_tokens=1, image_token="<image>", chat_template=_LLAVA_TEMPLATE)
    return model, proc


def _build_vipllava(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import LlavaProcessor, VipLlavaConfig, VipLlavaForConditionalGeneration
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    config = VipLlavaConfig(
        vision_config=_clip(o), text_config=_llama_text(tok, o, "<s>", "</s>", "<pad>"),
        image_token_index=tok.id("<image>"), vision_feature_layers=[-2, -1], image_seq_length=16, tie_word_embeddings=True,
    )
    model = VipLlavaForConditionalGeneration(config)
    ip = CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    proc = LlavaProcessor(image_processor=ip, tokenizer=tok.hf, patch_size=14, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, image_token="<image>", chat_template=_LLAVA_TEMPLATE)
    return model, proc


_ONEVISION_TEMPLATE = _QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>\n")


def _build_llava_onevision(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, LlavaOnevisionProcessor
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import LlavaOnevisionImageProcessorPil

    from vlmlab._compat import image_only_processor_class

    grid = [[IMAGE_SIZE, IMAGE_SIZE]]
    config = LlavaOnevisionConfig(
        vision_config=_siglip(o), text_config=_qwen2_text(tok, o), image_token_index=tok.id("<image>"),
        video_token_index=tok.id("<video>"), image_grid_pinpoints=grid, vision_feature_layer=-1,
        vision_feature_select_strategy="full", tie_word_embeddings=True,
    )
    model = LlavaOnevisionForConditionalGeneration(config)
    ip = LlavaOnevisionImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_grid_pinpoints=grid)
    proc = image_only_processor_class(LlavaOnevisionProcessor)(
        image_processor=ip, tokenizer=tok.hf, num_image_tokens=16, vision_feature_select_strategy="full",
        image_token="<image>", video_token="<video>", chat_template=_ONEVISION_TEMPLATE,
    )
    return model, proc


def _build_qwen3_vl(tok: _Tok, o: dict[str, Any], moe: bool = False) -> tuple[Any, Any]:
    import transformers
    import transformers.models.qwen2_vl.image_processing_pil_qwen2_vl as m

    from vlmlab._compat import image_only_processor_class

    text = _qwen_text_config(tok, o)
    text["rope_parameters"] |= {"mrope_interleaved": True}
    if moe:
        text |= dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=o["intermediate_size"] // 2, decoder_sparse_step=1)
    vision = dict(depth=o["vision_depth"], hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"], num_heads=4,
                  out_hidden_size=o["hidden_size"], patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                  num_position_embeddings=16, deepstack_visual_indexes=[0])
    prefix = "Qwen3VLMoe" if moe else "Qwen3VL"
    config = getattr(transformers, f"{prefix}Config")(
        text_config=text, vision_config=vision,
        image_token_id=tok.id("<|image_pad|>"), video_token_id=tok.id("<|video_pad|>"),
        vision_start_token_id=tok.id("<|vision_start|>"), vision_end_token_id=tok.id("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    model = getattr(transformers, f"{prefix}ForConditionalGeneration")(config)
    ip = m.Qwen2VLImageProcessorPil(min_pixels=64 * 64, max_pixels=64 * 64, patch_size=16, merge_size=2, temporal_patch_size=2)
    proc = image_only_processor_class(transformers.Qwen3VLProcessor)(image_processor=ip, tokenizer=tok.hf, chat_template=_QWEN_TEMPLATE)
    return model, proc


_GLM4V_TEMPLATE = _QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<|begin_of_image|><|image|><|end_of_image|>")
_GLM4V_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_image|>", "<|end_of_image|>", "<|image|>",
                  "<|begin_of_video|>", "<|end_of_video|>", "<|video|>")


def _build_glm4v(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import Glm4vConfig, Glm4vForConditionalGeneration, Glm4vProcessor
    from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil

    from vlmlab._compat import image_only_processor_class

    text = _qwen_text_config(tok, o)
    rotary_half = o["hidden_size"] // o["num_heads"] // 4  # half of the rotary dims (partial_rotary_factor 0.5)
    q = rotary_half // 4
    text["rope_parameters"] |= {"partial_rotary_factor": 0.5,
                                "mrope_section": [q, (rotary_half - q) // 2, rotary_half - q - (rotary_half - q) // 2]}
    vision = dict(depth=o["vision_depth"], hidden_size=o["vision_dim"], intermediate_size=o["hidden_size"], num_heads=4,
                  out_hidden_size=o["hidden_size"], patch_size=14, spatial_merge_size=2, temporal_patch_size=2, image_size=IMAGE_SIZE)
    config = Glm4vConfig(text_config=text, vision_config=vision, image_token_id=tok.id("<|image|>"),
                         video_token_id=tok.id("<|video|>"), image_start_token_id=tok.id("<|begin_of_image|>"),
                         image_end_token_id=tok.id("<|end_of_image|>"), video_start_token_id=tok.id("<|begin_of_video|>"),
                         video_end_token_id=tok.id("<|end_of_video|>"), tie_word_embeddings=True)
    model = Glm4vForConditionalGeneration(config)
    ip = Glm4vImageProcessorPil(size={"shortest_edge": IMAGE_SIZE * IMAGE_SIZE, "longest_edge": IMAGE_SIZE * IMAGE_SIZE},
                                patch_size=14, merge_size=2, temporal_patch_size=2)
    proc = image_only_processor_class(Glm4vProcessor)(image_processor=ip, tokenizer=tok.hf, chat_template=_GLM4V_TEMPLATE)
    return model, proc


# PaliGemma takes images first, then the prompt; the processor adds <bos> after the images and a
# newline after the prompt; the answer follows and ends with <eos>.
_PALIGEMMA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{{ eos_token }}"
    "{% else %}{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% endfor %}"
)


def _build_paligemma(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    head = o["hidden_size"] // o["num_heads"]
    text = _text_defaults(o) | dict(model_type="gemma", vocab_size=tok.vocab_size, bos_token_id=tok.id("<bos>"),
                                    eos_token_id=tok.id("<eos>"), pad_token_id=tok.id("<pad>"), head_dim=head)
    config = PaliGemmaConfig(vision_config=_siglip(o) | {"projection_dim": o["hidden_size"]}, text_config=text,
                             image_token_index=tok.id("<image>"), projection_dim=o["hidden_size"], hidden_size=o["hidden_size"],
                             tie_word_embeddings=True)
    model = PaliGemmaForConditionalGeneration(config)
    ip = SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    ip.image_seq_length = 16
    proc = PaliGemmaProcessor(image_processor=ip, tokenizer=tok.hf, chat_template=_PALIGEMMA_TEMPLATE)
    return model, proc


_MLLAMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<|image|>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def _build_mllama(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    import torch
    from transformers import MllamaConfig, MllamaForConditionalGeneration, MllamaProcessor
    from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil

    vision = dict(hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"], num_hidden_layers=o["vision_depth"],
                  num_global_layers=1, attention_heads=4, image_size=IMAGE_SIZE, patch_size=14, max_num_tiles=1,
                  intermediate_layers_indices=[0], vision_output_dim=2 * o["vision_dim"], supported_aspect_ratios=[[1, 1]])
    text = dict(vocab_size=tok.vocab_size, hidden_size=o["hidden_size"], intermediate_size=o["intermediate_size"],
                num_hidden_layers=o["num_layers"], num_attention_heads=o["num_heads"], num_key_value_heads=o["num_kv_heads"],
                cross_attention_layers=[1], max_position_embeddings=2048, bos_token_id=tok.id("<|begin_of_text|>"),
                eos_token_id=tok.id("<|eot_id|>"), pad_token_id=tok.id("<|finetune_right_pad_id|>"))
    config = MllamaConfig(vision_config=vision, text_config=text, image_token_index=tok.id("<|image|>"))
    model = MllamaForConditionalGeneration(config)
    # transformers initialises the cross-attention gates to zero (tanh(0) = 0: the text never sees
    # the image until a released checkpoint overwrites them); open them so images reach the model
    for layer in model.model.language_model.layers:
        for gate in (getattr(layer, "cross_attn_attn_gate", None), getattr(layer, "cross_attn_mlp_gate", None)):
            if gate is not None:
                torch.nn.init.constant_(gate, 0.5)
    ip = MllamaImageProcessorPil(max_image_tiles=1, size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    proc = MllamaProcessor(image_processor=ip, tokenizer=tok.hf, chat_template=_MLLAMA_TEMPLATE)
    return model, proc


_IDEFICS2_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
_IDEFICS_SPECIAL = (("image_token", "<image>"), ("fake_image_token", "<fake_token_around_image>"),
                    ("image_boundary_token", "<fake_token_around_image>"), ("end_of_utterance_token", "<end_of_utterance>"))


def _build_idefics2(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import Idefics2Config, Idefics2ForConditionalGeneration, Idefics2Processor
    from transformers.models.idefics2.image_processing_pil_idefics2 import Idefics2ImageProcessorPil

    vision = dict(hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"], num_hidden_layers=o["vision_depth"],
                  num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=14)
    perceiver = dict(hidden_act="silu", resampler_n_latents=4, resampler_depth=1, resampler_n_heads=4,
                     resampler_head_dim=16, num_key_value_heads=2)
    text = _llama_text(tok, o, "<s>", "<end_of_utterance>", "<pad>") | {"model_type": "mistral"}
    config = Idefics2Config(vision_config=vision, perceiver_config=perceiver, text_config=text,
                            image_token_id=tok.id("<image>"), tie_word_embeddings=True)
    model = Idefics2ForConditionalGeneration(config)
    ip = Idefics2ImageProcessorPil(do_image_splitting=False, size={"shortest_edge": IMAGE_SIZE, "longest_edge": IMAGE_SIZE})
    proc = Idefics2Processor(image_processor=ip, tokenizer=tok.hf, image_seq_len=4, chat_template=_IDEFICS2_TEMPLATE)
    return model, proc


def _build_idefics(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    """IDEFICS (Flamingo): gated cross-attention from every decoder layer to the perceiver-free
    image features. The gates start random (`alpha_initializer="normal"`, per channel: the scalar
    "float" gate cannot be drawn normal in transformers 5.25) instead of the release's
    zeros, so the tiny model's outputs depend on its images; no layer is frozen."""
    from transformers import IdeficsConfig, IdeficsForVisionText2Text, IdeficsProcessor
    from transformers.models.idefics.image_processing_pil_idefics import IdeficsImageProcessorPil

    vision = dict(embed_dim=o["vision_dim"], intermediate_size=2 * o["vision_dim"], num_hidden_layers=o["vision_depth"],
                  num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=14)
    config = IdeficsConfig(
        vocab_size=tok.vocab_size, hidden_size=o["hidden_size"], intermediate_size=o["intermediate_size"],
        num_hidden_layers=o["num_layers"], num_attention_heads=o["num_heads"], max_position_embeddings=2048,
        bos_token_id=tok.id("<s>"), eos_token_id=tok.id("</s>"), pad_token_id=tok.id("<pad>"), vision_config=vision,
        alpha_initializer="normal", alpha_type="vector", alphas_initializer_range=0.5, freeze_text_layers=False,
        freeze_vision_layers=False, use_resampler=False,
    )
    model = IdeficsForVisionText2Text(config)
    ip = IdeficsImageProcessorPil(image_size=IMAGE_SIZE)
    proc = IdeficsProcessor(image_processor=ip, tokenizer=tok.hf, image_size=IMAGE_SIZE)
    proc.chat_template = _IDEFICS2_TEMPLATE  # IdeficsProcessor.__init__ drops the chat_template argument
    return model, proc


def _build_smolvlm(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration, SmolVLMProcessor
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil

    from vlmlab._compat import image_only_processor_class

    vision = dict(hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"], num_hidden_layers=o["vision_depth"],
                  num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=14)
    config = SmolVLMConfig(vision_config=vision, text_config=_llama_text(tok, o, "<|im_start|>", "<end_of_utterance>", "<|endoftext|>"),
                           image_token_id=tok.id("<image>"), scale_factor=2, tie_word_embeddings=True)
    model = SmolVLMForConditionalGeneration(config)
    ip = SmolVLMImageProcessorPil(do_image_splitting=False, size={"longest_edge": IMAGE_SIZE},
                                  max_image_size={"longest_edge": IMAGE_SIZE}, do_resize=True)
    proc = image_only_processor_class(SmolVLMProcessor)(image_processor=ip, tokenizer=tok.hf, image_seq_len=4,
                                                         chat_template=_IDEFICS3_TEMPLATE)
    return model, proc


_AYA_TEMPLATE = (
    "<BOS_TOKEN>{% for message in messages %}<|START_OF_TURN_TOKEN|>"
    "{{ '<|CHATBOT_TOKEN|>' if message['role'] == 'assistant' else '<|USER_TOKEN|>' }}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "<|END_OF_TURN_TOKEN|>{% endfor %}{% if add_generation_prompt %}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{% endif %}"
)
_AYA_SPECIAL = ("<PAD>", "<BOS_TOKEN>", "<|START_OF_TURN_TOKEN|>", "<|END_OF_TURN_TOKEN|>", "<|USER_TOKEN|>", "<|CHATBOT_TOKEN|>",
                "<image>", "<|START_OF_IMG|>", "<|END_OF_IMG|>", "<|IMG_PATCH|>", "<|IMG_LINE_BREAK|>", "TILE", "TILE_GLOBAL")


def _cohere2_text(tok: _Tok, o: dict[str, Any]) -> dict[str, Any]:
    """The Cohere2 text config of Aya Vision and Command-A-Vision (cohere2_vision)."""
    return _text_defaults(o) | dict(model_type="cohere2", vocab_size=tok.vocab_size, bos_token_id=tok.id("<BOS_TOKEN>"),
                                    eos_token_id=tok.id("<|END_OF_TURN_TOKEN|>"), pad_token_id=tok.id("<PAD>"),
                                    sliding_window=64, layer_types=["full_attention"] * o["num_layers"])


def _build_aya_vision(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import AyaVisionConfig, AyaVisionForConditionalGeneration, AyaVisionProcessor
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    text = _cohere2_text(tok, o)
    config = AyaVisionConfig(vision_config=_siglip(o), text_config=text, downsample_factor=2,
                             image_token_index=tok.id("<|IMG_PATCH|>"), adapter_layer_norm_eps=1e-6, tie_word_embeddings=True)
    model = AyaVisionForConditionalGeneration(config)
    ip = GotOcr2ImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, crop_to_patches=False, min_patches=1, max_patches=1)
    proc = AyaVisionProcessor(image_processor=ip, tokenizer=tok.hf, patch_size=14, img_size=IMAGE_SIZE, downsample_factor=2,
                              image_token="<image>", chat_template=_AYA_TEMPLATE)
    return model, proc


_COHERE2_SPECIAL = ("<PAD>", "<BOS_TOKEN>", "<|START_OF_TURN_TOKEN|>", "<|END_OF_TURN_TOKEN|>", "<|USER_TOKEN|>",
                    "<|CHATBOT_TOKEN|>", "<|START_OF_IMG|>", "<|END_OF_IMG|>", "<|IMG_PATCH|>", "<|IMG_LINE_BREAK|>")


def _build_cohere2_vision(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import Cohere2VisionConfig, Cohere2VisionForConditionalGeneration, Cohere2VisionProcessor
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    text = _cohere2_text(tok, o)
    config = Cohere2VisionConfig(vision_config=_siglip(o), text_config=text, downsample_factor=2,
                                 image_token_id=tok.id("<|IMG_PATCH|>"), alignment_intermediate_size=o["hidden_size"],
                                 tie_word_embeddings=True)
    model = Cohere2VisionForConditionalGeneration(config)
    ip = GotOcr2ImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, crop_to_patches=False, min_patches=1, max_patches=1)
    ip.patch_size = 2  # the processor puts patch_size**2 image tokens per tile: (56/14/2)**2 = 4
    proc = Cohere2VisionProcessor(image_processor=ip, tokenizer=tok.hf, chat_template=_AYA_TEMPLATE.replace("<image>", "<|IMG_PATCH|>"))
    return model, proc


_MISTRAL3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}[INST]"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}[IMG]{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "[/INST]{% elif message['role'] == 'assistant' %}{% for c in message['content'] %}{{ c['text'] }}{% endfor %}{{ eos_token }}"
    "{% endif %}{% endfor %}"
)


def _build_mistral3(tok: _Tok, o: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration
    from transformers.models.pixtral.image_processing_pil_pixtral import PixtralImageProcessorPil

    from transformers.models.pixtral.processing_pixtral import PixtralProcessor  # needs torchvision (recipe.requires)
    vision = dict(hidden_size=o["vision_dim"], intermediate_size=2 * o["vision_dim"], num_hidden_layers=o["vision_depth"],
                  num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=14, head_dim=o["vision_dim"] // 4)
    text = _llama_text(tok, o, "<s>", "</s>", "<pad>") | {"model_type": "mistral"}
    config = Mistral3Config(vision_config=vision, text_config=text, image_token_index=tok.id("[IMG]"),
                            spatial_merge_size=2, tie_word_embeddings=True)
    model = Mistral3ForConditionalGeneration(config)
    ip = PixtralImageProcessorPil(size={"longest_edge": IMAGE_SIZE}, patch_size=14)
    proc = PixtralProcessor(image_processor=ip, tokenizer=tok.hf, patch_size=14, spatial_merge_size=2, image_token="[IMG]",
                            image_break_token="[IMG_BREAK]", image_end_token="[IMG_END]", chat_template=_MISTRAL3_TEMPLATE)
    return model, proc


_SMALL = _DEFAULTS | dict(vision_dim=64)
EXTRA_FAMILIES: dict[str, TinyRecipe] = {
    r.family: r
    for r in [
        TinyRecipe("llava-next", "llava_next", _LLAVA_SPECIAL, "<s>", "</s>", "<pad>", _LLAVA_TEMPLATE, _build_llava_next, _SMALL, 0,
                   (("image_token", "<image>"),)),
        TinyRecipe("vipllava", "vipllava", _LLAVA_SPECIAL, "<s>", "</s>", "<pad>", _LLAVA_TEMPLATE, _build_vipllava, _SMALL, 16,
                   (("image_token", "<image>"),)),
        TinyRecipe("llava-onevision", "llava_onevision", _QWEN_SPECIAL[:3] + ("<image>", "<video>"), None, "<|im_end|>",
                   "<|endoftext|>", _ONEVISION_TEMPLATE, _build_llava_onevision, _SMALL, 0,
                   (("image_token", "<image>"), ("video_token", "<video>"))),
        TinyRecipe("qwen3-vl", "qwen3_vl", _QWEN_SPECIAL, None, "<|im_end|>", "<|endoftext|>", _QWEN_TEMPLATE,
                   _build_qwen3_vl, _SMALL, 4),
        TinyRecipe("qwen3-vl-moe", "qwen3_vl_moe", _QWEN_SPECIAL, None, "<|im_end|>", "<|endoftext|>", _QWEN_TEMPLATE,
                   lambda tok, o: _build_qwen3_vl(tok, o, moe=True), _SMALL, 4),
        TinyRecipe("glm4v", "glm4v", _GLM4V_SPECIAL, None, "<|im_end|>", "<|endoftext|>", _GLM4V_TEMPLATE, _build_glm4v, _SMALL, 4,
                   (("image_token", "<|image|>"), ("video_token", "<|video|>"))),
        TinyRecipe("paligemma", "paligemma", ("<pad>", "<eos>", "<bos>", "<unk>", "<image>"), "<bos>", "<eos>", "<pad>",
                   _PALIGEMMA_TEMPLATE, _build_paligemma, _SMALL, 16, (("image_token", "<image>"),)),
        TinyRecipe("mllama", "mllama", ("<|begin_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>", "<|image|>",
                                        "<|start_header_id|>", "<|end_header_id|>"),
                   "<|begin_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>", _MLLAMA_TEMPLATE, _build_mllama, _SMALL, 1,
                   (("image_token", "<|image|>"),), revision=1),  # 1: open cross-attention gates
        TinyRecipe("idefics", "idefics", ("<unk>", "<s>", "</s>", "<pad>", "<image>", "<fake_token_around_image>",
                                          "<end_of_utterance>"),
                   "<s>", "</s>", "<pad>", _IDEFICS2_TEMPLATE, _build_idefics, _SMALL, 1, (("image_token", "<image>"),)),
        TinyRecipe("idefics2", "idefics2", ("<unk>", "<s>", "</s>", "<pad>", "<image>", "<fake_token_around_image>",
                                            "<end_of_utterance>"),
                   "<s>", "<end_of_utterance>", "<pad>", _IDEFICS2_TEMPLATE, _build_idefics2, _SMALL, 4, _IDEFICS_SPECIAL),
        TinyRecipe("smolvlm", "smolvlm", ("<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<image>",
                                          "<fake_token_around_image>", "<global-img>"),
                   "<|im_start|>", "<end_of_utterance>", "<|endoftext|>", _IDEFICS3_TEMPLATE, _build_smolvlm, _SMALL, 4,
                   _IDEFICS_SPECIAL + (("global_image_token", "<global-img>"),)),
        TinyRecipe("aya-vision", "aya_vision", _AYA_SPECIAL, "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<PAD>", _AYA_TEMPLATE,
                   _build_aya_vision, _SMALL, 4),
        TinyRecipe("cohere2-vision", "cohere2_vision", _COHERE2_SPECIAL, "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<PAD>",
                   _AYA_TEMPLATE.replace("<image>", "<|IMG_PATCH|>"), _build_cohere2_vision, _SMALL, 4,
                   (("image_token", "<|IMG_PATCH|>"), ("boi_token", "<|START_OF_IMG|>"), ("eoi_token", "<|END_OF_IMG|>"),
                    ("img_line_break_token", "<|IMG_LINE_BREAK|>"))),
        TinyRecipe("mistral3", "mistral3", ("<unk>", "<s>", "</s>", "<pad>", "[INST]", "[/INST]", "[IMG]", "[IMG_BREAK]",
                                            "[IMG_END]"),
                   "<s>", "</s>", "<pad>", _MISTRAL3_TEMPLATE, _build_mistral3, _SMALL, 0, requires=("torchvision",)),
    ]
}
