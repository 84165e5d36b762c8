"""Turn a conversation (and optionally a target reply) into model inputs for a Hugging Face VLM.

This is the one place where `Turn`s become token ids, used by `HFBackend.generate`/`score` AND by
fine-tuning, so the training template is the inference template by construction.

How the target span is found (never by re-tokenising a prefix string):

1. The prompt segment is rendered by the processor's own chat template with the generation prompt
   (`<|im_start|>assistant\\n`, `ASSISTANT:`, ...) and run through the processor with the images,
   so each image placeholder is expanded to its real number of image tokens. These ids are exactly
   what `generate()` feeds the model.
2. The conversation plus an assistant turn holding the target is rendered by the same template; the
   prompt text must be a prefix of it (else `ModelError`), and the rest - the reply segment, e.g.
   `red<|im_end|>\\n` - is tokenised on its own (no special tokens added) and appended.
3. `target_slice` covers the reply-segment tokens whose characters overlap the target text: they
   decode to the target, plus any whitespace the template puts between the prompt and the reply
   (LLaVA's `ASSISTANT: red` scores the token ` red`). `label_slice` extends it through the
   end-of-turn token (`<|im_end|>`, `</s>`, `<end_of_turn>`, ...): what fine-tuning supervises,
   so the model learns to stop. Scoring uses `target_slice`, or `label_slice` for a request with
   `score_end_of_turn` (Lever-Plus `add_eos_token=True`).

`collate()` batches `Encoded`s with left padding (generation) or right padding (scoring/training).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import torch

from vlmlab._compat import with_image_processor
from vlmlab.errors import ModelError
from vlmlab.models.base import Turn, conversation_images

# Per-token tensors with more dimensions (Mllama: token x image x tile); padded on every dimension.
# IDEFICS: token x image, which image each token's gated cross-attention sees.
_PER_TOKEN_GRID_KEYS = ("cross_attention_mask", "image_attention_mask")
# Per-sample tensors with a leading batch dimension (Idefics3 pads images per sample); all other
# vision tensors are per-image and concatenated along dim 0.
_PER_SAMPLE_KEYS = ("pixel_attention_mask", "aspect_ratio_ids", "aspect_ratio_mask")


@dataclass
class Encoded:
    """One encoded conversation.

    Attributes:
        input_ids: 1-D LongTensor, prompt (with images expanded) followed by the reply segment if any.
        attention_mask: 1-D LongTensor of ones, same length.
        target_slice: positions of exactly the target's tokens (see module doc), or None.
        label_slice: target tokens plus the end-of-turn token(s): what training supervises.
        prompt_length: number of prompt tokens (what generation would be fed).
        model_inputs: per-image tensors (pixel_values, image_grid_thw, ...) and per-token extras
            (mm_token_type_ids, token_type_ids) as 1-D tensors aligned with `input_ids`.
        num_image_tokens: image placeholder tokens in `input_ids`.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    target_slice: slice | None
    label_slice: slice | None
    prompt_length: int
    model_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    num_image_tokens: int = 0

    def labels(self, ignore_index: int = -100) -> torch.Tensor:
        """Labels for causal-LM loss: `ignore_index` everywhere except `label_slice`."""
        labels = torch.full_like(self.input_ids, ignore_index)
        if self.label_slice is not None:
            labels[self.label_slice] = self.input_ids[self.label_slice]
        return labels


def to_messages(conversation: Sequence[Turn]) -> list[dict[str, Any]]:
    """`Turn`s as the list-of-dicts format every HF chat template takes (images as placeholders)."""
    messages = []
    for turn in conversation:
        parts: list[dict[str, Any]] = []
        for c in turn.content:
            parts.append({"type": "text", "text": c} if isinstance(c, str) else {"type": "image"})
        messages.append({"role": turn.role, "content": parts})
    return messages


def render_prompt(processor: Any, conversation: Sequence[Turn], *, add_generation_prompt: bool = True) -> str:
    """The chat-template text of a conversation (image placeholders not yet expanded)."""
    return processor.apply_chat_template(
        to_messages(conversation), add_generation_prompt=add_generation_prompt, tokenize=False
    )


def _suffix_token_types(processor: Any, prompt_text: str, conversation: Sequence[Turn], suffix: str) -> int | None:
    """The token type a processor gives a reply it is handed as `suffix` (PaliGemma's prefix-LM:
    1 = causal suffix), or None when its processor takes no suffix."""
    import inspect

    if "suffix" not in inspect.signature(processor.__call__).parameters:
        return None
    images = [im.load() for im in conversation_images(conversation)]
    out = _processor_call(processor, prompt_text, images, suffix=suffix)
    return int(out["token_type_ids"][0, -1])


