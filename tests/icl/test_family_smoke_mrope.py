"""The whole ICL chain on tiny random Qwen2-VL and Qwen2.5-VL models (see `family_smoke`): images enter the
prompt as a run of image tokens whose length follows the image grid, placed by multimodal rotary positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from family_smoke import FAMILY_GROUPS, run_family_chain


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILY_GROUPS["mrope"])
def test_icl_chain_on_tiny_model(family: str, tmp_path: Path, tiny_root: Path) -> None:
    run_family_chain(family, tmp_path, tiny_root)
