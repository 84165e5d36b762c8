"""`runs compare` on eval run folders laid out as `icl eval` writes them: shared questions, n, refusals,
'< 1/B', Holm, and the minimum detectable difference that turns ±1 point into "within noise"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vlmlab.cli import main
from vlmlab.errors import RunError
from vlmlab.icl.compare import compare_runs
from vlmlab.metrics.paired import paired_mdd


def write_eval_run(folder: Path, scores: dict[str, dict[tuple[int, str], float]], images: dict[str, str],
                   subsets: dict[str, list[str]], method: str = "selector") -> Path:
    """metrics.json, subsets.json and ledger.jsonl in the shapes run_eval writes. scores: size -> (shots, qid) -> acc."""
    folder.mkdir(parents=True)
    cells, lines, seen = [], [], set()
    for size, by_key in scores.items():
        for shots in sorted({s for s, _ in by_key}):
            accs = [by_key[(shots, q)] for q in subsets[size]]
            cells.append({"size": size, "shots": shots, "method": method, "accuracy": float(np.mean(accs)), "ci_low": 0.0,
                          "ci_high": 1.0, "n": len(accs), "errors": 0, "empty": 0})
            for q in subsets[size]:
                if (shots, q) not in seen:
                    seen.add((shots, q))
                    lines.append({"id": f"{method}|{shots}|{q}", "method": method, "shots": shots, "question_id": q,
                                  "image_id": images[q], "demos": [], "prediction": "x", "status": "ok", "error": None,
                                  "acc": by_key[(shots, q)]})
    (folder / "metrics.json").write_text(json.dumps({"cells": cells}))
    (folder / "subsets.json").write_text(json.dumps(subsets))
    (folder / "ledger.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def _issue_case(tmp_path: Path) -> tuple[Path, Path]:
    """A on 50 questions (48% right), B on 40 (55% right): +7.0 points; the 9 shared are answered alike."""
    ids_a = [f"q{i}" for i in range(50)]
    ids_b = [f"q{i}" for i in range(41, 81)]  # q41..q49 shared (5 of them right)
    images = {f"q{i}": f"img{i // 2}" for i in range(81)}
    acc_a = {(1, q): float(i % 2 and i > 1) for i, q in enumerate(ids_a)}  # 24 of 50
    acc_b = {(1, q): acc_a.get((1, q), float(i < 26)) for i, q in enumerate(ids_b)}  # 5 shared + 17 of 31 others
    a = write_eval_run(tmp_path / "a", {"50": acc_a}, images, {"50": ids_a})
    b = write_eval_run(tmp_path / "b", {"50": acc_b}, images, {"50": ids_b})
    return a, b


def test_issue_case_different_subsets(tmp_path: Path, capsys) -> None:
    a, b = _issue_case(tmp_path)
    own_a = 100 * json.loads((a / "metrics.json").read_text())["cells"][0]["accuracy"]
    own_b = 100 * json.loads((b / "metrics.json").read_text())["cells"][0]["accuracy"]
    assert (own_a, own_b) == (pytest.approx(48.0), pytest.approx(55.0))  # the old compare: "B−A +7.0, best = B, p = 1.0"
    with pytest.raises(RunError, match=r"different questions \(A 50, B 40, 9 shared\)"):
        compare_runs([a, b])
    out = tmp_path / "cmp"
    with pytest.raises(SystemExit) as exit_info:
        main(["runs", "compare", str(a), str(b), "--out", str(out)])
    assert exit_info.value.code == 2 and not out.exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--allow-different-subsets" in err
    row = compare_runs([a, b], allow_different_subsets=True).cells[0]
    assert row["n"] == 9 and row["n_images"] == 5 and row["B-A"] == 0.0 and row["p(B)"] == "1"
    assert row["verdict(B)"] == "no difference" and row["best"] == "none significant"
    assert (row["A_acc(own)"], row["B_acc(own)"], row["n_A(own)"], row["n_B(own)"]) == (pytest.approx(own_a), pytest.approx(own_b), 50, 40)


def test_runs_without_shared_questions_are_refused(tmp_path: Path, capsys) -> None:
    images = {f"q{i}": f"img{i}" for i in range(20)}
    a = write_eval_run(tmp_path / "a", {"10": {(1, f"q{i}"): 1.0 for i in range(10)}}, images, {"10": [f"q{i}" for i in range(10)]})
    b = write_eval_run(tmp_path / "b", {"10": {(1, f"q{i}"): 0.0 for i in range(10, 20)}}, images, {"10": [f"q{i}" for i in range(10, 20)]})
    for command in (["runs", "compare"], ["icl", "compare"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, str(a), str(b), "--allow-different-subsets"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "share no question (A 10 vs B 10)" in err


def _two_selectors(tmp_path: Path, gains: tuple[int, int], losses: tuple[int, int], seed: int = 0) -> tuple[Path, Path, dict]:
    """Two selectors on the same 800 questions (4 per image; sizes 100 and 800 nested) at 1 and 2 shots.
    B answers like A except on `gains` questions (A wrong, B right) and `losses` (A right, B wrong),
    given as (among the first 100, among the other 700)."""
    rng = np.random.default_rng(seed)
    ids = [f"q{i}" for i in range(800)]
    images = {q: f"img{i // 4}" for i, q in enumerate(ids)}
    subsets = {"100": ids[:100], "800": ids}
    sa, sb = {}, {}
    for shots in (1, 2):
        a = (rng.random(800) < np.repeat(rng.beta(2, 2, 200), 4)).astype(float)
        b = a.copy()
        for part, (start, stop) in enumerate(((0, 100), (100, 800))):
            pos = start + rng.permutation(stop - start)
            up, down = pos[: gains[part]], pos[gains[part] : gains[part] + losses[part]]
            a[up], b[up], a[down], b[down] = 0.0, 1.0, 1.0, 0.0
        for i, q in enumerate(ids):
            sa[(shots, q)], sb[(shots, q)] = float(a[i]), float(b[i])
    ra = write_eval_run(tmp_path / "a", {"100": sa, "800": sa}, images, subsets)
    rb = write_eval_run(tmp_path / "b", {"100": sb, "800": sb}, images, subsets)
    return ra, rb, {"images": images, "a": sa, "b": sb, "subsets": subsets}


def test_seed_style_comparison_says_within_noise_with_the_mdd(tmp_path: Path) -> None:
    a, b, data = _two_selectors(tmp_path, gains=(11, 73), losses=(10, 66))  # B disagrees with A on 20% of questions
    t = compare_runs([a, b])
    assert len(t.cells) == 4 and all(r["B-A"] == pytest.approx(1.0) for r in t.cells)  # +1 point in every cell
    for row in t.cells:
        assert row["verdict(B)"] == "within noise" and row["best"] == "none significant"
        assert row["MDD(B)"] > abs(row["B-A"]) and row["n"] == int(row["size"]) and row["n_images"] == int(row["size"]) // 4
        q = data["subsets"][row["size"]]
        x = [data["a"][(row["shots"], k)] for k in q]
        y = [data["b"][(row["shots"], k)] for k in q]
        assert row["MDD(B)"] == pytest.approx(100 * paired_mdd(x, y, clusters=[data["images"][k] for k in q])[0])
    small = next(r for r in t.cells if r["size"] == "100")
    big = next(r for r in t.cells if r["size"] == "800")
    assert small["MDD(B)"] > 2 * big["MDD(B)"] > 2 * 2.0  # 8x the questions: ~1/sqrt(8) the MDD; 800 questions still miss 2 points
    md = t.to_markdown()
    assert "within noise" in md and "Holm correction over 4 tests" in md and "percentile bootstrap over images, B=2000" in md
    none = compare_runs([a, b], correction="none")
    assert "no multiple-comparison correction" in none.to_markdown()
    assert [r["p_adj(B)"] for r in none.cells] == [r["p(B)"] for r in none.cells]


def test_a_real_difference_is_named_and_tiny_p_is_below_one_over_b(tmp_path: Path) -> None:
    a, b, _ = _two_selectors(tmp_path, gains=(30, 200), losses=(5, 40))
    t = compare_runs([a, b], n_boot=2000)
    big = next(r for r in t.cells if r["size"] == "800")
    assert big["B-A"] > 10 and big["p(B)"] == "< 1/2000" and big["p_adj(B)"] == "< 1/2000"
    assert big["verdict(B)"] == "B better" and big["best"] == "B"
    assert "| < 1/2000 |" in t.to_markdown()
    perm = compare_runs([a, b], test="permutation", n_boot=500)
    # random sign flips count the observed one: the smallest two-sided p is 2 (0 + 1) / (B + 1), never 0
    assert next(r for r in perm.cells if r["size"] == "800")["p(B)"] == f"{2 / 501:.3g}"
    by_question = compare_runs([a, b], unit="question")
    assert by_question.cells[0]["n_images"] is None and "over questions" in by_question.to_markdown()


def test_bad_options_are_one_line_errors(tmp_path: Path, capsys) -> None:
    a, b, _ = _two_selectors(tmp_path, gains=(1, 0), losses=(0, 0))
    for option in (["--unit", "pixel"], ["--test", "t-test"], ["--correction", "bonferroni"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["runs", "compare", str(a), str(b), *option])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and option[1] in err


def test_a_significant_difference_below_the_mdd_is_named_not_within_noise(tmp_path: Path) -> None:
    """+2.5 points on 800 questions, p = 0.012, MDD 2.8: the test found it (it is not noise); the MDD
    only says the test set had less than 80% power for a difference this small."""
    a, b, _ = _two_selectors(tmp_path, gains=(0, 40), losses=(0, 20))
    t = compare_runs([a, b], correction="none")
    cell = next(r for r in t.cells if r["size"] == "800" and r["shots"] == 1)
    assert cell["B-A"] == pytest.approx(2.5) and cell["p(B)"] == "0.012" and cell["MDD(B)"] > cell["B-A"]
    assert cell["verdict(B)"] == "B better" and cell["best"] == "B"
    small = next(r for r in t.cells if r["size"] == "100" and r["shots"] == 1)  # no difference planted there
    assert small["verdict(B)"] == "no difference"
    assert "also when its difference is below the MDD" in t.to_markdown()


def test_every_ci_in_the_csv_names_its_method_and_unit(tmp_path: Path) -> None:
    import csv

    a, b, _ = _two_selectors(tmp_path, gains=(3, 20), losses=(2, 15))
    paths = compare_runs([a, b], n_boot=500).write(tmp_path / "cmp")
    with paths[1].open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["CI_method(B)"] == "paired 95% percentile bootstrap over images, B=500" for r in rows)
    assert list(rows[0]).index("CI_method(B)") == list(rows[0]).index("CI(B-A)") + 1
    by_question = compare_runs([a, b], n_boot=500, unit="question").cells[0]
    assert by_question["CI_method(B)"] == "paired 95% percentile bootstrap over questions, B=500"
    assert "CI_method" not in paths[0].read_text()  # Markdown: the method is one line of "How to read"