def _interleaved(processor: Any, text: str, images: list) -> list:
    """The chat-rendered text split at its image placeholders, each image in its place (the
    prompt format of processors that take interleaved prompts: IDEFICS)."""
    from vlmlab.models.families import processor_image_token

    pieces = text.split(str(processor_image_token(processor)))
    if len(pieces) != len(images) + 1:
        raise ModelError(f"the chat template placed {len(pieces) - 1} image placeholder(s) for {len(images)} image(s)")
    prompt: list = []
    for piece, image in zip(pieces, [*images, None]):
        prompt += [piece] if piece else []
        prompt += [image] if image is not None else []
    return prompt


def _processor_call(processor: Any, text: str, images: list, **extra: Any) -> dict[str, torch.Tensor]:
    from vlmlab.models.families import takes_interleaved_prompts

    tok = processor.tokenizer
    if images and takes_interleaved_prompts(processor):
        text, images = _interleaved(processor, text, images), []  # type: ignore[assignment]
    kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"} | {k: [v] for k, v in extra.items()}
    if images:
        kwargs["images"] = images
    if tok.bos_token is not None and isinstance(text, str) and text.startswith(tok.bos_token):
        kwargs["add_special_tokens"] = False
    try:
        out = processor(**kwargs)
    except (ValueError, TypeError) as exc:  # the processor refuses this input (e.g. PaliGemma without an image)
        raise ModelError(f"the {type(processor).__name__} refused this prompt: {' '.join(str(exc).split())}") from None
    return dict(out)


class ImageInputCache:
    """The image processor's outputs per image content hash, so each image is decoded and
    preprocessed once (an LRU of `size` images).

    Only for processors whose image processor treats each image on its own (the families with a
    `vision_cache` kind): a batch's outputs are then the per-image outputs concatenated along
    dim 0. For one processor call the real `processor.image_processor` is swapped (on a shallow
    copy of the processor, `_compat.with_image_processor`) for `_CachedImageProcessor`, which
    returns cached rows; everything else - placeholder expansion, tokenisation, token-type ids - is
    the processor's own code. Images already cached are passed as a 1x1 stand-in that the
    processor only counts.
    """

    def __init__(self, size: int = 128) -> None:
        from collections import OrderedDict

        if size < 1:
            raise ValueError(f"ImageInputCache size must be >= 1, got {size}")
        self.size = size
        self._rows: "OrderedDict[str, dict[str, Any]]" = OrderedDict()
        self._options: str | None = None
        self.hits = 0
        self.misses = 0

    def processor_call(self, processor: Any, text: str, images: Sequence[Any]) -> dict[str, torch.Tensor]:
        """`_processor_call(processor, text, [im.load() ...])`, with per-image outputs cached."""
        if not images:
            return _processor_call(processor, text, [])
        import PIL.Image

        from vlmlab.models.families import takes_interleaved_prompts

        takes_interleaved_prompts(processor)  # asked of the real processor, never of the caching proxy
        keys = [im.sha256 for im in images]
        stand_in = PIL.Image.new("RGB", (1, 1))
        pils = [stand_in if key in self._rows else im.load() for key, im in zip(keys, images)]
        proxy = with_image_processor(processor, _CachedImageProcessor(processor.image_processor, self, keys, pils))
        return _processor_call(proxy, text, pils)

    def rows(self, inner: Any, keys: list[str], pils: list[Any], kwargs: dict) -> dict[str, Any]:
        """The outputs of `inner` for the images `keys`, concatenated (misses computed)."""
        import numpy as np

        options = repr(sorted(kwargs.items()))
        if self._options is None:
            self._options = options
        elif options != self._options:  # one cache serves one processor with fixed options
            raise ModelError("ImageInputCache: image processor options changed between calls; use one cache per processor")
        parts = []
        for key, pil in zip(keys, pils):
            if key in self._rows:
                self._rows.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
                self._rows[key] = dict(inner([pil], **kwargs))
            parts.append(self._rows[key])
        while len(self._rows) > max(self.size, len(set(keys))):  # evict after the call, never its own images
            self._rows.popitem(last=False)
        out: dict[str, Any] = {}
        for name in parts[0]:
            values = [p[name] for p in parts]
            if isinstance(values[0], torch.Tensor):
                out[name] = torch.cat(values, dim=0)
            elif isinstance(values[0], np.ndarray):
                out[name] = np.concatenate(values, axis=0)
            else:
                out[name] = [x for v in values for x in v]
        return out


