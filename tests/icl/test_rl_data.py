"""rl-data helpers: candidate sequences, balancing, statistics."""

from __future__ import annotations

import pytest

from vlmlab.icl.rl_data import balance, balance_records, candidate_sequences, rl_statistics


def _beams():
    return {"id": "a", "pool": [str(i) for i in range(6)], "beams": [
        {"ids": ["1", "2"], "positions": [1, 2], "marginal": 0.2, "cumulative": 0.5},
        {"ids": ["3", "2"], "positions": [3, 2], "marginal": 0.1, "cumulative": 0.4}]}


def test_candidate_sequences_are_distinct_and_seeded() -> None:
    c = candidate_sequences(_beams(), n_sampled=6, shots=2, seed=0)
    assert [x["source"] for x in c] == ["beam"] * 2 + ["sampled"] * 6
    assert len({tuple(x["positions"]) for x in c}) == 8
    assert c[0]["beam_score"] == 0.5 and c[-1]["beam_score"] is None
    assert c == candidate_sequences(_beams(), n_sampled=6, shots=2, seed=0)
    assert c != candidate_sequences(_beams(), n_sampled=6, shots=2, seed=1)


def _cand(acc, beam_score, source="beam"):
    return {"positions": [0], "vqa_acc_score": acc, "vqa_correct": acc >= 0.5, "beam_score": beam_score, "source": source}


def test_balance_keeps_top_positives_and_hard_negatives() -> None:
    cands = [_cand(1.0, 0.1), _cand(0.6, 0.9), _cand(1.0, 0.5), _cand(0.0, 0.8), _cand(0.0, None, "sampled"), _cand(0.3, 0.2)]
    kept = balance(cands, top_positives=2, top_negatives=1)
    assert kept == [cands[2], cands[0], cands[3]]
    recs = [{"id": "x", "candidates": cands}, {"id": "y", "candidates": [_cand(0.0, 0.1)]}]
    out = balance_records(recs, 2, 1, min_positives=1)
    assert [r["id"] for r in out] == ["x"]
    before, after = rl_statistics(recs), rl_statistics(out)
    assert before["queries"] == 2 and after["queries"] == 1
    assert before["positives"] == 3 and after["positive_ratio"] == 2 / 3


def test_balancing_options_of_upstream() -> None:
    """`require_negatives`: only queries with both right and wrong candidates; `positive_ratio`: the
    balanced set's share of positives within [lo, hi] (upstream 40-60%)."""
    def cand(correct: bool, score: float) -> dict:
        return {"vqa_correct": correct, "vqa_acc_score": 1.0 if correct else 0.0, "beam_score": score, "status": "ok"}

    recs = [
        {"id": "all-right", "candidates": [cand(True, 0.3), cand(True, 0.2)]},
        {"id": "mixed", "candidates": [cand(True, 0.3), cand(False, 0.2), cand(False, 0.1)]},
        {"id": "mostly-right", "candidates": [cand(True, 0.3), cand(True, 0.2), cand(True, 0.1), cand(False, 0.0)]},
    ]
    assert [r["id"] for r in balance_records(recs, 5, 5, 1)] == ["all-right", "mixed", "mostly-right"]
    assert [r["id"] for r in balance_records(recs, 5, 5, 1, require_negatives=True)] == ["mixed", "mostly-right"]
    # shares after top-2 positives / top-2 negatives: all-right 1.0, mixed 1/3, mostly-right 2/3
    assert [r["id"] for r in balance_records(recs, 2, 2, 1, positive_ratio=(0.3, 0.7))] == ["mixed", "mostly-right"]
    assert [r["id"] for r in balance_records(recs, 2, 2, 1, positive_ratio=(0.4, 0.6))] == []


@pytest.mark.parametrize(("prediction", "answers", "expected"), [
    # expected values produced by running upstream Lever-Plus `compute_relevance` (generate_rl_data.py)
    ("red", ["red", "red", "dark red"], 1.0),
    ("a red ball", ["red", "ball"], 0.5714285714285714),
    ("2", ["20", "two"], 0.6666666666666666),
    ("", ["x"], 0.0),
    ("Circle!", ["circle", "square"], 1.0),
    ("blue square", ["green", "square shape"], 0.5217391304347826),
])
def test_relevance_matches_upstream(prediction: str, answers: list[str], expected: float) -> None:
    from vlmlab.icl.rl_data import relevance

    assert relevance(prediction, answers) == pytest.approx(expected, abs=1e-12)
