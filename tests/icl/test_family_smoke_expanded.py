"""The whole ICL chain on tiny random LLaVA, Idefics3, Gemma3 and InternVL models (see `family_smoke`): each
image placeholder is expanded into a fixed number of image tokens; and every multi-image family has a smoke test."""

from __future__ import annotations

from pathlib import Path

import pytest

from family_smoke import FAMILY_GROUPS, run_family_chain


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILY_GROUPS["expanded"])
def test_icl_chain_on_tiny_model(family: str, tmp_path: Path, tiny_root: Path) -> None:
    run_family_chain(family, tmp_path, tiny_root)


def test_every_multi_image_family_has_a_smoke_test(tiny_root: Path) -> None:
    from vlmlab.models.hf import open_checkpoint
    from vlmlab.models.tiny import tiny_model_path

    covered = [f for group in FAMILY_GROUPS.values() for f in group]
    # the families the ICL study names; the conformance matrix (tests/models) covers every tiny family
    icl_families = ["qwen2-vl", "qwen2.5-vl", "llava", "idefics3", "gemma3", "internvl", "blip2"]
    multi_image = [f for f in icl_families if open_checkpoint(tiny_model_path(f, tiny_root))[1].max_images is None]
    assert sorted(covered) == sorted(multi_image) and len(covered) == len(set(covered))
