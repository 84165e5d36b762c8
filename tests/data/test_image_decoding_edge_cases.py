"""Images that used to decode wrongly or slip through: 16-bit, symlinks out of the root, bombs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from vlmlab.data.images import Image, resolve_under_root
from vlmlab.errors import DataError


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = tmp_path / "ramp16.png"
    PIL.Image.fromarray(ramp).save(path)            # a real 16-bit grey PNG
    assert PIL.Image.open(path).mode.startswith("I")
    rgb = np.asarray(Image(path=path).load())
    assert rgb.shape == (64, 64, 3)
    expected = np.rint(ramp.astype(np.float64) * 255 / 65535)   # 8-bit of the same ramp
    assert np.abs(rgb[..., 0].astype(np.float64) - expected).max() <= 1
    assert abs(rgb.mean() - 127.5) < 1.0            # was 254.5: almost pure white


def test_8_bit_images_unchanged(tmp_path: Path) -> None:
    arr = (np.arange(48 * 3).reshape(4, 12, 3) % 256).astype(np.uint8)
    PIL.Image.fromarray(arr, "RGB").save(tmp_path / "a.png")
    assert np.array_equal(np.asarray(Image(path=tmp_path / "a.png").load()), arr)


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.png"
    PIL.Image.new("RGB", (4, 4)).save(outside)
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.png").symlink_to(outside)
    with pytest.raises(DataError, match=r"data.csv:3: image path 'link.png' is a symlink to .*secret.png, outside the data root"):
        resolve_under_root(root, "link.png", where="data.csv:3")
    # a root that is itself a symlink, and a symlink inside the root, still work
    PIL.Image.new("RGB", (4, 4)).save(root / "real.png")
    (root / "alias.png").symlink_to(root / "real.png")
    os.symlink(root, tmp_path / "root-link")
    assert resolve_under_root(tmp_path / "root-link", "alias.png") == tmp_path / "root-link" / "alias.png"


def test_decompression_bomb_warning_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    PIL.Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 64 * 64 - 1)  # between 1x and 2x: PIL only warns
    with pytest.raises(DataError, match="big.png: image too large to decode safely"):
        Image(path=tmp_path / "big.png").load()
