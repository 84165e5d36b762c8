"""Images as values.

An `Image` is a path or bytes plus a sha256 of its content, computed once. Everything cached about
an image (decoded pixels, vision features, embeddings) is keyed by that hash, so two files with the
same bytes share a cache entry and a changed file never hits a stale one. Decoding is lazy: readers
can build thousands of `Image`s without touching pixels.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

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
        """Decode to an RGB PIL image; a corrupt or non-image file is a `DataError` naming it."""
        raw = self.read_bytes()
        try:
            with PIL.Image.open(io.BytesIO(raw)) as im:
                im.load()
                return im.convert("RGB")
        except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"{self.name}: not a readable image ({type(exc).__name__}: {exc}); replace or remove it") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Image) and self.sha256 == other.sha256

    def __hash__(self) -> int:
        return hash(self.sha256)
