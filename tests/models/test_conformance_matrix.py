"""The conformance matrix: every tiny family x every check of `conformance_checks` (load, greedy
generate, batched == unbatched, scored span == target, score == the model's own loss, LoRA on
language-model layers only, vision-feature cache == uncached, multi-image or a clear refusal).

The table is printed at the end of the module (`pytest -s` shows it) and written to
`$VLMLAB_CONFORMANCE_TABLE` when that is set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vlmlab.errors import ModelError
from vlmlab.models.tiny import TINY_FAMILIES

from conformance_checks import CHECKS, run_all, table

ROWS: dict[str, dict[str, str]] = {}
# Families whose processor needs a module missing here (Pixtral: torchvision) are checked for the
# one-line error instead.
BUILDABLE = [f for f in TINY_FAMILIES if not TINY_FAMILIES[f].missing()]
UNBUILDABLE = [f for f in TINY_FAMILIES if TINY_FAMILIES[f].missing()]


def test_at_least_twenty_architectures() -> None:
    assert len(TINY_FAMILIES) >= 20
    assert {"idefics", "mllama", "smolvlm", "idefics2", "idefics3", "qwen2-vl", "qwen2.5-vl", "qwen3-vl", "llava", "llava-next",
            "llava-onevision", "paligemma", "gemma3", "internvl", "mistral3", "blip2"} <= set(TINY_FAMILIES)


# 26 s for all families on a lightly loaded 2-core machine (2.5 min when 9 agents share it)
@pytest.mark.parametrize("family", BUILDABLE)
def test_family_passes_every_check(family: str, tiny_model) -> None:
    results = run_all(tiny_model(family))
    ROWS[family] = results
    failed = {c: r for c, r in results.items() if not (r == "ok" or r.startswith(("n/a", "refused")))}
    assert not failed, failed
    assert set(results) == set(CHECKS)


@pytest.mark.parametrize("family", UNBUILDABLE)
def test_family_that_needs_a_missing_module_is_one_clear_line(family: str, tiny_model) -> None:
    with pytest.raises(ModelError, match=f"needs {TINY_FAMILIES[family].missing()[0]}") as exc:
        tiny_model(family)
    assert "\n" not in str(exc.value)
    ROWS[family] = {c: f"needs {', '.join(TINY_FAMILIES[family].missing())}" for c in CHECKS}


def test_print_the_matrix(capsys) -> None:
    if not ROWS:
        pytest.skip("no family ran in this process")
    text = table(ROWS)
    out = os.environ.get("VLMLAB_CONFORMANCE_TABLE")
    if out:
        Path(out).write_text(text + "\n")
    with capsys.disabled():
        print("\n" + text)
