"""The conformance matrix: every tiny family x every check of `vlmlab.testing.conformance` (load,
greedy generate, batched == unbatched, scored span == target, score == the model's own loss, LoRA
on language-model layers only, vision-feature cache == uncached, multi-image or a clear refusal).

Each family's row is attached to its test report (`user_properties`), which pytest-xdist carries
from its workers to the controller, and `tests/conftest.py` prints the table in the run's terminal
summary, where CI logs show it (`capsys.disabled()` output is lost in xdist workers). It is also
written to `$VLMLAB_CONFORMANCE_TABLE` when that is set; `benchmarks/bench_conformance.py` makes the
same table with timings.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vlmlab.errors import ModelError
from vlmlab.models.support import family_support
from vlmlab.models.tiny import TINY_FAMILIES
from vlmlab.testing.conformance import CHECKS, KNOWN_FAILURES, header, row, run_all, table

ROWS: dict[str, dict[str, str]] = {}
# Families whose processor needs a module missing here (Pixtral: torchvision) are checked for the
# one-line error instead.
BUILDABLE = [f for f in TINY_FAMILIES if not TINY_FAMILIES[f].missing()]
UNBUILDABLE = [f for f in TINY_FAMILIES if TINY_FAMILIES[f].missing()]
ORDER = list(TINY_FAMILIES)


def publish(request: pytest.FixtureRequest, family: str, results: dict[str, str]) -> None:
    """Hand this family's row to the terminal summary (see `tests/conftest.py`)."""
    ROWS[family] = results
    request.node.user_properties.append(("summary_table", {
        "title": f"conformance matrix (family x check; {len(TINY_FAMILIES)} tiny families)",
        "header": header(), "row": row(family, results), "order": ORDER.index(family),
    }))


def test_at_least_twenty_architectures() -> None:
    assert len(TINY_FAMILIES) >= 20
    assert {"idefics", "mllama", "smolvlm", "idefics2", "idefics3", "qwen2-vl", "qwen2.5-vl", "qwen3-vl", "llava", "llava-next",
            "llava-onevision", "paligemma", "gemma3", "internvl", "mistral3", "blip2"} <= set(TINY_FAMILIES)


# 26 s for all families on a lightly loaded 2-core machine (2.5 min when 9 agents share it)
@pytest.mark.parametrize("family", BUILDABLE)
def test_family_passes_every_check(family: str, tiny_model, request: pytest.FixtureRequest) -> None:
    """Every check passes; and the row `vlmlab models list` shows (the recipe built in memory) is what
    the saved checkpoint resolves to, which the checks held the behaviour to."""
    from vlmlab.models.support import checkpoint_support

    path = tiny_model(family)
    results = run_all(path)
    publish(request, family, results)
    failed = {c: r for c, r in results.items() if not (r == "ok" or r.startswith(("n/a", "refused")))}
    assert set(failed) == set(KNOWN_FAILURES.get(family, {})), failed
    assert set(results) == set(CHECKS)
    assert family_support(family) == checkpoint_support(path)


@pytest.mark.parametrize("family", UNBUILDABLE)
def test_family_that_needs_a_missing_module_is_one_clear_line(family: str, tiny_model, request: pytest.FixtureRequest) -> None:
    missing = TINY_FAMILIES[family].missing()
    publish(request, family, {c: f"needs {', '.join(missing)}" for c in CHECKS})
    with pytest.raises(ModelError, match=f"needs {missing[0]}") as exc:
        tiny_model(family)
    assert "\n" not in str(exc.value)
    assert family_support(family).needs == tuple(missing)


def test_print_the_matrix() -> None:
    """Writes the table to `$VLMLAB_CONFORMANCE_TABLE` (the terminal summary prints it; the name is
    what benchmarks/check_with_torchvision.sh selects)."""
    if not ROWS:
        pytest.skip("no family ran in this process")
    out = os.environ.get("VLMLAB_CONFORMANCE_TABLE")
    if not out:
        pytest.skip("set VLMLAB_CONFORMANCE_TABLE to write the table to a file (the terminal summary shows it)")
    Path(out).write_text(table(dict(sorted(ROWS.items(), key=lambda kv: ORDER.index(kv[0])))) + "\n")
