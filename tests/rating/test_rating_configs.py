"""Every shipped rating config validates and starts with the command that runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmlab.config import load_config
from vlmlab.rating.conditions import expand_conditions, select_conditions
from vlmlab.rating.config import RatingConfig

CONFIGS = sorted((Path(__file__).parents[2] / "configs" / "rating").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_rating_config(path: Path) -> None:
    assert path.read_text().startswith(f"# vlmlab rating run configs/rating/{path.name}")
    study = load_config(path, RatingConfig)
    assert select_conditions(expand_conditions(study), 1)


def test_faces_priorities() -> None:
    study = load_config(Path(__file__).parents[2] / "configs" / "rating" / "faces.yaml", RatingConfig)
    conditions = expand_conditions(study)
    assert [c.name for c in select_conditions(conditions, 1)] == ["gemma3-4b__bf16/context-carry__t0__r0"]
    # 2 variants x 3 modes x (1 at t=0 + 3 repeats at 0.7 + 3 at 1.0)
    assert len(conditions) == 2 * 3 * 7
