"""Resize policies: how an image is brought to the size a model or a baseline expects.

Equirectangular panoramas are 2:1, most vision encoders want something else, and the choice
changes results, so it is an explicit, recorded option:

- `squash`: resize to exactly W x H ignoring the aspect ratio (what the CORA baseline does);
- `pad`: keep the aspect ratio, fit inside W x H, centre on a solid background (letterbox);
- `none`: leave the pixels alone and let the model's processor decide.

    pixels = prepare_image(record.image, "pad", (448, 448))
"""

from __future__ import annotations

from typing import Literal

import PIL.Image

from vlmlab.data.images import Image
from vlmlab.errors import ConfigError
from vlmlab.registry import Registry

ResizePolicy = Literal["squash", "pad", "none"]
RESIZE_POLICIES: tuple[str, ...] = ("squash", "pad", "none")
_POLICIES = Registry.of_names("resize policy", RESIZE_POLICIES, unknown=lambda name, hint, names: (
    f"unknown resize policy {name!r}; choose one of {', '.join(names)}{'; ' + hint if hint else ''}"))


def check_policy(policy: str) -> ResizePolicy:
    """`policy` if it is a known resize policy, else a `ConfigError` with a "did you mean"."""
    return _POLICIES.check(policy)  # type: ignore[return-value]


def _check_size(size: int | tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        raise ConfigError("resize policy needs a size (width, height); pass size=(W, H) or use policy 'none'")
    width, height = (size, size) if isinstance(size, int) else tuple(size)
    if int(width) != width or int(height) != height or width < 1 or height < 1:
        raise ConfigError(f"image size must be positive integers (width, height), got {size!r}")
    return int(width), int(height)


def prepare_image(
    image: Image | PIL.Image.Image,
    policy: str,
    size: int | tuple[int, int] | None = None,
    *,
    fill: tuple[int, int, int] = (0, 0, 0),
    resample: PIL.Image.Resampling = PIL.Image.Resampling.BICUBIC,
) -> PIL.Image.Image:
    """Decode (if needed) and resize an image by `policy`; always returns an RGB PIL image.

    Args:
        image: an `Image` value (decoded here; a bad file raises `DataError` naming it) or a PIL image.
        policy: `squash`, `pad` or `none`.
        size: target (width, height), or one int for a square; unused by `none`.
        fill: background colour of the padding for `pad`.
        resample: PIL resampling filter.

    Raises:
        ConfigError: unknown policy or invalid size.
        DataError: the image cannot be decoded.
    """
    policy = check_policy(policy)
    target = None if policy == "none" else _check_size(size)
    pil = image.load() if isinstance(image, Image) else image.convert("RGB")
    if target is None:
        return pil
    width, height = target
    if policy == "squash":
        return pil.resize((width, height), resample=resample)
    scale = min(width / pil.width, height / pil.height)
    inner = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
    resized = pil.resize(inner, resample=resample)
    canvas = PIL.Image.new("RGB", (width, height), fill)
    canvas.paste(resized, ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return canvas
