"""Images as values.

An `Image` is a path or bytes plus a sha256 of its content, computed once. Everything cached about
an image (decoded pixels, vision features, embeddings) is keyed by that hash, so two files with the
same bytes share a cache entry and a changed file never hits a stale one. Decoding is lazy: readers
can build thousands of `Image`s without touching pixels.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image

from vlmlab.errors import DataError


@dataclass(frozen=True, eq=False)
class Image:
    """An image by path or by bytes; `sha256` identifies its content."""

    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)
    _sha256: list[str] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("Image needs exactly one of path= or data=")
        if self.path is not None and not isinstance(self.path, Path):
            object.__setattr__(self, "path", Path(self.path))  # accept str paths from notebooks

    @classmethod
    def from_pil(cls, image: PIL.Image.Image, format: str = "PNG") -> "Image":
        """Encode a PIL image losslessly so that its hash is stable."""
        buf = io.BytesIO()
        image.save(buf, format=format)
        return cls(data=buf.getvalue())

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            raise DataError(f"{self.path}: image file not found; check the path or the data root") from None
        except IsADirectoryError:
            raise DataError(f"{self.path}: is a directory, not an image file") from None
        except PermissionError:
            raise DataError(f"{self.path}: permission denied reading the image") from None

    @property
    def sha256(self) -> str:
        """Content hash, computed on first use and remembered."""
        if not self._sha256:
            self._sha256.append(hashlib.sha256(self.read_bytes()).hexdigest())
        return self._sha256[0]

    @property
    def name(self) -> str:
        """A human-readable name for messages and reports."""
        return str(self.path) if self.path is not None else f"<bytes sha256={self.sha256[:12]}>"

    def load(self) -> PIL.Image.Image:
        """Decode to an RGB PIL image.

        Raises:
            DataError: naming the image when the file is missing, empty, not an image at all
                (e.g. a text file renamed .jpg) or a corrupt/truncated image.
        """
        raw = self.read_bytes()
        if not raw:
            raise DataError(f"{self.name}: image file is empty (0 bytes); replace or remove it")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
                with PIL.Image.open(io.BytesIO(raw)) as im:
                    im.load()
                    return to_rgb(im)
        except PIL.Image.DecompressionBombWarning as exc:
            raise DataError(f"{self.name}: image too large to decode safely ({exc}); downscale it") from None
        except PIL.UnidentifiedImageError:
            if _has_image_signature(raw):
                raise DataError(f"{self.name}: corrupt or truncated image (header unreadable); replace or remove it") from None
            raise DataError(f"{self.name}: not an image file (unrecognised format); replace or remove it") from None
        except PIL.Image.DecompressionBombError as exc:
            raise DataError(f"{self.name}: image too large to decode safely ({exc}); downscale it") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"{self.name}: corrupt or truncated image ({type(exc).__name__}: {exc}); replace or remove it") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Image) and self.sha256 == other.sha256

    def __hash__(self) -> int:
        return hash(self.sha256)


_HIGH_BIT_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535}


def to_rgb(im: PIL.Image.Image) -> PIL.Image.Image:
    """RGB with 16-bit and 32-bit integer images scaled to 0-255 (PIL's `convert("RGB")` clips
    them instead: a 16-bit PNG of mean 32767 came out almost pure white, mean 254.5).

    A 32-bit `I` image (how Pillow may open a 16-bit grey PNG) is taken as 16-bit when its
    values fit, else scaled by its own maximum.
    """
    if im.mode in _HIGH_BIT_MODES or im.mode == "I":
        arr = np.asarray(im, dtype=np.int64)
        top = _HIGH_BIT_MODES.get(im.mode) or (65535 if arr.size == 0 or arr.max() <= 65535 else int(arr.max()))
        grey = np.clip(np.rint(arr.astype(np.float64) * 255.0 / top), 0, 255).astype(np.uint8)
        return PIL.Image.fromarray(grey, mode="L").convert("RGB")
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        top = 1.0 if arr.size == 0 or arr.max() <= 1.0 else 255.0
        grey = np.clip(np.rint(arr * 255.0 / top), 0, 255).astype(np.uint8)
        return PIL.Image.fromarray(grey, mode="L").convert("RGB")
    return im.convert("RGB")


_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def _has_image_signature(raw: bytes) -> bool:
    """True when the bytes start like a known image format (so a failed decode means corruption)."""
    return raw.startswith(_SIGNATURES) or (raw[:4] == b"RIFF" and raw[8:12] == b"WEBP")


SUPPORTED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def resolve_under_root(root: Path | str, name: str | Path, where: str = "") -> Path:
    """The path of image `name` under the data root `root`, refusing paths that leave the root.

    Relative names are joined to `root`; absolute names must already lie inside it. The check is
    on resolved paths (`..` collapsed and symlinks followed, for the root too), so a symlink
    inside the root that points out of it is refused like `../` (a root that is itself a symlink
    works). Nothing is read: missing files surface on `load()`.

    Args:
        root: the data root (the `--images` folder).
        name: the file name or relative path from the data file.
        where: `file:line` of the row it came from, prefixed to error messages.

    Raises:
        DataError: an empty name, or a path that escapes the root via `..`, a symlink, or is
            absolute elsewhere.
    """
    prefix = f"{where}: " if where else ""
    text = os.fspath(name)
    if not text.strip():
        raise DataError(f"{prefix}empty image path; fill in the image column")
    root_text = os.fspath(root)
    joined = text if os.path.isabs(text) else os.path.join(root_text, text)
    root_abs = os.path.abspath(root_text)
    target = os.path.abspath(joined)  # abspath also normalises `..`
    if target != root_abs and not target.startswith(root_abs.rstrip(os.sep) + os.sep):
        raise DataError(
            f"{prefix}image path {text!r} is outside the data root {root}; "
            f"move the image under the root or pass a root that contains it"
        )
    real_root = os.path.realpath(root_text)
    real_target = os.path.realpath(joined)
    if real_target != real_root and not real_target.startswith(real_root.rstrip(os.sep) + os.sep):
        raise DataError(
            f"{prefix}image path {text!r} is a symlink to {real_target}, outside the data root {root}; "
            f"copy the image under the root or pass a root that contains its target"
        )
    return Path(os.path.normpath(joined))


def image_under_root(root: Path | str, name: str | Path, where: str = "") -> Image:
    """`Image(path=resolve_under_root(root, name, where))`."""
    return Image(path=resolve_under_root(root, name, where))
