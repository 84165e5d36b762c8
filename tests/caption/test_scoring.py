"""Both scoring modes, empty/failed predictions, and the human leave-one-out row on real QuIC-360 text.

The full released test split is checked by `benchmarks/bench_caption.py` (measured: per-row CIDEr
0.1781, BLEU-4 0.0232 over 27,658 caption-sibling items; published ~0.17 / ~0.022).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmlab.caption.scoring import human_metrics, human_scores, leave_one_out, score_predictions
from vlmlab.data.captions import read_caption_table
from vlmlab.errors import DataError
from vlmlab.metrics.caption import score_captions

FILES = Path(__file__).parent / "files"
FAST = ["BLEU", "ROUGE-L", "CIDEr"]  # no JVM for METEOR: keeps these tests fast


def rows(statuses: dict[str, str]) -> list[dict]:
    refs = {
        "a": ["a red circle on the left", "one red circle", "a red round shape"],
        "b": ["a blue square", "a blue box on white", "one blue square on the right"],
        "c": ["a green triangle", "one green triangle", "a green triangle in the middle"],
        "d": ["a yellow star", "one yellow star", "a yellow star shape"],
    }
    preds = {"a": "a red circle", "b": "a blue square on the right", "c": "a green triangle", "d": "a yellow star"}
    return [{"id": i, "prediction": preds[i] if statuses.get(i, "ok") == "ok" else "", "references": refs[i],
             "status": statuses.get(i, "ok")} for i in refs]


def test_both_modes_equal_the_metrics_module_and_headline_is_recorded() -> None:
    data = rows({})
    out = score_predictions(data, headline="grouped", metrics=FAST)
    preds = {r["id"]: r["prediction"] for r in data}
    refs = {r["id"]: r["references"] for r in data}
    grouped = score_captions(preds, refs, mode="grouped", metrics=FAST)
    per_row = score_captions(preds, refs, mode="per-row", metrics=FAST)
    assert out["headline_mode"] == "grouped" and out["headline"]["mode"] == "grouped"
    for key in ("BLEU-4", "ROUGE-L", "CIDEr"):
        assert out["modes"]["grouped"][key] == pytest.approx(grouped.scores[key])
        assert out["modes"]["per-row"][key] == pytest.approx(per_row.scores[key])
    assert out["modes"]["grouped"]["n"] == 4 and out["modes"]["per-row"]["n"] == 12  # per-row: one item per reference
    assert out["modes"]["grouped"]["CIDEr"] != out["modes"]["per-row"]["CIDEr"]
    assert out["counts"] == {"ok": 4, "empty": 0, "error": 0} and "ok_only" not in out
    assert score_predictions(data, headline="per-row", metrics=FAST)["headline"]["mode"] == "per-row"


def test_empty_and_failed_predictions_get_no_credit_and_are_reported() -> None:
    clean = score_predictions(rows({}), metrics=FAST)
    data = rows({"b": "empty", "c": "error"})
    data[1]["prediction"] = "text a backend might have returned"  # never used: status is not ok
    out = score_predictions(data, metrics=FAST)
    assert out["counts"] == {"ok": 2, "empty": 1, "error": 1}
    for mode in ("grouped", "per-row"):
        stats = out["modes"][mode]
        assert stats["empty_predictions"] == 2 and stats["error_predictions"] == 1 and stats["not_ok_rate"] == 0.5
        assert stats["CIDEr"] < clean["modes"][mode]["CIDEr"]
    # the per-item CIDEr of the empty ones is zero, and the ok-only scores are given beside
    assert set(out["ok_only"]) == {"grouped", "per-row"} and out["ok_only"]["grouped"]["n"] == 2
    only = score_captions({"a": "a red circle", "d": "a yellow star"}, {r["id"]: r["references"] for r in data if r["id"] in "ad"},
                          mode="grouped", metrics=FAST)
    assert out["ok_only"]["grouped"]["CIDEr"] == pytest.approx(only.scores["CIDEr"])
    with pytest.raises(DataError):
        score_predictions([], metrics=FAST)


def test_leave_one_out_pairs_each_reference_with_its_siblings() -> None:
    preds, refs = leave_one_out({"p": ["x one", "x two", "x three"], "q": ["only one"], "r": ["r a", "r b"]})
    assert preds == {"p~h0": "x one", "p~h1": "x two", "p~h2": "x three", "r~h0": "r a", "r~h1": "r b"}
    assert refs["p~h1"] == ["x one", "x three"] and refs["r~h0"] == ["r b"] and "q~h0" not in refs
    with pytest.raises(DataError, match="two or more references"):
        human_scores({"q": ["only one"]}, mode="grouped", metrics=FAST)


def test_human_row_on_a_real_quic360_excerpt() -> None:
    pairs = read_caption_table(FILES / "quic360_test_excerpt.tsv")
    assert len(pairs) == 12 and all(len(p.references) == 5 for p in pairs)
    references = {p.id: p.references for p in pairs}
    per_row = human_scores(references, mode="per-row", metrics=FAST)
    grouped = human_scores(references, mode="grouped", metrics=FAST)
    assert grouped.n == 60 and per_row.n == 60 * 4  # each caption against each of its 4 siblings
    # per-row equals scoring the explicit (caption, one sibling) items
    preds, refs = {}, {}
    for pid, rs in references.items():
        for k, ref in enumerate(rs):
            for j, other in enumerate(rs):
                if j != k:
                    preds[f"{pid}/{k}/{j}"], refs[f"{pid}/{k}/{j}"] = ref, [other]
    explicit = score_captions(preds, refs, mode="grouped", metrics=FAST)
    assert per_row.scores["BLEU-4"] == pytest.approx(explicit.scores["BLEU-4"], rel=1e-9)
    assert per_row.scores["ROUGE-L"] == pytest.approx(explicit.scores["ROUGE-L"], rel=1e-9)
    # human captions of QuIC-360 agree little with each other: low scores, grouped above per-row
    assert 0 < per_row.scores["CIDEr"] < 0.6 and per_row.scores["BLEU-4"] < 0.1
    assert grouped.scores["BLEU-4"] > per_row.scores["BLEU-4"]
    metrics = human_metrics(references, headline="per-row", metrics=FAST)
    assert metrics["headline_mode"] == "per-row" and metrics["pairs"] == 12
