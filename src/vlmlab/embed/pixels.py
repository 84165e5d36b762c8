"""Model-free embedders for toy data and tests: downsampled pixels, hashed bag of words.

Both are deterministic functions of the content (no weights, no randomness), so retrieval on the
toy world works on a laptop in milliseconds and tests need no model files.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np
import PIL.Image

from vlmlab.data.images import Image
from vlmlab.embed.base import l2_normalize


class PixelsEmbedder:
    """An image as its `size`x`size` RGB thumbnail (box filter), mean-centred, L2-normalised.

    Args:
        size: side of the thumbnail; the embedding has 3*size*size dimensions.
    """

    modality = "image"

    def __init__(self, size: int = 8) -> None:
        if size < 1:
            raise ValueError(f"pixels embedder size must be >= 1, got {size}")
        self.size = size
        self.name = "pixels"

    @property
    def fingerprint(self) -> str:
        return f"pixels-{self.size}"

    def embed(self, items: Sequence[Image]) -> np.ndarray:
        rows = []
        for image in items:
            thumb = image.load().resize((self.size, self.size), PIL.Image.Resampling.BOX)
            x = np.asarray(thumb, dtype=np.float32).reshape(-1) / 255.0
            rows.append(x - x.mean())
        return l2_normalize(np.stack(rows)) if rows else np.zeros((0, 3 * self.size**2), np.float32)


class BagOfWordsEmbedder:
    """A text as lower-cased word counts hashed into `dim` buckets (signed), L2-normalised."""

    modality = "text"

    def __init__(self, dim: int = 256) -> None:
        if dim < 1:
            raise ValueError(f"bag-of-words dim must be >= 1, got {dim}")
        self.dim = dim
        self.name = "bag-of-words"

    @property
    def fingerprint(self) -> str:
        return f"bow-{self.dim}"

    def embed(self, items: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for i, text in enumerate(items):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return l2_normalize(out)
