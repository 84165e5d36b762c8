"""Determinism, manifests, folder safety, and the CLI of `vlmlab toyworld generate`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from vlmlab.cli import main
from vlmlab.errors import ConfigError, DataError
from vlmlab.toyworld import KINDS, generate
from vlmlab.toyworld.writers import Manifest

SMALL = {"captions": 12, "panorama": 8, "vqa": 40, "faces": 12}


def _tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_bytes_and_other_seed_differs(kind: str, tmp_path: Path) -> None:
    a = generate(kind, tmp_path / "a", n=SMALL[kind], seed=7)
    b = generate(kind, tmp_path / "b", n=SMALL[kind], seed=7)
    c = generate(kind, tmp_path / "c", n=SMALL[kind], seed=8)
    assert _tree_hashes(tmp_path / "a") == _tree_hashes(tmp_path / "b")
    assert a.digest == b.digest
    assert c.digest != a.digest
    assert a.files != c.files


@pytest.mark.parametrize("kind", KINDS)
def test_manifest_lists_every_file_with_its_hash(kind: str, manifests: dict[str, Manifest]) -> None:
    manifest = manifests[kind]
    on_disk = _tree_hashes(manifest.root)
    on_disk.pop("manifest.json")
    assert on_disk == manifest.files
    assert manifest.verify() == []
    assert manifest.kind == kind


def test_regenerating_replaces_a_previous_output(tmp_path: Path) -> None:
    generate("faces", tmp_path, n=10, seed=1)
    m = generate("faces", tmp_path, n=4, seed=2)
    on_disk = _tree_hashes(tmp_path)
    on_disk.pop("manifest.json")
    assert on_disk == m.files  # no stale images from the first run
    assert Manifest.load(tmp_path).n == 4


def test_a_foreign_non_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        generate("vqa", tmp_path, n=5)
    generate("vqa", tmp_path, n=5, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_unknown_kind_and_bad_size_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'faces'"):
        generate("face", tmp_path)
    with pytest.raises(ConfigError, match="at least 1"):
        generate("vqa", tmp_path, n=0)


def test_manifest_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="manifest"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="malformed"):
        Manifest.load(tmp_path)


def test_cli_generates_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["toyworld", "generate", "captions", "--out", str(tmp_path / "c"), "--n", "6", "--seed", "4"])
    assert exit_info.value.code in (0, None)
    assert "captions:" in capsys.readouterr().out
    assert Manifest.load(tmp_path / "c").seed == 4
    assert Manifest.load(tmp_path / "c").digest == generate("captions", tmp_path / "d", n=6, seed=4).digest


def test_cli_unknown_kind_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["toyworld", "generate", "vqq", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "did you mean 'vqa'" in err and "\n" not in err


def test_cli_context_strength_reaches_the_vqa_generator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["toyworld", "generate", "vqa", "--out", str(tmp_path / "v"), "--n", "30", "--context-strength", "0.9"])
    assert exit_info.value.code in (0, None)
    expected = generate("vqa", tmp_path / "w", n=30, options={"context_strength": 0.9})
    assert Manifest.load(tmp_path / "v").digest == expected.digest != generate("vqa", tmp_path / "x", n=30).digest
    with pytest.raises(SystemExit) as exit_info:
        main(["toyworld", "generate", "faces", "--out", str(tmp_path / "f"), "--n", "30", "--context-strength", "0.9"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "valid for faces: none" in err and "\n" not in err
