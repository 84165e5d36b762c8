"""Embedders by the names users type in configs: `minilm`, `clip-text`, `clip-image`, `pixels`, `bag-of-words`."""

from __future__ import annotations

from typing import Any, Callable

from vlmlab.embed.base import Embedder
from vlmlab.errors import ConfigError
from vlmlab.registry import Registry

EMBEDDERS: Registry[Callable[..., Embedder]] = Registry(
    "embedder", unknown=lambda name, hint, names: f"unknown embedder {name!r}; {hint or 'choose one of ' + ', '.join(sorted(names))}",
)
EMBEDDERS.register_lazy("minilm", "vlmlab.embed.minilm:MiniLMEmbedder")
EMBEDDERS.register_lazy("clip-text", "vlmlab.embed.clip:CLIPTextEmbedder")
EMBEDDERS.register_lazy("clip-image", "vlmlab.embed.clip:CLIPImageEmbedder")
EMBEDDERS.register_lazy("pixels", "vlmlab.embed.pixels:PixelsEmbedder")
EMBEDDERS.register_lazy("bag-of-words", "vlmlab.embed.pixels:BagOfWordsEmbedder")


def register_embedder(name: str, factory: Callable[..., Embedder]) -> None:
    """Add an embedder name; a duplicate name is an error."""
    EMBEDDERS.register(name, factory)


def build_embedder(name: str, **options: Any) -> Embedder:
    """Build a registered embedder; an unknown name is a ConfigError with a "did you mean"."""
    factory = EMBEDDERS.get(name)
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(f"embedder {name!r}: bad options {sorted(options)} ({exc})") from None
