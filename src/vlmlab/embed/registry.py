"""Embedders by the names users type in configs: `minilm`, `clip-text`, `clip-image`, `pixels`, `bag-of-words`."""

from __future__ import annotations

import difflib
from typing import Any, Callable

from vlmlab.embed.base import Embedder
from vlmlab.errors import ConfigError


def _minilm(**options: Any) -> Embedder:
    from vlmlab.embed.minilm import MiniLMEmbedder

    return MiniLMEmbedder(**options)


def _clip_text(**options: Any) -> Embedder:
    from vlmlab.embed.clip import CLIPTextEmbedder

    return CLIPTextEmbedder(**options)


def _clip_image(**options: Any) -> Embedder:
    from vlmlab.embed.clip import CLIPImageEmbedder

    return CLIPImageEmbedder(**options)


def _pixels(**options: Any) -> Embedder:
    from vlmlab.embed.pixels import PixelsEmbedder

    return PixelsEmbedder(**options)


def _bow(**options: Any) -> Embedder:
    from vlmlab.embed.pixels import BagOfWordsEmbedder

    return BagOfWordsEmbedder(**options)


EMBEDDERS: dict[str, Callable[..., Embedder]] = {}


def register_embedder(name: str, factory: Callable[..., Embedder]) -> None:
    """Add an embedder name; a duplicate name is an error."""
    if name in EMBEDDERS:
        raise ValueError(f"embedder {name!r} is already registered")
    EMBEDDERS[name] = factory


for _name, _factory in [("minilm", _minilm), ("clip-text", _clip_text), ("clip-image", _clip_image), ("pixels", _pixels), ("bag-of-words", _bow)]:
    register_embedder(_name, _factory)


def build_embedder(name: str, **options: Any) -> Embedder:
    """Build a registered embedder; an unknown name is a ConfigError with a "did you mean"."""
    if name not in EMBEDDERS:
        close = difflib.get_close_matches(name, list(EMBEDDERS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(sorted(EMBEDDERS))}"
        raise ConfigError(f"unknown embedder {name!r}; {hint}")
    try:
        return EMBEDDERS[name](**options)
    except TypeError as exc:
        raise ConfigError(f"embedder {name!r}: bad options {sorted(options)} ({exc})") from None
