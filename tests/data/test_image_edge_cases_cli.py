"""Images that used to slip through, through the real CLI: a decompression bomb, a 16-bit PNG and a
symlink out of the data root (`data check` and `caption run` data preparation).

The decoding itself is unit-tested in test_image_decoding_edge_cases.py; here the whole command
must give one line, exit 2 and no output file, or (16-bit) the pixels the model is shown.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from cli_support import decompression_bomb, error_line, run_cli
from vlmlab.toyworld import generate


def grey_ramp_16bit(path: Path, width: int = 128, height: int = 64) -> None:
    """A 16-bit grey PNG, a left-to-right ramp 0..65535: mean 127.5 once scaled to 8 bits."""
    ramp = np.tile(np.linspace(0, 65535, width), (height, 1)).astype(np.uint16)
    PIL.Image.fromarray(ramp).save(path)
    with PIL.Image.open(path) as im:
        assert im.mode.startswith("I")  # really 16-bit on disk


@pytest.fixture
def pano(tmp_path: Path) -> Path:
    root = tmp_path / "data/toy/panorama"
    generate("panorama", root, n=8, seed=0)
    return root


def _test_image(root: Path, row: int = 1) -> tuple[Path, int]:
    """The image of test.tsv's data row `row` and its line number in the file."""
    lines = (root / "test.tsv").read_text().splitlines()
    return root / lines[row].split("\t")[0], row + 1


def test_decompression_bomb_in_data_check(pano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image, line = _test_image(pano)
    image.write_bytes(decompression_bomb())
    out = tmp_path / "records.jsonl"
    code, stdout, err = run_cli(["data", "check", "quic360", str(pano / "test.tsv"), "--check-images", "--out", str(out)], capsys)
    message = error_line(err)
    assert code == 2 and stdout == ""
    # quic360 records are image-query pairs, so the source lists the pair's lines: test.tsv:2,3,4
    assert message.startswith(f"error: {pano / 'test.tsv'}:{line},") and f": {image}: image too large to decode safely" in message
    assert "400000000 pixels" in message and "downscale it" in message
    assert not out.exists() and not list(tmp_path.glob(".records.jsonl*"))


def test_symlink_out_of_the_data_root_is_refused(pano: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    image, line = _test_image(pano)
    outside = tmp_path / "private" / "photo.png"
    outside.parent.mkdir()
    shutil.copy(image, outside)
    image.unlink()
    image.symlink_to(outside)  # a readable, valid image: only where it lives is wrong
    rel = image.relative_to(pano).as_posix()
    out = tmp_path / "records.jsonl"
    code, stdout, err = run_cli(["data", "check", "quic360", str(pano / "test.tsv"), "--out", str(out)], capsys)  # no --check-images
    assert code == 2 and stdout == ""
    assert error_line(err) == (f"error: {pano / 'test.tsv'}:{line}: image path {rel!r} is a symlink to {outside}, outside the data "
                               f"root {pano}; copy the image under the root or pass a root that contains its target")
    assert not out.exists()
    # a caption study over the same data stops at data preparation with the same line, writing nothing
    monkeypatch.chdir(tmp_path)
    shutil.copy(Path(__file__).resolve().parents[2] / "configs/caption/toy.yaml", tmp_path / "toy.yaml")
    code, _, err = run_cli(["caption", "run", "toy.yaml"], capsys)
    assert code == 2
    assert error_line(err).startswith(f"error: data/toy/panorama/test.tsv:{line}: image path {rel!r} is a symlink to {outside}")
    assert not (tmp_path / "runs").exists()
    # the same link pointing inside the root is fine
    image.unlink()
    other = next(p for p in sorted(pano.glob("images/*/*.png")) if p != image)
    image.symlink_to(other)
    assert run_cli(["data", "check", "quic360", str(pano / "test.tsv"), "--check-images"], capsys)[0] == 0


CAPTION_ONE_PAIR = """\
name: grey16
out_dir: runs/caption
data: {{test: data/toy/panorama/test.tsv, max_test_pairs: 1}}
models: [{{name: tiny, ref: {model}, finetune: false}}]
image: {{policy: squash, size: 56}}
generation: {{max_new_tokens: 2, batch_size: 1}}
scoring: {{headline: per-row, human: false, metrics: [BLEU, ROUGE-L]}}
"""


def test_16_bit_png_reaches_the_model_scaled_not_clipped(pano: Path, tmp_path: Path, tiny_qwen2_vl: Path,
                                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    image, _ = _test_image(pano)
    grey_ramp_16bit(image)
    assert run_cli(["data", "check", "quic360", str(pano / "test.tsv"), "--check-images"], capsys)[0] == 0
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grey16.yaml").write_text(CAPTION_ONE_PAIR.format(model=tiny_qwen2_vl))
    code, _, err = run_cli(["caption", "run", "grey16.yaml"], capsys)
    assert code == 0, err
    shown = list((tmp_path / "runs/caption/grey16/_shared_data/images/squash-56").glob("*.png"))
    assert len(shown) == 1  # the prepared image the model was given
    pixels = np.asarray(PIL.Image.open(shown[0]).convert("RGB"), dtype=np.float64)
    assert pixels.shape == (56, 56, 3)
    assert abs(pixels.mean() - 127.5) < 2.0  # PIL's own convert("RGB") clips: mean 254.5, almost white
    expected = np.linspace(0, 255, 56)  # the ramp survives the squash, left to right
    assert np.abs(pixels[28, :, 0] - expected).max() < 6
