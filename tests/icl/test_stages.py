"""The ICL stages end to end on toy data with the toy backend: outputs, formats, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from icl_toy import data_config
from vlmlab.errors import DataError, VlmlabError
from vlmlab.icl.configs import BackendConfig, BeamConfig, CandidatesConfig, EvalConfig, IndexConfig, RLDataConfig
from vlmlab.icl.eval_stage import run_eval
from vlmlab.icl.data import load_split
from vlmlab.icl.infoscore import answer_probabilities
from vlmlab.icl.prompts import score_request
from vlmlab.icl.rl_data import relevance
from vlmlab.icl.stages import read_jsonl, run_beam, run_candidates, run_index, run_rl_data, upstream_config

SCORER = BackendConfig(ref="unused-in-tests")


def test_index_writes_normalised_embeddings_in_support_order(index_run: Path, toy_support) -> None:
    emb = index_run / "embeddings"
    ids = json.loads((emb / "ids.json").read_text())
    qs = [str(q["question_id"]) for q in json.loads(Path(toy_support["questions"]).read_text())["questions"]]
    assert ids == qs
    for name in ("text", "image", "demo_text"):
        arr = np.load(emb / f"{name}.npy")
        assert arr.dtype == np.float32 and arr.shape[0] == len(ids)
        assert np.allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)


def test_index_embeds_demonstrations_with_their_answers(index_run: Path, toy_support) -> None:
    """`demo_text.npy` row i embeds "question answer" of support item i (how a prompt shows it)."""
    from vlmlab.embed import build_embedder
    from vlmlab.icl.data import load_split, target_answer

    records = load_split(data_config(toy_support)).records
    demo = np.load(index_run / "embeddings" / "demo_text.npy")
    expected = build_embedder("bag-of-words").embed([f"{r.question} {target_answer(r)}" for r in records])
    assert np.allclose(demo, expected, atol=1e-6)
    assert not np.allclose(demo, np.load(index_run / "embeddings" / "text.npy"))


def test_candidates_pools_exclude_anchor_and_are_distinct(candidates_run: Path) -> None:
    rows = read_jsonl(candidates_run / "candidates.jsonl")
    assert len(rows) == 10
    for r in rows:
        assert len(r["pool"]) == 8 and len(set(r["pool"])) == 8
        assert r["id"] not in r["pool"]


def test_beam_rl_eval_pipeline(tmp_path: Path, candidates_run: Path, index_run: Path, toy_backend, toy_test) -> None:
    beam_dir = run_beam(BeamConfig(candidates=candidates_run, scorer=SCORER, beam_size=3, shots=2), tmp_path / "beam", backend=toy_backend)
    beams = read_jsonl(beam_dir / "beams.jsonl")
    cands = {r["id"]: r["pool"] for r in read_jsonl(candidates_run / "candidates.jsonl")}
    assert [b["id"] for b in beams] == list(cands)
    for rec in beams:
        assert rec["pool"] == cands[rec["id"]]
        assert len(rec["beams"]) == 3
        for b in rec["beams"]:
            assert [rec["pool"][p] for p in b["positions"]] == b["ids"]
            assert len(b["step_scores"]) == 2
            assert b["marginal"] == pytest.approx(b["step_scores"][-1])
            assert b["cumulative"] == pytest.approx(sum(b["step_scores"]))
        marg = [b["marginal"] for b in rec["beams"]]
        assert marg == sorted(marg, reverse=True)  # upstream ranking: by the last step's marginal
    upstream = json.loads((beam_dir / "lever_lm.json").read_text())
    support_ids = json.loads((index_run / "embeddings" / "ids.json").read_text())
    assert set(upstream) == {str(support_ids.index(c)) for c in cands}  # upstream ids are support row positions

    assert all(r["score_eos"] is True and r["prompt_format"] == "chat" for r in beams)  # recorded for rl-data and checkpoints
    rl_dir = run_rl_data(RLDataConfig(beams=beam_dir, n_sampled=4, top_positives=2, top_negatives=2, min_positives=1), tmp_path / "rl", backend=toy_backend)
    support = load_split(upstream_config(index_run, IndexConfig, "index").support)
    raw = read_jsonl(rl_dir / "rl_raw.jsonl")
    assert len(raw) == len(beams)
    for rec in raw:
        sources = [c["source"] for c in rec["candidates"]]
        assert sources.count("beam") == 3 and sources.count("sampled") == 4
        seqs = [tuple(c["positions"]) for c in rec["candidates"]]
        assert len(set(seqs)) == len(seqs)
        anchor, pool = support.get(rec["id"]), support.subset(rec["pool"])
        p_x = answer_probabilities(toy_backend, [score_request("x", [], anchor, score_eos=True)])[0]
        for c in rec["candidates"]:
            assert c["vqa_correct"] == (c["vqa_acc_score"] >= 0.5)
            # every candidate has its real InfoScore and P(answer | sequence, query), scored as the beams were
            p_seq = answer_probabilities(toy_backend, [score_request("s", [pool[p] for p in c["positions"]], anchor, score_eos=True)])[0]
            assert c["vqa_gt_prob"] == pytest.approx(p_seq)
            assert c["beam_score"] == pytest.approx(p_seq - p_x, abs=1e-9)
            assert c["vqa_rel_score"] == relevance(c["answer"], list(anchor.answers))
    balanced = read_jsonl(rl_dir / "rl.jsonl")
    for rec in balanced:
        pos = [c for c in rec["candidates"] if c["vqa_correct"]]
        assert 1 <= len(pos) <= 2 and len(rec["candidates"]) - len(pos) <= 2
    metrics = json.loads((rl_dir / "metrics.json").read_text())
    assert metrics["before"]["candidates"] == 7 * len(raw)
    assert "before" in (rl_dir / "report.md").read_text()

    ecfg = EvalConfig(index=index_run, test=data_config(toy_test), model=SCORER, methods=["zero-shot", "random", "text", "image"],
                      shots=[1, 2], sizes=[6, "full"], n_boot=50)
    eval_dir = run_eval(ecfg, tmp_path / "eval", backend=toy_backend)
    m = json.loads((eval_dir / "metrics.json").read_text())
    cells = {(c["size"], c["shots"], c["method"]): c for c in m["cells"]}
    assert ("full (18)", 0, "zero-shot") in cells and ("6", 2, "text") in cells
    for c in m["cells"]:
        assert c["ci_low"] <= c["accuracy"] <= c["ci_high"]
    # toy model: two explicit of three questions are right zero-shot
    assert cells[("full (18)", 0, "zero-shot")]["accuracy"] == pytest.approx(2 / 3)
    subsets = json.loads((eval_dir / "subsets.json").read_text())
    assert subsets["full (18)"][:6] == subsets["6"]  # nested seeded subsets
    report = (eval_dir / "report.md").read_text()
    assert "| size | shots | zero-shot | random | text | image |" in report
    assert "model: `unused-in-tests` (hf, auto)" in report  # the model line carries the block's precision


def test_resume_skips_done_items(tmp_path: Path, candidates_run: Path, toy_backend) -> None:
    cfg = BeamConfig(candidates=candidates_run, scorer=SCORER, beam_size=2, shots=2)
    run_beam(cfg, tmp_path / "beam", backend=toy_backend)
    first = (tmp_path / "beam" / "beams.jsonl").read_text()
    before = toy_backend.scored
    run_beam(cfg, tmp_path / "beam", backend=toy_backend)
    assert toy_backend.scored == before
    assert (tmp_path / "beam" / "beams.jsonl").read_text() == first


def test_shots_larger_than_pool_is_an_error(tmp_path: Path, candidates_run: Path, toy_backend) -> None:
    with pytest.raises(DataError, match="shots=9 is larger than the candidate pool"):
        run_beam(BeamConfig(candidates=candidates_run, scorer=SCORER, shots=9), tmp_path / "beam", backend=toy_backend)
    assert toy_backend.scored == 0


def test_k_larger_than_support_is_an_error(tmp_path: Path, index_run: Path) -> None:
    with pytest.raises(DataError, match="pool size K=100"):
        run_candidates(CandidatesConfig(index=index_run, k=100, anchors=5), tmp_path / "c")


def test_missing_image_is_an_error_naming_it(tmp_path: Path, toy_support) -> None:
    (Path(toy_support["images"]) / "s_3.png").unlink()
    with pytest.raises(DataError, match="s_3.png"):
        run_index(IndexConfig(support=data_config(toy_support), text_embedder="bag-of-words"), tmp_path / "index")


def test_question_without_annotation_is_an_error(tmp_path: Path, toy_support) -> None:
    ann = json.loads(Path(toy_support["annotations"]).read_text())
    ann["annotations"] = ann["annotations"][1:]
    Path(toy_support["annotations"]).write_text(json.dumps(ann))
    with pytest.raises(DataError, match="10"):
        run_index(IndexConfig(support=data_config(toy_support), text_embedder="bag-of-words"), tmp_path / "index")


def test_beam_anchor_id_missing_from_support_is_an_error(tmp_path: Path, candidates_run: Path, toy_backend) -> None:
    path = candidates_run / "candidates.jsonl"
    rows = read_jsonl(path)
    rows[0]["pool"][0] = "999999"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match="999999"):
        run_beam(BeamConfig(candidates=candidates_run, scorer=SCORER), tmp_path / "beam", backend=toy_backend)


def test_eval_test_size_larger_than_split_is_an_error(tmp_path: Path, index_run: Path, toy_test, toy_backend) -> None:
    cfg = EvalConfig(index=index_run, test=data_config(toy_test), model=SCORER, sizes=[500])
    with pytest.raises(DataError, match="test size 500"):
        run_eval(cfg, tmp_path / "eval", backend=toy_backend)


def test_config_typo_names_the_key(tmp_path: Path) -> None:
    from vlmlab.config import load_config

    path = tmp_path / "beam.yaml"
    path.write_text("candidates: x\nscorer: {ref: m}\nbeam_sise: 3\n")
    with pytest.raises(VlmlabError, match="beam_size"):
        load_config(path, BeamConfig)
