"""How many positions (prompt + generated tokens) a checkpoint's language model allows.

A request whose prompt plus `max_new_tokens` runs past that limit either crashes deep inside the
model (learned position tables index out of range) or silently degrades (RoPE past its trained
length), so the hf backend refuses it before generating, naming the key and the limit.
"""

from __future__ import annotations

from typing import Any

from vlmlab.errors import ConfigError

# where text configs keep their limit, first match wins (Llama/Qwen/Gemma/OPT, GPT-2, T5-like, ChatGLM)
POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


class GenerationTooLong(ConfigError):
    """A request needs more positions than the model has: a setting to change, not one failed item."""


def position_limit(config: Any) -> tuple[int, str] | None:
    """(limit, config key) of the text model's positions from a transformers config (its text part);
    None if it names none or is an encoder-decoder (prompt and generated tokens have separate limits)."""
    if getattr(config, "is_encoder_decoder", False):
        return None
    texts = [config.get_text_config(decoder=True)] if hasattr(config, "get_text_config") else []
    for part in [*texts, config]:
        for key in POSITION_KEYS:
            value = getattr(part, key, None)
            if isinstance(value, int) and value > 0:
                return value, key
    return None


def max_positions(config: Any) -> int | None:
    """The position limit of `position_limit`, or None."""
    found = position_limit(config)
    return found[0] if found else None


def check_room(request_id: str, prompt_tokens: int, max_new_tokens: int, limit: tuple[int, str] | int | None, model: str) -> None:
    """Raise `GenerationTooLong` when prompt + max_new_tokens exceeds the `limit` (from `position_limit`) positions."""
    if limit is None:
        return
    limit, key = limit if isinstance(limit, tuple) else (limit, "max_position_embeddings")
    if prompt_tokens + max_new_tokens <= limit:
        return
    room = limit - prompt_tokens
    fix = f"set max_new_tokens to at most {room}" if room > 0 else "shorten the prompt (fewer or smaller images, less text)"
    raise GenerationTooLong(
        f"max_new_tokens={max_new_tokens}: request {request_id!r} has a {prompt_tokens}-token prompt and {model} allows "
        f"{limit} positions in all ({key} in its config); {fix}"
    )
