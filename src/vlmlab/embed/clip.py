"""CLIP text and image embeddings through transformers' own CLIP classes, loaded from a local folder.

`CLIPTextEmbedder(path)` / `CLIPImageEmbedder(path)` load `CLIPModel` plus its tokenizer or image
processor with `save_pretrained` files (a real checkpoint such as openai/clip-vit-large-patch14
downloaded beforehand, or a tiny random one built offline for tests). Outputs are the projected
embeddings (`get_text_features` / `get_image_features`), L2-normalised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vlmlab.data.images import Image
from vlmlab.embed.base import l2_normalize
from vlmlab.embed.minilm import model_fingerprint
from vlmlab.errors import ModelError


def _load_clip(path: Path, device: str):
    import torch
    from transformers import CLIPModel

    if not (path / "config.json").exists():
        raise ModelError(f"{path}: not a CLIP model folder (no config.json); pass a save_pretrained folder")
    try:
        model = CLIPModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot load CLIPModel ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    return model.to(device).eval()


def _as_tensor(out):
    """transformers 5 may return a model output instead of a tensor from get_*_features."""
    if hasattr(out, "pooler_output") and not hasattr(out, "shape"):
        return out.pooler_output
    return out


class _CLIPTower:
    """What both towers share: the model folder, the loaded `CLIPModel` and a fingerprint of the folder."""

    name = ""

    def __init__(self, path: Path | str, device: str = "cpu") -> None:
        self.path = Path(path)
        self.device = device
        self.model = _load_clip(self.path, device)
        self._fingerprint = model_fingerprint(self.path, self.name)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint


class CLIPTextEmbedder(_CLIPTower):
    """CLIP text tower embeddings (truncated to the model's max length)."""

    modality = "text"
    name = "clip-text"

    def __init__(self, path: Path | str, device: str = "cpu") -> None:
        from transformers import AutoTokenizer

        super().__init__(path, device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)

    def embed(self, items: Sequence[str]) -> np.ndarray:
        import torch

        max_len = self.model.config.text_config.max_position_embeddings
        batch = self.tokenizer(list(items), padding=True, truncation=True, max_length=max_len, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = _as_tensor(self.model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]))
        return l2_normalize(out.float().cpu().numpy())


class CLIPImageEmbedder(_CLIPTower):
    """CLIP vision tower embeddings."""

    modality = "image"
    name = "clip-image"

    def __init__(self, path: Path | str, device: str = "cpu") -> None:
        from transformers import AutoImageProcessor

        super().__init__(path, device)
        self.processor = AutoImageProcessor.from_pretrained(str(self.path), local_files_only=True)

    def embed(self, items: Sequence[Image]) -> np.ndarray:
        import torch

        pixels = self.processor(images=[im.load() for im in items], return_tensors="pt")["pixel_values"].to(self.device)
        with torch.inference_mode():
            out = _as_tensor(self.model.get_image_features(pixel_values=pixels))
        return l2_normalize(out.float().cpu().numpy())
