"""Toy-world datasets generated once per test session (small sizes; statistics tests use more)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmlab.toyworld import generate
from vlmlab.toyworld.faces import generate_faces
from vlmlab.toyworld.writers import Manifest


@pytest.fixture(scope="session")
def captions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tw") / "captions"
    generate("captions", out, n=80, seed=3)
    return out


@pytest.fixture(scope="session")
def panorama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tw") / "panorama"
    generate("panorama", out, n=60, seed=3)
    return out


@pytest.fixture(scope="session")
def vqa_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default size: the ambiguity statistics need a few thousand questions."""
    out = tmp_path_factory.mktemp("tw") / "vqa"
    generate("vqa", out, n=3000, seed=0)
    return out


@pytest.fixture(scope="session")
def faces_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough ratings to measure the planted effects to a few percentage points."""
    out = tmp_path_factory.mktemp("tw") / "faces"
    generate_faces(out, n=1500, seed=0, raters_per_image=10)
    return out


@pytest.fixture(scope="session")
def manifests(captions_dir: Path, panorama_dir: Path, vqa_dir: Path, faces_dir: Path) -> dict[str, Manifest]:
    return {kind: Manifest.load(d) for kind, d in
            (("captions", captions_dir), ("panorama", panorama_dir), ("vqa", vqa_dir), ("faces", faces_dir))}
