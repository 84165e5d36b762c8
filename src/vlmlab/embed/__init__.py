"""Text and image embedders (MiniLM, CLIP, downsampled pixels) with an on-disk cache by content hash.

Call `build_embedder(name, **options)` with a registered name (`minilm`, `clip-text`, `clip-image`,
`pixels`, `bag-of-words`) and `embed_texts` / `embed_images` (in `vlmlab.embed.cache`) to get float32,
L2-normalised rows, cached by the sha256 of the text or of the image bytes.
"""

from vlmlab.embed.base import Embedder, l2_normalize
from vlmlab.embed.cache import EmbeddingCache, embed_images, embed_texts
from vlmlab.embed.registry import EMBEDDERS, build_embedder

__all__ = [
    "EMBEDDERS",
    "Embedder",
    "EmbeddingCache",
    "build_embedder",
    "embed_images",
    "embed_texts",
    "l2_normalize",
]
