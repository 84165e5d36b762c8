"""compare_runs on two toy eval runs; Lever-LM export/import round trip; bootstrap helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from icl_toy import data_config
from vlmlab.errors import DataError, RunError
from vlmlab.icl.compare import compare_runs, paired_bootstrap_p
from vlmlab.icl.configs import BackendConfig, EvalConfig
from vlmlab.icl.eval_stage import run_eval
from vlmlab.icl.evaluate import bootstrap_ci, nested_subset, random_demos


def test_compare_two_eval_runs(tmp_path: Path, index_run: Path, toy_test, toy_backend) -> None:
    base = dict(index=index_run, test=data_config(toy_test), model=BackendConfig(ref="x"), shots=[1, 2], sizes=[6, "full"], n_boot=50)
    a = run_eval(EvalConfig(methods=["zero-shot", "random"], **base), tmp_path / "a", backend=toy_backend)
    b = run_eval(EvalConfig(methods=["zero-shot", "random"], seed=1, **base), tmp_path / "b", backend=toy_backend)
    with pytest.raises(RunError, match="different questions .*pass --allow-different-subsets"):
        compare_runs([a, b], n_boot=200)  # the eval seed also draws the size-6 subset: B's 6 questions are not A's
    t = compare_runs([a, b], n_boot=200, allow_different_subsets=True)
    assert len(t.cells) == 2 * (1 + 2)  # sizes x (zero-shot + random at 1, 2 shots)
    ma = {(c["size"], c["shots"], c["method"]): c for c in json.loads((a / "metrics.json").read_text())["cells"]}
    mb = {(c["size"], c["shots"], c["method"]): c for c in json.loads((b / "metrics.json").read_text())["cells"]}
    for row in t.cells:
        key = (row["size"], row["shots"], row["method"])
        assert row["A_acc(own)"] == pytest.approx(100 * ma[key]["accuracy"]) and row["B_acc(own)"] == pytest.approx(100 * mb[key]["accuracy"])
        if row["size"].startswith("full"):  # same questions: the shared-set difference is the difference of the runs
            assert row["n"] == ma[key]["n"] and row["B-A"] == pytest.approx(100 * (mb[key]["accuracy"] - ma[key]["accuracy"]))
        assert row["n"] <= min(row["n_A(own)"], row["n_B(own)"]) and row["B-A"] == pytest.approx(row["B_acc"] - row["A_acc"])
        assert row["n_images"] <= row["n"] and row["verdict(B)"] in ("no difference", "within noise", "not significant", "B better", "A better", "too few units")
    cell = next(iter(ma.values()))
    assert cell["ci"]["unit"] == "images" and cell["ci"]["method"] == "percentile" and cell["ci"]["n_units"] == cell["n_images"]
    assert "95% percentile bootstrap over images, B=50" in (a / "report.md").read_text()
    overall = next(s for s in t.summary if s["scope"] == "all")
    diffs = [r["B-A"] for r in t.cells]
    assert overall["mean_diff"] == pytest.approx(np.mean(diffs))
    assert overall["up"] + overall["down"] + overall["equal"] == len(diffs)
    assert {s["scope"] for s in t.summary} == {"all", "shots", "size"}
    paths = t.write(tmp_path / "cmp")
    assert "## Summary" in paths[0].read_text() and paths[1].read_text().startswith("size,shots,method,n,n_images")
    from vlmlab.cli import main

    for command in (["runs", "compare"], ["icl", "compare"]):  # one command, two names
        out = tmp_path / f"cmp-{command[0]}"
        with pytest.raises(SystemExit) as exit_info:
            main([*command, str(a), str(b), "--out", str(out), "--allow-different-subsets", "--n-boot", "2000"])
        assert exit_info.value.code in (0, None)
        assert (out / "compare.md").read_text() == compare_runs([a, b], allow_different_subsets=True).to_markdown()


def test_compare_needs_eval_runs(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(RunError, match="not a finished icl eval run"):
        compare_runs([tmp_path / "x", tmp_path / "x"])


def test_paired_bootstrap_p() -> None:
    a = np.zeros(200)
    assert paired_bootstrap_p(a, a) == 1.0
    assert paired_bootstrap_p(a, np.ones(200)) < 0.01
    rng = np.random.default_rng(0)
    assert paired_bootstrap_p(rng.random(200), rng.random(200)) > 0.05


def test_bootstrap_and_subsets_and_random_demos() -> None:
    lo, hi = bootstrap_ci([0.0, 1.0] * 50, n_boot=500, seed=0)
    assert lo < 0.5 < hi
    ids = [str(i) for i in range(20)]
    assert nested_subset(ids, 5, 0) == nested_subset(ids, 10, 0)[:5]
    d = random_demos(20, "q1", 3, seed=0, exclude=[4])
    assert len(set(d)) == 3 and 4 not in d and d == random_demos(20, "q1", 3, seed=0, exclude=[4])
