"""Tiny VLM folders written by transformers and tokenizers alone, in a process that never imports
vlmlab: a WordPiece tokenizer trained there (vlmlab's tiny models use byte-level BPE) and a chat
template in a format of its own (`<|user|>...[END]`), so that `vlmlab models check DIR` is tested on
checkpoints other tools made. `git` is an image-text-to-text architecture whose processor names no
image token and ships no chat template: no fact vlmlab needs can be derived from it.

    folders = build_foreign(tmp_path, "llava", "gemma3", "idefics3", "git")   # -> {family: folder}
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FAMILIES = ("llava", "gemma3", "idefics3", "git")

BUILD = r'''
import json, sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

OUT = Path(sys.argv[1])
CORPUS = ["what colour is the square ? it is red . the circle is green and the star is blue .",
          "how many shapes are there ? three . describe the image please : a small red square on the left .",
          "user assistant question answer yes no one two three four five six seven eight nine ten 0 1 2 3 4 5 6 7 8 9"] * 20
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>"
            "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
            "{% if c['type'] == 'image' %}{{ IMAGE }}{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
            "[END]\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")


def tokenizer(specials: list[str], **named: str) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece()
    base = ["[UNK]", "[PAD]", "[BOS]", "[END]", "<|user|>", "<|assistant|>", "<|system|>"]
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=base + specials, show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="[BOS]",
                                   eos_token="[END]", extra_special_tokens=named)


def text_config(tok, **extra):
    return dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=512, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id, **extra)


def vision(**extra):
    return dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=56, patch_size=14, **extra)


def save(name, model, processor, image):
    processor.chat_template = TEMPLATE.replace("{{ IMAGE }}", image)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.save_pretrained(OUT / name)
    processor.save_pretrained(OUT / name)


def llava():
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    tok = tokenizer(["<image>"], image_token="<image>")
    config = LlavaConfig(vision_config=CLIPVisionConfig(**vision(projection_dim=32)), text_config=dict(model_type="llama", **text_config(tok)),
                         image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1,
                         vision_feature_select_strategy="default")
    ip = CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56})
    proc = LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, image_token="<image>")
    save("llava", LlavaForConditionalGeneration(config), proc, "<image>")


def gemma3():
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessor, Gemma3Processor
    tok = tokenizer(["<image_soft_token>", "<start_of_image>", "<end_of_image>"], image_token="<image_soft_token>",
                    boi_token="<start_of_image>", eoi_token="<end_of_image>")
    config = Gemma3Config(text_config=text_config(tok, head_dim=16, query_pre_attn_scalar=16, sliding_window=64),
                          vision_config=dict(model_type="siglip_vision_model", **vision()), mm_tokens_per_image=4,
                          boi_token_index=tok.convert_tokens_to_ids("<start_of_image>"),
                          eoi_token_index=tok.convert_tokens_to_ids("<end_of_image>"),
                          image_token_index=tok.convert_tokens_to_ids("<image_soft_token>"))
    model = Gemma3ForConditionalGeneration(config)
    torch.nn.init.normal_(model.model.multi_modal_projector.mm_input_projection_weight, std=0.02)
    proc = Gemma3Processor(image_processor=Gemma3ImageProcessor(size={"height": 56, "width": 56}), tokenizer=tok, image_seq_length=4)
    save("gemma3", model, proc, "<start_of_image>")


def idefics3():
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor
    tok = tokenizer(["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"], image_token="<image>",
                    fake_image_token="<fake_token_around_image>", global_image_token="<global-img>",
                    end_of_utterance_token="<end_of_utterance>")
    config = Idefics3Config(vision_config=vision(), text_config=dict(model_type="llama", **text_config(tok)),
                            image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=2)
    ip = Idefics3ImageProcessor(do_image_splitting=False, size={"longest_edge": 56}, max_image_size={"longest_edge": 56})
    proc = Idefics3Processor(image_processor=ip, tokenizer=tok, image_seq_len=4)
    save("idefics3", Idefics3ForConditionalGeneration(config), proc, "<image>")


def git():
    """GIT puts the image features before the text: no image token, and it ships no chat template."""
    from transformers import CLIPImageProcessor, GitConfig, GitForCausalLM, GitProcessor
    tok = tokenizer([])
    config = GitConfig(vision_config=vision(), **{k: v for k, v in text_config(tok).items() if k != "num_key_value_heads"})
    proc = GitProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}), tokenizer=tok)
    GitForCausalLM(config).save_pretrained(OUT / "git")
    proc.save_pretrained(OUT / "git")


torch.manual_seed(0)
for build in sys.argv[2:]:
    globals()[build]()
assert not any(name.startswith("vlmlab") for name in sys.modules)
print(json.dumps(sorted(p.name for p in OUT.iterdir())))
'''


def build_foreign(out: Path, *families: str) -> dict[str, Path]:
    """Build the named folders under `out` in a subprocess without vlmlab; family -> folder."""
    unknown = set(families) - set(FAMILIES)
    assert not unknown, unknown
    proc = subprocess.run([sys.executable, "-c", BUILD, str(out), *families], capture_output=True, text=True,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == sorted(families)
    return {f: out / f for f in families}
