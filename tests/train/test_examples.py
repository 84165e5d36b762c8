"""Label masking and the length guard, on real tiny models and their real chat templates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from train_fixtures import TINY, colour_examples
from vlmlab.errors import DataError
from vlmlab.models.base import Turn
from vlmlab.models.hf_encode import encode_conversation
from vlmlab.models.processor import load_processor
from vlmlab.train import TrainExample, encode_and_guard, encode_example
from vlmlab.train.batches import collate_with_labels
from vlmlab.train.examples import IGNORE_INDEX


def loss_tokens(processor, enc) -> list[tuple[int, str]]:
    """(position, token text) of every position that carries loss."""
    positions = (enc.labels != IGNORE_INDEX).nonzero().flatten().tolist()
    return [(p, processor.tokenizer.decode([int(enc.input_ids[p])])) for p in positions]


def loss_segments(processor, input_ids: torch.Tensor, labels: torch.Tensor) -> list[str]:
    """Decoded runs of consecutive positions that carry loss."""
    segments, current = [], []
    for i, lab in enumerate(labels.tolist()):
        if lab != IGNORE_INDEX:
            current.append(int(input_ids[i]))
        elif current:
            segments.append(processor.tokenizer.decode(current))
            current = []
    if current:
        segments.append(processor.tokenizer.decode(current))
    return segments


def test_loss_is_exactly_on_answer_and_end_of_turn(tiny_qwen: Path, examples) -> None:
    processor = load_processor(tiny_qwen)
    enc = encode_example(processor, examples[0])  # image + "What is the colour?" -> "red"
    n = enc.length
    # The sequence ends "...<|im_start|>assistant\n" "red" "<|im_end|>" "\n": loss on the answer and the
    # end-of-turn token (so the model learns to stop), not on the template's trailing newline.
    assert loss_tokens(processor, enc) == [(n - 3, "red"), (n - 2, "<|im_end|>")]
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert enc.num_image_tokens == int((enc.input_ids == image_id).sum()) == 4
    assert (enc.labels[enc.input_ids == image_id] == IGNORE_INDEX).all()
    assert enc.num_loss_tokens == 2


def test_training_prompt_is_the_inference_prompt(tiny_qwen: Path, examples) -> None:
    processor = load_processor(tiny_qwen)
    ex = examples[1]
    train = encode_example(processor, ex)
    infer = encode_conversation(processor, ex.conversation)  # what generation feeds the model
    prompt_len = infer.input_ids.shape[0]
    assert torch.equal(train.input_ids[:prompt_len], infer.input_ids)
    assert torch.equal(train.encoded.model_inputs["pixel_values"], infer.model_inputs["pixel_values"])
    assert (train.labels[:prompt_len] == IGNORE_INDEX).all()


def test_batch_padding_carries_no_loss(tiny_qwen: Path, colour_images) -> None:
    processor = load_processor(tiny_qwen)
    short = TrainExample("short", [Turn("user", [colour_images["red"], "What?"])], "red")
    long = TrainExample("long", [Turn("user", [colour_images["blue"], "What is the colour of this image?"])], "blue")
    encs = [encode_example(processor, e) for e in (short, long)]
    pad = processor.tokenizer.pad_token_id
    batch = collate_with_labels([e.encoded for e in encs], [e.labels for e in encs], pad)
    assert batch["labels"].shape == batch["input_ids"].shape
    n_short = encs[0].length
    assert batch["input_ids"].shape[1] > n_short
    assert (batch["labels"][0, n_short:] == IGNORE_INDEX).all()  # right padding: no loss
    assert (batch["attention_mask"][0, n_short:] == 0).all()
    for row, enc in enumerate(encs):
        assert loss_segments(processor, batch["input_ids"][row], batch["labels"][row]) == [
            f"{['red', 'blue'][row]}<|im_end|>"
        ]


def test_multi_turn_episode_puts_loss_on_every_answer(tiny_qwen: Path, colour_images) -> None:
    processor = load_processor(tiny_qwen)
    im = colour_images
    episode = TrainExample(
        "episode",
        [
            Turn("user", [im["red"], "What about this one?"]),
            Turn("assistant", "red"),
            Turn("user", [im["blue"], "What about this one?"]),
            Turn("assistant", "blue"),
            Turn("user", [im["green"], "What about this one?"]),
        ],
        "green",
    )
    every = encode_example(processor, episode, loss_on="all_assistant")
    last = encode_example(processor, episode, loss_on="last")
    assert torch.equal(every.input_ids, last.input_ids)
    assert loss_segments(processor, every.input_ids, every.labels) == ["red<|im_end|>", "blue<|im_end|>", "green<|im_end|>"]
    assert loss_segments(processor, last.input_ids, last.labels) == ["green<|im_end|>"]
    assert every.num_image_tokens == 12
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert (every.labels[every.input_ids == image_id] == IGNORE_INDEX).all()


@pytest.mark.parametrize(("family", "end_of_turn"), [("gemma3", "<end_of_turn>"), ("llava", "</s>")])
def test_other_families_mask_to_answer_and_end_of_turn(family: str, end_of_turn: str, tmp_path: Path, colour_images) -> None:
    from vlmlab.models.tiny import build_tiny

    path = build_tiny(family, tmp_path / family, **TINY)
    processor = load_processor(path)
    enc = encode_example(processor, colour_examples(colour_images, 1)[2])  # answer "blue"
    segments = loss_segments(processor, enc.input_ids, enc.labels)
    assert len(segments) == 1
    assert segments[0].strip() == f"blue{end_of_turn}"
    assert enc.num_image_tokens > 0
    assert enc.num_loss_tokens >= 2


def test_length_guard_names_the_sample_and_the_length_needed(tiny_qwen: Path, colour_images, examples) -> None:
    processor = load_processor(tiny_qwen)
    im = colour_images
    big = TrainExample("three-images", [Turn("user", [im["red"], im["blue"], im["green"], "Which colours?"])], "red")
    need = encode_example(processor, big).length
    fits = encode_example(processor, examples[0]).length
    assert fits < need
    with pytest.raises(DataError, match=rf"'three-images' needs {need} tokens \(12 of them image tokens\).*max_length is {need - 1}"):
        encode_and_guard(processor, [*examples, big], max_length=need - 1)
    kept, skipped = encode_and_guard(processor, [*examples, big], max_length=need - 1, skip_too_long=True)
    assert skipped == ["three-images"] and len(kept) == len(examples)
    # exactly max_length fits; nothing is ever truncated
    kept, skipped = encode_and_guard(processor, [big], max_length=need)
    assert skipped == [] and kept[0].length == need and kept[0].num_image_tokens == 12
    with pytest.raises(DataError, match="all 1 training samples are longer"):
        encode_and_guard(processor, [big], max_length=fits, skip_too_long=True)


def test_length_guard_counts_every_too_long_sample(tiny_qwen: Path, examples) -> None:
    processor = load_processor(tiny_qwen)
    with pytest.raises(DataError, match=r"'ex0' needs \d+ tokens .*15 more samples are too long"):
        encode_and_guard(processor, examples, max_length=8)


def test_examples_are_validated(tiny_qwen: Path, colour_images) -> None:
    from vlmlab.train.examples import validate_examples

    ok = Turn("user", [colour_images["red"], "What?"])
    with pytest.raises(DataError, match="'a' appears twice"):
        validate_examples([TrainExample("a", [ok], "red"), TrainExample("a", [ok], "red")])
    with pytest.raises(DataError, match="'b' has an empty target"):
        validate_examples([TrainExample("b", [ok], "  ")])
    with pytest.raises(DataError, match="'c': the conversation must end with a user turn"):
        validate_examples([TrainExample("c", [ok, Turn("assistant", "red")], "red")])


def test_missing_image_names_the_sample_and_the_file(tiny_qwen: Path, tmp_path: Path) -> None:
    from vlmlab.data.images import Image

    processor = load_processor(tiny_qwen)
    missing = tmp_path / "gone.png"
    ex = TrainExample("row-7", [Turn("user", [Image(path=missing), "What?"])], "red")
    with pytest.raises(DataError, match=rf"training example 'row-7': {missing}: image file not found"):
        encode_and_guard(processor, [ex], max_length=64)


def test_image_input_cache_encodes_multi_turn_episodes_bit_identically(tiny_qwen: Path, colour_images) -> None:
    """fine_tune shares an ImageInputCache across examples: `all_assistant` re-encodes every prefix
    of an episode, and each image must then be preprocessed once with identical model inputs."""
    from vlmlab.models.hf_encode import ImageInputCache

    processor = load_processor(tiny_qwen)
    im, colours = colour_images, list(colour_images)
    episode = TrainExample("ep", [
        Turn("user", [im[colours[0]], "What about this one?"]), Turn("assistant", colours[0]),
        Turn("user", [im[colours[1]], "And this one?"]), Turn("assistant", colours[1]),
        Turn("user", [im[colours[0]], "What about this one?"]),
    ], colours[0])
    cache = ImageInputCache()
    plain = encode_example(processor, episode, "all_assistant")
    cached = encode_example(processor, episode, "all_assistant", cache)
    assert torch.equal(plain.input_ids, cached.input_ids) and torch.equal(plain.labels, cached.labels)
    for key, value in plain.encoded.model_inputs.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, cached.encoded.model_inputs[key]), key
    assert cache.misses == 2 and cache.hits > 0  # two distinct images, each processed once
