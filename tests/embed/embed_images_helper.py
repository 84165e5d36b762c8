"""Helpers for the embed tests (imported by name; conftest modules are not importable by name)."""

from __future__ import annotations

import numpy as np
import PIL.Image

from vlmlab.data.images import Image


def make_image(colour: tuple[int, int, int], stripe: int = 0) -> Image:
    arr = np.zeros((20, 20, 3), dtype=np.uint8) + np.array(colour, dtype=np.uint8)
    if stripe:
        arr[::stripe] = 255
    return Image.from_pil(PIL.Image.fromarray(arr))
