"""On-disk embedding cache keyed by content hash (sha256 of the text or of the image bytes).

Layout: `<root>/<embedder fingerprint>/<key[:2]>/<key>.npy`, each file written atomically, so a
killed process leaves either a whole vector or none, and two processes can share a cache.
`embed_texts` / `embed_images` look up every item, embed only the misses (in batches), store them,
and return rows in input order. Duplicated inputs are embedded once.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from vlmlab.data.images import Image
from vlmlab.embed.base import Embedder
from vlmlab.progress import track
from vlmlab.runs import atomic_write_bytes


def text_key(text: str) -> str:
    """Content hash of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A folder of `.npy` vectors, one per (embedder fingerprint, content hash)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, fingerprint: str, key: str) -> Path:
        return self.root / fingerprint / key[:2] / f"{key}.npy"

    def get(self, fingerprint: str, key: str) -> np.ndarray | None:
        path = self._path(fingerprint, key)
        if not path.exists():
            return None
        return np.load(path, allow_pickle=False)

    def put(self, fingerprint: str, key: str, vector: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(vector, dtype=np.float32), allow_pickle=False)
        atomic_write_bytes(self._path(fingerprint, key), buf.getvalue())


def _embed_cached(
    embedder: Embedder,
    items: Sequence,
    keys: list[str],
    cache: EmbeddingCache | None,
    batch_size: int,
    description: str,
) -> np.ndarray:
    unique: dict[str, int] = {}
    for i, key in enumerate(keys):
        unique.setdefault(key, i)
    vectors: dict[str, np.ndarray] = {}
    if cache is not None:
        for key in unique:
            hit = cache.get(embedder.fingerprint, key)
            if hit is not None:
                vectors[key] = hit
    missing = [key for key in unique if key not in vectors]
    batches = [missing[i : i + batch_size] for i in range(0, len(missing), batch_size)]
    for batch in track(batches, description) if batches else []:
        out = embedder.embed([items[unique[k]] for k in batch])
        for key, row in zip(batch, out):
            vectors[key] = np.asarray(row, dtype=np.float32)
            if cache is not None:
                cache.put(embedder.fingerprint, key, vectors[key])
    if not keys:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([vectors[k] for k in keys]).astype(np.float32)


def embed_texts(
    embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None = None, batch_size: int = 64
) -> np.ndarray:
    """Embed texts (cached by their sha256); [N, D] float32 in input order."""
    if embedder.modality != "text":
        raise ValueError(f"embedder {embedder.name!r} embeds {embedder.modality}s, not texts")
    return _embed_cached(embedder, list(texts), [text_key(t) for t in texts], cache, batch_size, f"embed text ({embedder.name})")


def embed_images(
    embedder: Embedder, images: Sequence[Image], cache: EmbeddingCache | None = None, batch_size: int = 32
) -> np.ndarray:
    """Embed images (cached by the sha256 of their bytes); [N, D] float32 in input order."""
    if embedder.modality != "image":
        raise ValueError(f"embedder {embedder.name!r} embeds {embedder.modality}s, not images")
    return _embed_cached(embedder, list(images), [im.sha256 for im in images], cache, batch_size, f"embed images ({embedder.name})")
