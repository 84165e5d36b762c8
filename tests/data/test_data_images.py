"""Images under a data root, bad image files, and resize policies."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from vlmlab.data.images import Image, image_under_root, resolve_under_root
from vlmlab.data.resize import prepare_image
from vlmlab.errors import ConfigError, DataError


def test_paths_inside_the_root_resolve(tmp_path: Path) -> None:
    assert resolve_under_root(tmp_path, "a/b.png") == tmp_path / "a" / "b.png"
    assert resolve_under_root(tmp_path, "a/../b.png") == tmp_path / "b.png"
    assert resolve_under_root(tmp_path, str(tmp_path / "c.png")) == tmp_path / "c.png"
    assert resolve_under_root(Path("rel/root"), "x.png") == Path("rel/root/x.png")


@pytest.mark.parametrize("name", ["../x.png", "a/../../x.png", "/etc/passwd"])
def test_paths_escaping_the_root_are_errors(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match=r"^data.csv:7: image path .* is outside the data root"):
        resolve_under_root(tmp_path / "root", name, "data.csv:7")


def test_sibling_folder_with_common_prefix_is_outside(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="outside the data root"):
        resolve_under_root(tmp_path / "img", str(tmp_path / "img2" / "x.png"))


def test_unicode_paths_work(tmp_path: Path, png) -> None:
    path = png(tmp_path / "全景 café" / "ünïcode 画像.png", size=(5, 3))
    image = image_under_root(tmp_path, "全景 café/ünïcode 画像.png")
    assert image.path == path
    assert image.load().size == (5, 3)


def test_bad_image_files_name_the_file(tmp_path: Path, png) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all", encoding="utf-8")
    good = png(tmp_path / "good.png", size=(64, 64))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    cases = [
        (empty, "empty.jpg: image file is empty (0 bytes)"),
        (text, "notes.jpg: not an image file (unrecognised format)"),
        (truncated, "truncated.png: corrupt or truncated image"),
        (tmp_path / "missing.png", "missing.png: image file not found"),
        (tmp_path, "is a directory"),
    ]
    for path, expected in cases:
        with pytest.raises(DataError) as info:
            Image(path=path).load()
        assert expected in str(info.value)
        assert "\n" not in str(info.value)


def test_same_bytes_same_hash(tmp_path: Path, png) -> None:
    a = png(tmp_path / "a.png")
    b = tmp_path / "b.png"
    b.write_bytes(a.read_bytes())
    assert Image(path=a) == Image(path=b) == Image(data=a.read_bytes())


def test_squash_ignores_aspect(tmp_path: Path) -> None:
    pil = PIL.Image.new("RGB", (40, 10), (255, 0, 0))
    out = prepare_image(pil, "squash", (16, 16))
    assert out.size == (16, 16)
    assert np.asarray(out)[8, 8].tolist() == [255, 0, 0]  # no padding anywhere


def test_pad_keeps_aspect_and_centres(tmp_path: Path) -> None:
    image = Image.from_pil(PIL.Image.new("RGB", (40, 20), (255, 255, 255)))
    out = prepare_image(image, "pad", (32, 32), fill=(0, 0, 0))
    pixels = np.asarray(out)
    assert out.size == (32, 32)
    rows = np.where(pixels[:, 16].sum(axis=1) > 0)[0]
    assert (rows.min(), rows.max()) == (8, 23)  # 32x16 content centred vertically
    assert pixels[0, 0].tolist() == [0, 0, 0] and pixels[16, 0].tolist() == [255, 255, 255]


def test_none_returns_rgb_unchanged() -> None:
    gray = PIL.Image.new("L", (7, 5), 128)
    out = prepare_image(gray, "none")
    assert out.mode == "RGB" and out.size == (7, 5)


def test_pad_of_a_tall_image_and_int_size() -> None:
    out = prepare_image(PIL.Image.new("RGB", (10, 100), (9, 9, 9)), "pad", 50)
    assert out.size == (50, 50)
    cols = np.where(np.asarray(out)[25].sum(axis=1) > 0)[0]
    assert (cols.min(), cols.max()) == (22, 26)


def test_bad_policy_and_size() -> None:
    pil = PIL.Image.new("RGB", (4, 4))
    with pytest.raises(ConfigError, match="did you mean 'squash'"):
        prepare_image(pil, "sqush", (4, 4))
    with pytest.raises(ConfigError, match="needs a size"):
        prepare_image(pil, "pad")
    with pytest.raises(ConfigError, match="positive integers"):
        prepare_image(pil, "squash", (0, 4))


def test_prepare_image_reports_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(DataError, match="bad.png"):
        prepare_image(Image(path=bad), "squash", (4, 4))


def test_from_pil_round_trip() -> None:
    pil = PIL.Image.new("RGB", (3, 2), (1, 2, 3))
    image = Image.from_pil(pil)
    assert np.array_equal(np.asarray(image.load()), np.asarray(pil))
    assert PIL.Image.open(io.BytesIO(image.data or b"")).format == "PNG"
