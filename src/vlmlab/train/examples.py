"""Training examples, their label masks, and the length guard.

A `TrainExample` is a conversation that ends with a user turn plus the `target` the assistant
should answer. It is encoded by the same `encode_conversation` the HF backend uses for inference,
so the training prompt is byte-for-byte the inference prompt, and the positions that carry loss
come from the encoder's `target_slice` — never from re-tokenising strings.

Which positions carry loss (label != -100):

- the encoder's `label_slice`: the target's tokens (`target_slice`) through the template's
  end-of-turn token (`<|im_end|>` for Qwen, `<end_of_turn>` for Gemma 3, `</s>` for LLaVA), so that
  the model learns to stop;
- with `loss_on="all_assistant"`, the same for every earlier assistant turn of the conversation
  (in-context demonstrations with their answers). Each earlier answer's span is found by encoding the
  conversation up to that turn with the answer as target and checking that this encoding is an exact
  prefix of the full one (if a chat template renders earlier turns differently, that is an error).

Everything else — system and user text, image tokens, template markup, padding — is -100.

The length guard runs before any training: every sample's full length, with image tokens expanded
by the processor, is compared with `max_length`. Samples are never truncated, so image tokens can
never be cut; a too-long sample is an error naming it (or, with `skip_too_long`, skipped and counted).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from vlmlab.errors import DataError, ModelError
from vlmlab.models.base import Turn, conversation_key
from vlmlab.train.args import LossOn

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TrainExample:
    """One supervised sample: `conversation` (ending with a user turn) answered by `target`.

    For an in-context episode, put the demonstrations in `conversation` as user/assistant pairs and
    the query last; train with `loss_on="all_assistant"` to put loss on every answer.
    """

    id: str
    conversation: list[Turn]
    target: str


@dataclass
class EncodedExample:
    """A training sample ready for the model: token ids, labels and processor outputs."""

    id: str
    input_ids: torch.Tensor  # (L,) long
    labels: torch.Tensor  # (L,) long, IGNORE_INDEX where no loss
    encoded: Any  # the hf_encode `Encoded` (model_inputs etc.), or None when dropped to save memory
    num_image_tokens: int
    num_loss_tokens: int
    nbytes: int = field(default=0)

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[0])


def examples_fingerprint(examples: Sequence[TrainExample]) -> str:
    """A hash of every example's id, conversation (images by content hash) and target, in order."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps([ex.id, conversation_key(ex.conversation), ex.target]).encode())
    return digest.hexdigest()[:16]


def validate_examples(examples: Sequence[TrainExample]) -> None:
    """Check ids are unique, conversations end with a user turn and targets are non-empty."""
    if not examples:
        raise DataError("fine_tune got no training examples; pass at least one TrainExample")
    seen: set[str] = set()
    for ex in examples:
        if ex.id in seen:
            raise DataError(f"training example id {ex.id!r} appears twice; ids must be unique")
        seen.add(ex.id)
        if not ex.conversation or ex.conversation[-1].role != "user":
            raise DataError(f"training example {ex.id!r}: the conversation must end with a user turn (the target is the answer to it)")
        if not ex.target.strip():
            raise DataError(f"training example {ex.id!r} has an empty target; give it an answer or drop it")


def _encode(processor: Any, conversation: list[Turn], target: str, example_id: str, image_inputs: Any = None) -> Any:
    from vlmlab.models.hf_encode import encode_conversation

    try:
        return encode_conversation(processor, conversation, target, add_generation_prompt=True, image_inputs=image_inputs)
    except (DataError, ModelError) as exc:
        raise type(exc)(f"training example {example_id!r}: {exc}") from None


def _loss_span(encoded: Any, example_id: str) -> slice:
    """The target's tokens through the end-of-turn token (hf_encode's `label_slice`)."""
    span = encoded.label_slice
    if span is None or span.stop <= span.start:
        raise ModelError(f"training example {example_id!r}: the encoder found no target tokens to supervise")
    return span


