"""Per-image vision features, computed once per image content hash and handed to the model as
`mm_encoder_outputs` instead of pixel values.

Which batches can use it is decided from the batch itself, not from a family name:

- "grid": the processor emitted `image_grid_thw` (Qwen-style patch rows, split per image);
- "stacked": `pixel_values` holds exactly one 3xHxW row per image and no other per-image tensor
  (LLaVA, Gemma3, InternVL without tiling, ...);
- anything else (tiles, per-sample padding, aspect-ratio ids): the batch goes through the pixel
  path unchanged.

The vision towers of these families see each image on its own, so results equal the uncached
path (tested per family by the conformance matrix).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Literal, Sequence

import torch

from vlmlab.data.images import Image

CacheKind = Literal["grid", "stacked"]


def batch_kind(model_inputs: Sequence[dict[str, torch.Tensor]], n_images: int) -> CacheKind | None:
    """How a batch's images can use cached features (see module doc), from its encoded inputs."""
    if n_images == 0:
        return None
    keys = {k for inputs in model_inputs for k, v in inputs.items() if not (v.ndim == 1)}  # 1-D = per token
    if keys == {"pixel_values", "image_grid_thw"}:
        rows = sum(int(inputs["image_grid_thw"].shape[0]) for inputs in model_inputs if "image_grid_thw" in inputs)
        return "grid" if rows == n_images else None
    if keys == {"pixel_values"}:
        pvs = [inputs["pixel_values"] for inputs in model_inputs if "pixel_values" in inputs]
        if all(pv.ndim == 4 for pv in pvs) and sum(int(pv.shape[0]) for pv in pvs) == n_images:
            return "stacked"
    return None


class VisionFeatureCache:
    """An LRU of per-image features (`size` images) keyed by the image's content hash."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._features: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        self._features.clear()

    def holds(self, images: Sequence[Image]) -> bool:
        """Whether every image's features are cached (then pixels need not be collated)."""
        return all(im.sha256 in self._features for im in images)

    def _get(self, key: str, compute: Callable[[], Any]) -> torch.Tensor:
        if key in self._features:
            self._features.move_to_end(key)
            self.hits += 1
            return self._features[key]
        self.misses += 1
        with torch.no_grad():
            pooled = compute().pooler_output
        feat = torch.cat(list(pooled), dim=0) if isinstance(pooled, (tuple, list)) else pooled.reshape(-1, pooled.shape[-1])
        self._features[key] = feat
        if len(self._features) > self.size:
            self._features.popitem(last=False)
        return feat

    def apply(self, base: Any, batch: dict, images: Sequence[Image], kind: CacheKind | None) -> dict:
        """`batch` with `pixel_values` replaced by cached features (`mm_encoder_outputs`).

        `base` is the inner multimodal model (`get_image_features`). A batch without pixels
        (score() leaves them out when every image is cached) still gets its features.
        """
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        if kind is None or not images or ("pixel_values" not in batch and not self.holds(images)):
            return batch
        pv = batch.get("pixel_values")
        feats = []
        if kind == "grid":
            grid = batch["image_grid_thw"]
            rows = torch.split(pv, grid.prod(-1).tolist()) if pv is not None else [None] * len(grid)
            for im, row, g in zip(images, rows, grid):
                feats.append(self._get(im.sha256, lambda: base.get_image_features(row, g[None], return_dict=True)))
        else:
            for i, im in enumerate(images):
                feats.append(self._get(im.sha256, lambda: base.get_image_features(pixel_values=pv[i : i + 1], return_dict=True)))
        out = {k: v for k, v in batch.items() if k != "pixel_values"}
        out["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=PerImageFeatures(feats))}
        return out


class PerImageFeatures(tuple):
    """Per-image feature tensors, read the way each family's forward reads `pooler_output`:
    as a tuple (Qwen, LLaVA: `torch.cat(pooler_output)`) or as one tensor (Gemma3, InternVL:
    `pooler_output.to(device, dtype)`, then scattered into the image-token positions)."""

    def to(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return torch.cat(tuple(self), dim=0).to(*args, **kwargs)
