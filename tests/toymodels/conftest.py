"""Toy models built once per test session, in a fixed folder other test folders can reuse.

    def test_x(toy_model):                 # factory: recipe name -> built model folder
        path = toy_model("icl-vqa")

The cache is `<pytest session basetemp>/vlmlab-home/toymodels` (see `toymodel_cache_root`), the
same folder `tests/demo/conftest.py` builds into, so in one session every toy model is built once
whichever test asks first (a full build of all four recipes costs ~9 CPU-minutes). Held-out toy data sets are generated
with seeds the recipes never train on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from vlmlab_test_support import shared_basetemp


@pytest.fixture(scope="session")
def toymodel_cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = shared_basetemp(tmp_path_factory) / "vlmlab-home" / "toymodels"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def toy_model(toymodel_cache_root: Path) -> Callable[[str], Path]:
    """Factory: `toy_model(recipe_name)` -> the model folder, built on first use in this session."""
    from vlmlab.toymodels import build_toy_model

    def get(name: str) -> Path:
        return build_toy_model(name, cache_root=toymodel_cache_root, progress=False)

    return get


def _generated(tmp_path_factory: pytest.TempPathFactory, kind: str, n: int, seed: int) -> Path:
    from vlmlab.toyworld import generate

    root = tmp_path_factory.getbasetemp() / f"toymodels-heldout-{kind}-{n}-{seed}"
    if not (root / "manifest.json").is_file():
        generate(kind, root, n=n, seed=seed)
    return root


@pytest.fixture(scope="session")
def heldout_vqa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy VQA data set (train = support set, test = queries) no recipe trained on."""
    return _generated(tmp_path_factory, "vqa", 900, 5)


@pytest.fixture(scope="session")
def heldout_panorama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generated(tmp_path_factory, "panorama", 200, 5)


@pytest.fixture(scope="session")
def heldout_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generated(tmp_path_factory, "faces", 200, 5)