def encode_example(processor: Any, example: TrainExample, loss_on: LossOn = "last", image_inputs: Any = None) -> EncodedExample:
    """Encode one example and build its labels (see the module docstring for which positions).

    `image_inputs` (an `hf_encode.ImageInputCache`, for families whose images are processed one by
    one) preprocesses each image once: `all_assistant` re-encodes every prefix of a conversation.
    """
    full = _encode(processor, list(example.conversation), example.target, example.id, image_inputs)
    input_ids = full.input_ids.to(torch.long)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    spans = [_loss_span(full, example.id)]
    if loss_on == "all_assistant":
        for i, turn in enumerate(example.conversation):
            if turn.role != "assistant":
                continue
            if turn.images:
                raise DataError(f"training example {example.id!r}: assistant turn {i} contains an image; answers must be text")
            prefix = _encode(processor, list(example.conversation[:i]), turn.text, example.id, image_inputs)
            span = _loss_span(prefix, example.id)
            if not torch.equal(prefix.input_ids[: span.stop], input_ids[: span.stop]):
                raise ModelError(
                    f"training example {example.id!r}: the chat template renders assistant turn {i} differently inside "
                    "the full conversation than as a reply; use loss_on='last' for this model"
                )
            spans.append(span)
    elif loss_on != "last":
        raise ValueError(f"loss_on must be 'last' or 'all_assistant', got {loss_on!r}")
    for span in spans:
        labels[span] = input_ids[span]
    nbytes = sum(int(v.numel() * v.element_size()) for v in full.model_inputs.values() if isinstance(v, torch.Tensor))
    return EncodedExample(
        id=example.id,
        input_ids=input_ids,
        labels=labels,
        encoded=full,
        num_image_tokens=int(full.num_image_tokens),
        num_loss_tokens=int((labels != IGNORE_INDEX).sum()),
        nbytes=nbytes + input_ids.numel() * 16,
    )


def encode_and_guard(
    processor: Any,
    examples: Sequence[TrainExample],
    *,
    max_length: int,
    skip_too_long: bool = False,
    loss_on: LossOn = "last",
    keep_bytes: int = 2 << 30,
    on_example: Callable[[int], None] | None = None,
    image_inputs: Any = None,
) -> tuple[list[EncodedExample], list[str]]:
    """Encode every example and check its full length against `max_length` before training.

    Args:
        processor: the model's processor (as loaded by `AutoProcessor.from_pretrained`).
        examples: the training examples, validated by `validate_examples`.
        max_length: the longest sequence allowed, image tokens included. Nothing is ever truncated.
        skip_too_long: skip (and count) samples longer than `max_length` instead of raising.
        loss_on: "last" (only the target) or "all_assistant" (every assistant answer too).
        keep_bytes: processor outputs (pixel values) are kept in memory up to this many bytes; beyond
            it, samples keep only token ids and labels and are re-encoded when batched.
        on_example: called with the index of each encoded example (for progress bars).
        image_inputs: an `hf_encode.ImageInputCache` shared by all examples (see `encode_example`).

    Returns:
        (encoded examples that fit, ids of skipped examples).

    Raises:
        DataError: a sample is longer than `max_length` (names the first, counts the others, and says
            the length needed), or every sample was skipped.
    """
    kept: list[EncodedExample] = []
    too_long: list[tuple[str, int, int]] = []
    used = 0
    for i, ex in enumerate(examples):
        enc = encode_example(processor, ex, loss_on, image_inputs)
        if on_example is not None:
            on_example(i)
        if enc.length > max_length:
            too_long.append((ex.id, enc.length, enc.num_image_tokens))
            continue
        if enc.num_loss_tokens == 0:
            raise DataError(f"training example {ex.id!r}: its target encodes to no tokens; check the target text")
        used += enc.nbytes
        if used > keep_bytes:
            enc.encoded = None
        kept.append(enc)
    if too_long and not skip_too_long:
        first_id, need, n_img = too_long[0]
        longest = max(n for _, n, _ in too_long)
        more = f"; {len(too_long) - 1} more samples are too long (longest needs {longest})" if len(too_long) > 1 else ""
        raise DataError(
            f"training sample {first_id!r} needs {need} tokens ({n_img} of them image tokens) but max_length is "
            f"{max_length}{more}; raise max_length to at least {longest}, shrink the images, or skip them with "
            "skip_too_long=True (samples are never truncated)"
        )
    if not kept:
        raise DataError(
            f"all {len(examples)} training samples are longer than max_length={max_length}; raise max_length "
            f"to at least {min(n for _, n, _ in too_long)}"
        )
    return kept, [sid for sid, _, _ in too_long]


def materialize(processor: Any, example: TrainExample, encoded: EncodedExample, loss_on: LossOn) -> Any:
    """The hf_encode `Encoded` of a sample whose processor outputs were dropped to save memory."""
    if encoded.encoded is not None:
        return encoded.encoded
    again = encode_example(processor, example, loss_on)
    if not torch.equal(again.input_ids, encoded.input_ids):
        raise DataError(f"training example {example.id!r} encodes differently than before training; did its image file change?")
    return again.encoded
