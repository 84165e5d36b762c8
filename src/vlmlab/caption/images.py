"""Image strategies for the caption study: one source image -> the image(s) a model is shown.

- `squash`: resize to size x size, ignoring the aspect ratio (the CORA / QuIC-360 baseline);
- `pad`: keep the aspect ratio on a (size * pad_aspect) x size canvas (2:1 keeps an ERP whole);
- `cubemap`: `views` perspective views of one panorama (see `panorama.py`), passed as several images;
- `none`: the original file; the model's processor decides.

Prepared images are written once as PNG files under a cache folder keyed by the source's content
hash and the strategy, so every model of a study (and every re-run) reads the same pixels:

    prep = ImagePreparer(Path("runs/caption/x/_shared_data/images"), policy="cubemap", size=256)
    images = prep(record.image)   # -> [Image, Image, Image, Image]
"""

from __future__ import annotations

import io
from pathlib import Path

import PIL.Image

from vlmlab.caption.panorama import cubemap_views
from vlmlab.data.images import Image
from vlmlab.data.resize import prepare_image
from vlmlab.errors import ConfigError
from vlmlab.runs import atomic_write_bytes

POLICIES = ("squash", "pad", "cubemap", "none")


def _png(image: PIL.Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


class ImagePreparer:
    """Turns a source `Image` into the list of `Image`s a model sees, caching the results as PNGs.

    Args:
        cache_dir: folder for prepared images (a subfolder per strategy is created).
        policy: squash, pad, cubemap or none.
        size: square side (squash), canvas height (pad) or view side (cubemap).
        pad_aspect: width / height of the `pad` canvas.
        views: 4 or 6 cubemap views.
        fov: cubemap field of view in degrees.
    """

    def __init__(self, cache_dir: Path, *, policy: str, size: int, pad_aspect: float = 2.0, views: int = 4,
                 fov: float = 90.0) -> None:
        if policy not in POLICIES:
            raise ConfigError(f"unknown image policy {policy!r}; choose one of {', '.join(POLICIES)}")
        self.policy, self.size, self.pad_aspect, self.views, self.fov = policy, size, pad_aspect, views, fov
        self.folder = Path(cache_dir) / self.key

    @property
    def key(self) -> str:
        """A folder-safe name of the strategy and its parameters."""
        if self.policy == "squash":
            return f"squash-{self.size}"
        if self.policy == "pad":
            return f"pad-{self.size}-a{self.pad_aspect:g}"
        if self.policy == "cubemap":
            return f"cubemap-{self.size}-v{self.views}-fov{self.fov:g}"
        return "none"

    def views_per_image(self) -> list[str]:
        """The names of the images one source becomes (["image"], or the cubemap faces)."""
        if self.policy == "cubemap":
            return list(("front", "right", "back", "left", "up", "down")[: self.views])
        return ["image"]

    def describe(self) -> dict:
        return {"policy": self.policy, "size": self.size, "pad_aspect": self.pad_aspect, "views": self.views, "fov": self.fov}

    def __call__(self, image: Image) -> list[Image]:
        """The prepared image(s) for `image` (decoded and written only the first time)."""
        if self.policy == "none":
            return [image]
        stem = image.sha256[:24]
        if self.policy == "cubemap":
            names = [f"{stem}_{face}.png" for face in self.views_per_image()]
        else:
            names = [f"{stem}.png"]
        paths = [self.folder / n for n in names]
        if not all(p.is_file() for p in paths):
            for path, pil in zip(paths, self._render(image)):
                atomic_write_bytes(path, _png(pil))
        return [Image(path=p) for p in paths]

    def _render(self, image: Image) -> list[PIL.Image.Image]:
        if self.policy == "squash":
            return [prepare_image(image, "squash", (self.size, self.size))]
        if self.policy == "pad":
            return [prepare_image(image, "pad", (round(self.size * self.pad_aspect), self.size))]
        return [view for _, view in cubemap_views(image.load(), size=self.size, views=self.views, fov=self.fov)]
