"""The embedder protocol: a batch of texts or images in, float32 L2-normalised rows out.

An embedder declares its `modality` ("text" or "image") and a `fingerprint` that changes whenever its
output could change (model files, options), so an on-disk cache never serves a stale vector.
"""

from __future__ import annotations

from typing import Literal, Protocol, Sequence, runtime_checkable

import numpy as np

from vlmlab.data.images import Image

Modality = Literal["text", "image"]


@runtime_checkable
class Embedder(Protocol):
    """What every embedder provides; `embed` takes strings (text) or `Image`s (image)."""

    name: str
    modality: Modality

    @property
    def fingerprint(self) -> str:
        """Identifies the model and options; part of every cache key."""
        ...

    def embed(self, items: Sequence[str] | Sequence[Image]) -> np.ndarray:
        """[len(items), dim] float32, each row L2-normalised."""
        ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation in float32; an all-zero row stays zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)
