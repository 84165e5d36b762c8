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


def test_mine_from_earlier_rl_data_keeps_what_this_scorer_answers_right(tmp_path, candidates_run, index_run, toy_support, toy_backend) -> None:
    """Upstream `mine_positive_samples.py`: candidates of earlier RL data, for every anchor of this run, answered
    again; the right ones join as `mined`. The toy scorer answers right exactly when the demonstration nearest
    the query asks the query's attribute (the annotations' question_type), which gives the expected set."""
    import json
    import shutil

    from vlmlab.errors import DataError
    from vlmlab.icl.configs import BackendConfig, BeamConfig, RLDataConfig
    from vlmlab.icl.stages import read_jsonl, run_beam, run_rl_data, write_jsonl

    attr = {str(a["question_id"]): a["question_type"] for a in json.loads(toy_support["annotations"].read_text())["annotations"]}
    beam = run_beam(BeamConfig(candidates=candidates_run, scorer=BackendConfig(ref="x"), beam_size=2, shots=2), tmp_path / "beam", backend=toy_backend)
    earlier = run_rl_data(RLDataConfig(beams=beam, n_sampled=6, min_positives=0, seed=3), tmp_path / "earlier", backend=toy_backend)
    # an earlier file also holds a candidate outside this run's pools (another sampler made it): it is skipped
    shutil.copytree(earlier, tmp_path / "other", ignore=shutil.ignore_patterns("rl.jsonl"))
    raw = read_jsonl(tmp_path / "other" / "rl_raw.jsonl")
    outside = [q for q in attr if q not in raw[0]["pool"] and q != raw[0]["id"]][:2]
    raw[0]["candidates"].append({"ids": outside, "positions": [0, 1]})
    write_jsonl(tmp_path / "other" / "rl_raw.jsonl", raw)
    out = run_rl_data(RLDataConfig(beams=beam, sources=["beams"], mine_from=[tmp_path / "other"], min_positives=0), tmp_path / "rl",
                      backend=toy_backend)
    beams = {r["id"]: r for r in read_jsonl(beam / "beams.jsonl")}
    for rec in read_jsonl(out / "rl_raw.jsonl"):
        searched = [b["ids"] for b in beams[rec["id"]]["beams"]]
        offered = [c["ids"] for c in next(r for r in raw if r["id"] == rec["id"])["candidates"] if c["ids"] != outside]
        expected = [ids for ids in dict.fromkeys(map(tuple, offered)) if list(ids) not in searched and attr[ids[-1]] == attr[rec["id"]]]
        mined = [c for c in rec["candidates"] if c["source"] == "mined"]
        assert [tuple(c["ids"]) for c in mined] == expected, rec["id"]
        assert all(c["vqa_correct"] and c["vqa_gt_prob"] is not None and [rec["pool"][p] for p in c["positions"]] == c["ids"] for c in mined)
    counts = json.loads((out / "metrics.json").read_text())["mined"]
    assert counts["outside_pool"] == 1 and counts["offered"] == sum(len(r["candidates"]) for r in raw)
    assert counts["kept_positives"] == sum(c["source"] == "mined" for r in read_jsonl(out / "rl_raw.jsonl") for c in r["candidates"]) > 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no rl_raw.jsonl or rl.jsonl"):
        run_rl_data(RLDataConfig(beams=beam, mine_from=[tmp_path / "empty"]), tmp_path / "rl2", backend=toy_backend)
    assert not (tmp_path / "rl2").exists()