class _CachedImageProcessor:
    """Stands in for `processor.image_processor` during one `ImageInputCache.processor_call`."""

    def __init__(self, inner: Any, cache: ImageInputCache, keys: list[str], pils: list[Any]) -> None:
        self._inner, self._cache, self._keys, self._pils = inner, cache, keys, pils

    def __call__(self, images: Any = None, **kwargs: Any) -> Any:
        from transformers import BatchFeature

        rows = self._cache.rows(self._inner, self._keys, self._pils, kwargs)
        return BatchFeature(rows, tensor_type=kwargs.get("return_tensors"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def image_token_id(processor: Any) -> int | None:
    """The id of the token that stands for one image feature vector (after expansion), if any.

    The tokenizer's `image_token` wins over the processor's: Gemma3's processor calls the
    begin-of-image token its image token, while the per-feature token is `<image_soft_token>`.
    """
    tok_token = getattr(processor.tokenizer, "image_token", None)
    if isinstance(tok_token, str) and tok_token:
        return processor.tokenizer.convert_tokens_to_ids(tok_token)
    tid = getattr(processor, "image_token_id", None)
    if isinstance(tid, int):
        return tid
    token = getattr(processor, "image_token", None)
    if token is not None:  # a str, or an AddedToken (BLIP-2) whose str() is its content
        return processor.tokenizer.convert_tokens_to_ids(str(token))
    return None


def encode_conversation(
    processor: Any,
    conversation: Sequence[Turn],
    target: str | None = None,
    *,
    add_generation_prompt: bool = True,
    image_inputs: "ImageInputCache | None" = None,
) -> Encoded:
    """Encode a conversation, and if given a target reply, with the target's token span.

    Args:
        processor: a loaded HF processor with a chat template (see `load_processor`).
        conversation: turns ending with the user turn to answer.
        target: the assistant reply to score or train on; None for a generation prompt.
        add_generation_prompt: only for `target=None`; with a target the generation prompt is
            always used, since that is what the model sees at inference.
        image_inputs: a per-image cache of the image processor's outputs (only for processors
            whose images are processed independently); None decodes and processes every image.

    Raises:
        DataError: an image is missing or corrupt (from `Image.load`).
        ModelError: the chat template renders the reply so that the target cannot be located.
    """
    prompt_text = render_prompt(processor, conversation, add_generation_prompt=add_generation_prompt or target is not None)
    if image_inputs is not None:
        out = image_inputs.processor_call(processor, prompt_text, conversation_images(conversation))
    else:
        out = _processor_call(processor, prompt_text, [im.load() for im in conversation_images(conversation)])
    ids = out.pop("input_ids")[0]
    mask = out.pop("attention_mask")[0]
    out.pop("labels", None)  # PaliGemma's processor adds labels; scoring and training make their own
    prompt_len = int(ids.shape[0])
    # per-token extras: token types (1-D per token) and Mllama's cross_attention_mask (per token x image x tile)
    token_extras = {k: v[0] for k, v in out.items() if v.ndim >= 2 and v.shape[0] == 1 and v.shape[1] == prompt_len
                    and k not in ("pixel_values", "image_grid_thw")}
    model_inputs = {k: v for k, v in out.items() if k not in token_extras}
    target_slice = label_slice = None
    if target is not None:
        full = render_prompt(processor, list(conversation) + [Turn("assistant", target)], add_generation_prompt=False)
        if not full.startswith(prompt_text):
            raise ModelError(
                "the chat template renders an assistant reply that does not start with its own generation prompt; "
                "this model's template cannot be used for scoring"
            )
        suffix = full[len(prompt_text):]
        start = suffix.find(target) if target else suffix.find("")
        if start < 0:
            raise ModelError(f"the chat template changed the target text {target!r} (e.g. trimmed it); strip the target")
        end = start + len(target)
        tok = processor.tokenizer
        enc = tok(suffix, add_special_tokens=False, return_offsets_mapping=True)
        sids, offsets = enc["input_ids"], enc["offset_mapping"]
        inside = [i for i, (a, b) in enumerate(offsets) if a < end and b > start]
        if target and not inside:
            raise ModelError(f"target {target!r} produced no tokens")
        t0 = prompt_len + (inside[0] if inside else 0)
        t1 = prompt_len + (inside[-1] + 1 if inside else 0)
        special = set(tok.all_special_ids)
        last = inside[-1] + 1 if inside else 0
        label_end = last
        for j in range(last, len(sids)):
            label_end = j + 1
            if sids[j] in special:
                break
        else:
            label_end = len(sids)
        target_slice = slice(t0, t1)
        label_slice = slice(t0, prompt_len + label_end)
        sids_t = torch.tensor(sids, dtype=ids.dtype)
        ids = torch.cat([ids, sids_t])
        mask = torch.cat([mask, torch.ones(len(sids), dtype=mask.dtype)])
        suffix_types = _suffix_token_types(processor, prompt_text, conversation, suffix) if "token_type_ids" in token_extras else None
        for k, v in token_extras.items():
            # the reply continues the prompt's last position (it sees what the last prompt token
            # sees: Mllama's cross-attention to every image), except where the processor itself
            # marks a suffix (PaliGemma: token type 1, causal, not the bidirectional prefix)
            tail = v[-1:].expand(len(sids), *v.shape[1:]).clone()
            if k == "token_type_ids" and suffix_types is not None:
                tail[:] = suffix_types
            token_extras[k] = torch.cat([v, tail])
    img_id = image_token_id(processor)
    n_img = int((ids == img_id).sum()) if img_id is not None else 0
    return Encoded(
        input_ids=ids,
        attention_mask=mask,
        target_slice=target_slice,
        label_slice=label_slice,
        prompt_length=prompt_len,
        model_inputs=model_inputs | token_extras,
        num_image_tokens=n_img,
    )


def _pad_to(t: torch.Tensor, inner: list[int]) -> torch.Tensor:
    """Zero-pad every dimension but the first to `inner` (Mllama: images x tiles per sample)."""
    for d, size in enumerate(inner, start=1):
        if t.shape[d] < size:
            t = torch.cat([t, torch.zeros((*t.shape[:d], size - t.shape[d], *t.shape[d + 1:]), dtype=t.dtype)], dim=d)
    return t


def collate(
    encoded: Sequence[Encoded],
    padding_side: Literal["left", "right"],
    pad_token_id: int,
    *,
    with_labels: bool = False,
    ignore_index: int = -100,
) -> dict[str, torch.Tensor]:
    """Pad a list of `Encoded` into one batch dict ready for `model(**batch)` / `model.generate`.

    Per-token tensors (input_ids, attention_mask, mm_token_type_ids, ...) are padded on
    `padding_side`; per-image tensors (pixel_values, image_grid_thw, ...) are concatenated in batch
    order; per-sample image tensors (Idefics3's 5-D pixel_values) are zero-padded to the largest
    image count. With `with_labels`, `labels` holds `Encoded.labels()` padded with `ignore_index`.
    """
    if not encoded:
        raise ValueError("collate needs at least one Encoded")
    longest = max(int(e.input_ids.shape[0]) for e in encoded)

    def pad(t: torch.Tensor, value: int) -> torch.Tensor:
        n = longest - int(t.shape[0])
        filler = torch.full((n, *t.shape[1:]), value, dtype=t.dtype)
        return torch.cat([filler, t]) if padding_side == "left" else torch.cat([t, filler])

    batch: dict[str, torch.Tensor] = {
        "input_ids": torch.stack([pad(e.input_ids, pad_token_id) for e in encoded]),
        "attention_mask": torch.stack([pad(e.attention_mask, 0) for e in encoded]),
    }
    if with_labels:
        batch["labels"] = torch.stack([pad(e.labels(ignore_index), ignore_index) for e in encoded])
    keys: list[str] = []
    for e in encoded:
        keys += [k for k in e.model_inputs if k not in keys]
    for key in keys:
        values = [e.model_inputs.get(key) for e in encoded]
        present = [v for v in values if v is not None]
        first = present[0]
        per_token = all(v.shape[0] == e.input_ids.shape[0] and (v.ndim == 1 or key in _PER_TOKEN_GRID_KEYS)
                        for v, e in zip(values, encoded) if v is not None)
        if per_token:
            inner = [max(v.shape[d] for v in present) for d in range(1, first.ndim)]
            batch[key] = torch.stack([
                pad(_pad_to(v if v is not None else torch.zeros((e.input_ids.shape[0], *inner), dtype=first.dtype), inner), 0)
                for v, e in zip(values, encoded)
            ])
        elif key in _PER_SAMPLE_KEYS or (key == "pixel_values" and first.ndim >= 5):
            most = max(v.shape[1] for v in present)
            padded = []
            for v, e in zip(values, encoded):
                if v is None:
                    v = torch.zeros((1, most, *first.shape[2:]), dtype=first.dtype)
                if v.shape[1] < most:
                    v = torch.cat([v, torch.zeros((1, most - v.shape[1], *v.shape[2:]), dtype=v.dtype)], dim=1)
                padded.append(v)
            batch[key] = torch.cat(padded, dim=0)
        else:
            batch[key] = torch.cat(present, dim=0)
    return batch
