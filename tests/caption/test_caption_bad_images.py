"""A bad image stops `caption run` at data preparation, before any model loads or trains."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vlmlab.cli import main
from vlmlab.toyworld import generate

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("damage", ["empty", "truncated", "text"])
def test_bad_image_is_caught_before_any_model(damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    generate("panorama", tmp_path / "data/toy/panorama", n=20, seed=0)
    shutil.copy(REPO / "configs/caption/toy.yaml", tmp_path / "toy.yaml")
    test_rows = (tmp_path / "data/toy/panorama/test.tsv").read_text().splitlines()
    image = tmp_path / "data/toy/panorama" / test_rows[1].split("\t")[0]
    raw = image.read_bytes()
    image.write_bytes({"empty": b"", "truncated": raw[: len(raw) // 3], "text": b"not an image"}[damage])

    import vlmlab.models.registry as registry

    def no_model(*a, **k):
        raise AssertionError("a model was loaded before the images were checked")

    monkeypatch.setattr(registry, "load_backend", no_model)
    with pytest.raises(SystemExit) as exc:
        main(["caption", "run", "toy.yaml"])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # before it: plain progress lines, if any
    assert exc.value.code == 2
    assert err.startswith("error: data/toy/panorama/test.tsv:2") and image.name in err
    assert {"empty": "0 bytes", "truncated": "corrupt or truncated", "text": "not an image file"}[damage] in err
    study = tmp_path / "runs/caption/toy-panorama"
    assert not study.exists() or [p.name for p in study.iterdir()] in ([], ["_shared_data"])
    assert not (study / "_shared_data" / "train.csv").exists()
