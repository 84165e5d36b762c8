"""Fixtures for the ICL study: toy VQA splits (support/test), their runs, the toy backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from icl_toy import data_config, toy_backend_for, write_toy_vqa
from vlmlab.icl.configs import CandidatesConfig, IndexConfig


@pytest.fixture
def toy_support(tmp_path: Path) -> dict:
    return write_toy_vqa(tmp_path / "support", n_images=12, seed=0, name="s", duplicate_images=3)


@pytest.fixture
def toy_test(tmp_path: Path) -> dict:
    return write_toy_vqa(tmp_path / "test", n_images=6, seed=1, name="t")


@pytest.fixture
def toy_backend(toy_support, toy_test):
    backend = toy_backend_for(toy_support)
    backend.oracle.update(toy_backend_for(toy_test).oracle)
    return backend


@pytest.fixture
def index_run(tmp_path: Path, toy_support) -> Path:
    from vlmlab.icl.stages import run_index

    cfg = IndexConfig(support=data_config(toy_support), text_embedder="bag-of-words", image_embedder="pixels", cache_dir=tmp_path / "cache")
    return run_index(cfg, tmp_path / "index")


@pytest.fixture
def candidates_run(tmp_path: Path, index_run: Path) -> Path:
    from vlmlab.icl.stages import run_candidates

    return run_candidates(CandidatesConfig(index=index_run, sampler="mix", k=8, anchors=10, seed=0), tmp_path / "candidates")


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """Where tiny VLMs are built once per test session (`tiny_model_path` caches by recipe hash)."""
    return tmp_path_factory.mktemp("tiny_models")
