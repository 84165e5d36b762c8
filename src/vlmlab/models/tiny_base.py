"""Shared pieces of the tiny-model recipes (`tiny`, `tiny_extra`): the recipe type, the locally
trained tokenizer and small text configs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

IMAGE_SIZE = 56

# Toy-world words: every one should become a single token or a few.
_COLOURS = "red green blue yellow purple orange black white grey pink brown cyan"
_SHAPES = "circle square triangle star cross diamond heart ring shape shapes"
_NUMBERS = "zero one two three four five six seven eight nine ten"
_EMOTIONS = "happy sad angry surprised fearful disgusted neutral calm excited emotion valence arousal"
_WORDS = (
    "What is the colour color of this image picture photo ? How many are there in it . "
    "Describe describe a an and with on left right top bottom middle centre center yes no "
    "answer question Answer Question caption Caption about one object objects large small "
    "panorama scene view rate rating from to scale JSON json label emotion face person "
    "You are a helpful assistant User Assistant user assistant system model"
)


def _corpus() -> list[str]:
    """The fixed built-in training corpus of the tiny tokenizers."""
    lines: list[str] = []
    words = " ".join([_COLOURS, _SHAPES, _NUMBERS, _EMOTIONS, _WORDS]).split()
    for i in range(40):
        lines.append(" ".join(words))
        lines.append(" ".join(reversed(words)))
    colours, shapes, numbers = _COLOURS.split(), _SHAPES.split(), _NUMBERS.split()
    for i, c in enumerate(colours):
        for j, s in enumerate(shapes):
            lines.append(f"A {c} {s}. There are {numbers[(i + j) % 10]} {c} {s}s on the {('left', 'right')[j % 2]}.")
            lines.append(f"What is the colour? {c.capitalize()}. What shape? {s}. How many? {(i + j) % 9 + 1}")
    for e in _EMOTIONS.split():
        for d in range(1, 10):
            lines.append(f'{{"emotion": "{e}", "valence": {d}, "arousal": {10 - d}}}')
    lines.append(" ".join(str(d) for d in range(10)) * 5)
    return lines


@dataclass(frozen=True)
class TinyRecipe:
    """How to build one family: its special tokens, chat template and model/processor builders."""

    family: str
    model_type: str
    special_tokens: tuple[str, ...]
    bos: str | None
    eos: str
    pad: str
    chat_template: str
    build: Callable[["_Tok", dict[str, Any]], tuple[Any, Any]]  # -> (model, processor)
    defaults: dict[str, Any]
    image_tokens: int  # image tokens per 56x56 image
    extra_special: tuple[tuple[str, str], ...] = ()  # (tokenizer attribute, token) e.g. image_token
    requires: tuple[str, ...] = ()  # importable modules the family's processor needs (Pixtral: torchvision)
    revision: int = 0  # bump when this recipe alone changes: a new hash for its cached builds, the others' kept

    def missing(self) -> list[str]:
        """The required modules that cannot be imported here."""
        import importlib.util

        return [m for m in self.requires if importlib.util.find_spec(m) is None]


class _Tok:
    """The trained tokenizer plus id lookup, handed to the model builders."""

    def __init__(self, hf_tokenizer: Any) -> None:
        self.hf = hf_tokenizer

    def id(self, token: str) -> int:
        tid = self.hf.convert_tokens_to_ids(token)
        assert isinstance(tid, int) and tid != self.hf.unk_token_id, token
        return tid

    @property
    def vocab_size(self) -> int:
        return len(self.hf)


def _train_tokenizer(recipe: TinyRecipe, vocab_size: int) -> _Tok:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Digits are split individually so 1-9 are always single tokens.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(recipe.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    kwargs: dict[str, Any] = {"eos_token": recipe.eos, "pad_token": recipe.pad}
    if recipe.bos is not None:
        kwargs["bos_token"] = recipe.bos
    if recipe.extra_special:
        kwargs["extra_special_tokens"] = dict(recipe.extra_special)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    hf.chat_template = recipe.chat_template
    return _Tok(hf)



def _text_defaults(o: dict[str, Any]) -> dict[str, Any]:
    return dict(
        hidden_size=o["hidden_size"],
        intermediate_size=o["intermediate_size"],
        num_hidden_layers=o["num_layers"],
        num_attention_heads=o["num_heads"],
        num_key_value_heads=o["num_kv_heads"],
        head_dim=o["hidden_size"] // o["num_heads"],
        max_position_embeddings=2048,
    )


def _llama_text(tok: _Tok, o: dict[str, Any], bos: str, eos: str, pad: str) -> dict[str, Any]:
    return _text_defaults(o) | dict(
        model_type="llama", vocab_size=tok.vocab_size, bos_token_id=tok.id(bos), eos_token_id=tok.id(eos),
        pad_token_id=tok.id(pad), tie_word_embeddings=True,
    )



_QWEN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_LLAVA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{{ ' ' }}"
    "{% else %}{{ message['role'].upper() + ': ' }}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<image>\n' }}{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ ' ' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

def _qwen_image_processor() -> Any:
    import transformers.models.qwen2_vl.image_processing_pil_qwen2_vl as m

    return m.Qwen2VLImageProcessorPil(
        min_pixels=IMAGE_SIZE * IMAGE_SIZE,
        max_pixels=IMAGE_SIZE * IMAGE_SIZE,
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    )



def _qwen_text_config(tok: _Tok, o: dict[str, Any]) -> dict[str, Any]:
    """The text config shared by Qwen2-VL and Qwen2.5-VL (M-RoPE sections split from head_dim/2)."""
    head = o["hidden_size"] // o["num_heads"]
    q = head // 8
    return _text_defaults(o) | dict(
        vocab_size=tok.vocab_size,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [q, (head // 2 - q) // 2, head // 2 - q - (head // 2 - q) // 2]},
        bos_token_id=tok.id("<|endoftext|>"),
        eos_token_id=tok.id("<|im_end|>"),
        pad_token_id=tok.id("<|endoftext|>"),
    )


_DEFAULTS = dict(hidden_size=128, intermediate_size=256, num_layers=4, num_heads=4, num_kv_heads=2,
                 vision_depth=2, vision_dim=128, vocab_size=768)
_QWEN_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>")


_IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

