"""Every shipped ICL example config loads and validates; each starts with the command that runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

import vlmlab.icl
from vlmlab.config import load_config
from vlmlab.icl.configs import BeamConfig, CandidatesConfig, EvalConfig, IndexConfig, RLDataConfig, TrainStageConfig

EXAMPLES = Path(vlmlab.icl.__file__).parent / "examples"
MODELS = {"index": IndexConfig, "candidates": CandidatesConfig, "beam": BeamConfig, "rl_data": RLDataConfig, "train": TrainStageConfig, "eval": EvalConfig}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_example_config_validates(name: str) -> None:
    path = EXAMPLES / f"{name}.yaml"
    assert path.read_text().startswith(f"# vlmlab icl {name.replace('_', '-')} ")
    load_config(path, MODELS[name])


def test_every_shipped_example_is_covered() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.yaml")) == sorted(MODELS)
