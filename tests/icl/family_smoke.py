"""The whole ICL chain on a tiny random model of one family (issue #6's per-family smoke test).

    result = run_family_chain("llava", tmp_path, tiny_root)   # runs every stage, asserts effects

index -> candidates -> beam -> rl-data -> train (v3 selector) -> eval (zero-shot, random, text,
selector at 1-2 shots) -> a second small eval -> `vlmlab runs compare`, on a tiny toy ambiguous-VQA set
(48 support questions, 4 anchors, K=4, beam 2, shots 2, 4 test queries, 2 new tokens). The tiny
models are random, so answers are nonsense; what is checked is that every stage really ran on a
real architecture: run folders `complete`, zero errors, beams that point into each anchor's own
pool with finite scores that do not change with batching or the vision cache, a re-scored span
that decodes to the answer with the probability the search recorded, every eval cell present
with n == test size. The families are grouped by how their processor puts an image into the prompt
(`FAMILY_GROUPS`), one test file per group: `test_family_smoke_mrope.py` (a variable number of image
tokens placed by multimodal rotary positions) and `test_family_smoke_expanded.py` (one placeholder
expanded into a fixed number of image tokens); `test_family_blip2.py` holds the one-image family.
(CI runs `-n 2 --dist loadfile`: each file stays on one worker, and the two chain files, ~25 s and ~30 s
on a quiet machine, still run side by side.)
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from icl_toy import data_config, write_toy_vqa
from vlmlab.cli import main as cli_main
from vlmlab.metrics.vqa import question_accuracy
from vlmlab.icl.configs import BackendConfig, BeamConfig, CandidatesConfig, EvalConfig, IndexConfig, RLDataConfig, TrainStageConfig
from vlmlab.icl.data import Split, load_split
from vlmlab.icl.eval_stage import run_eval
from vlmlab.icl.prompts import score_request
from vlmlab.icl.stages import load_backend, read_jsonl, run_beam, run_candidates, run_index, run_rl_data
from vlmlab.icl.train_stage import run_train
from vlmlab.models.hf_encode import encode_conversation
from vlmlab.runs import read_run_info

# By how an image enters the prompt: Qwen2-VL/2.5-VL's <|image_pad|> run whose length follows the image grid, under
# M-RoPE (3-D rotary positions); the others expand one placeholder into a fixed number of image tokens.
FAMILY_GROUPS = {"mrope": ("qwen2-vl", "qwen2.5-vl"), "expanded": ("llava", "idefics3", "gemma3", "internvl")}
ANCHORS, K, BEAM, SHOTS, TEST_SIZE, NEW_TOKENS = 4, 4, 2, 2, 4, 2
METHODS = ["zero-shot", "random", "text", "selector"]


def scorer_config(family: str, tiny_root: Path) -> BackendConfig:
    """The family's tiny model folder (built under `tiny_root` on first use), in float32."""
    from vlmlab.models.tiny import tiny_model_path

    return BackendConfig(ref=str(tiny_model_path(family, tiny_root)), dtype="float32")


def _complete(folder: Path) -> None:
    info = read_run_info(folder)
    assert info.get("status") == "complete", f"{folder.name}: run status {info.get('status')!r} ({info})"


def check_best_beams(backend, support: Split, beams: list[dict], base_probs: dict[str, float]) -> None:
    """Re-score every anchor after its best beam (one batch, outside the search).

    The prompt holds the image tokens of every demonstration and the query; the scored tokens
    decode to exactly the answer; and `P(y|beam, x)` equals what the search recorded
    (`P(y|x) + cumulative`), so the beam scores are this model's probabilities of the answer.
    """
    meta = json.loads((backend.path / "vlmlab_tiny.json").read_text())
    requests = []
    for row in beams:
        anchor = support.get(row["id"], "beams.jsonl")
        requests.append(score_request(row["id"], support.subset(row["beams"][0]["ids"]), anchor))
    enc = encode_conversation(backend.processor, requests[0].conversation, requests[0].target)
    assert enc.num_image_tokens == (SHOTS + 1) * meta["image_tokens_per_image"]
    for row, req, res in zip(beams, requests, backend.score(requests)):
        assert res.status == "ok", res.error
        decoded = backend.processor.tokenizer.decode(res.token_ids)
        # templates like "Assistant: {answer}": BPE merges the separating space into the first token
        assert decoded.lstrip() == req.target and decoded[: len(decoded) - len(decoded.lstrip())] in ("", " "), (decoded, req.target)
        assert len(res.token_logprobs) == len(res.token_ids) > 0
        assert all(math.isfinite(float(x)) and x <= 0 for x in res.token_logprobs)
    # the beam stage scores answer + end of turn (score_eos, upstream's default): the answer's tokens, then more
    eos_requests = [replace(r, score_end_of_turn=True) for r in requests]
    for row, res, eos in zip(beams, backend.score(requests), backend.score(eos_requests)):
        assert eos.token_ids[: len(res.token_ids)] == res.token_ids and len(eos.token_ids) > len(res.token_ids)
        recorded = base_probs[row["id"]] + row["beams"][0]["cumulative"]
        assert float(np.exp(eos.mean_logprob)) == pytest.approx(recorded, rel=1e-4)


def check_beams_invariant(beam_dir: Path, scorer: BackendConfig, cands: Path, out: Path) -> None:
    """The beam stage again without the vision cache, 3 requests per forward, 5 per stream chunk:
    the same base probabilities and beam scores (right padding and cached features change nothing).

    Scores are compared rank by rank rather than ids: byte-identical toy images tie exactly, and a
    tie may break either way.
    """
    plain = load_backend(scorer.model_copy(update={"options": {**scorer.options, "vision_cache": False, "batch_size": 3}}))
    other = run_beam(BeamConfig(candidates=cands, scorer=scorer, beam_size=BEAM, shots=SHOTS, batch_size=5), out, backend=plain)
    assert other is not None
    base = {r["id"]: r["base_prob"] for r in read_jsonl(beam_dir / "ledger.jsonl")}
    base_other = {r["id"]: r["base_prob"] for r in read_jsonl(other / "ledger.jsonl")}
    assert base_other == pytest.approx(base, rel=1e-4)
    for a, b in zip(read_jsonl(beam_dir / "beams.jsonl"), read_jsonl(other / "beams.jsonl"), strict=True):
        assert a["id"] == b["id"]
        np.testing.assert_allclose([x["step_scores"] for x in b["beams"]], [x["step_scores"] for x in a["beams"]], rtol=1e-3, atol=1e-8)


def run_family_chain(family: str, root: Path, tiny_root: Path) -> dict[str, float]:
    """Run every ICL stage with the tiny `family` model under `root`; assert effects; seconds per stage."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now

    support = write_toy_vqa(root / "support", n_images=16, seed=0, name="s")
    test = write_toy_vqa(root / "test", n_images=2, seed=1, name="t")
    scorer = scorer_config(family, tiny_root)
    backend = load_backend(scorer)  # what the stages would load; loaded once and passed in
    assert backend.spec.family.family == family
    lap("load")

    index = run_index(IndexConfig(support=data_config(support), text_embedder="bag-of-words", image_embedder="pixels"), root / "index")
    cands = run_candidates(CandidatesConfig(index=index, sampler="mix", k=K, anchors=ANCHORS, seed=0), root / "candidates")
    lap("index+candidates")

    beam_dir = run_beam(BeamConfig(candidates=cands, scorer=scorer, beam_size=BEAM, shots=SHOTS), root / "beam", backend=backend)
    assert beam_dir is not None
    lap("beam")
    pools = {r["id"]: r["pool"] for r in read_jsonl(cands / "candidates.jsonl")}
    beams = read_jsonl(beam_dir / "beams.jsonl")
    assert [b["id"] for b in beams] == list(pools) and len(beams) == ANCHORS
    for rec in beams:
        assert rec["pool"] == pools[rec["id"]] and rec["id"] not in rec["pool"]
        assert len(rec["beams"]) == BEAM
        for b in rec["beams"]:
            assert len(b["positions"]) == SHOTS and all(0 <= p < K for p in b["positions"])
            assert [rec["pool"][p] for p in b["positions"]] == b["ids"]
            assert len(b["step_scores"]) == SHOTS and all(math.isfinite(s) for s in b["step_scores"])
            assert math.isfinite(b["marginal"]) and math.isfinite(b["cumulative"])
    beam_metrics = json.loads((beam_dir / "metrics.json").read_text())
    assert beam_metrics["errors"] == 0 and beam_metrics["ok"] == ANCHORS
    assert 0.0 < beam_metrics["mean_base_prob"] < 1.0
    check_beams_invariant(beam_dir, scorer, cands, root / "beam-unbatched")
    support_split = load_split(data_config(support))
    if backend.spec.vision_cache:  # each image's vision features computed once, then reused
        images = {support_split.get(i, "pool").image.sha256 for r in beams for i in [r["id"], *r["pool"]]}
        assert backend.vision_cache_hits > 0 and backend.vision_cache_misses <= len(images)
    ledger = {r["id"]: r for r in read_jsonl(beam_dir / "ledger.jsonl")}
    check_best_beams(backend, support_split, beams, {i: r["base_prob"] for i, r in ledger.items()})
    lap("beam checks")

    rl_dir = run_rl_data(RLDataConfig(beams=beam_dir, n_sampled=2, max_new_tokens=NEW_TOKENS, top_positives=2, top_negatives=2,
                                      min_positives=0), root / "rl", backend=backend)
    lap("rl-data")
    raw = read_jsonl(rl_dir / "rl_raw.jsonl")
    assert [r["id"] for r in raw] == list(pools)
    for rec in raw:
        assert [c["source"] for c in rec["candidates"]].count("sampled") == 2
        for c in rec["candidates"]:
            assert c["status"] in ("ok", "empty"), c
            truth = list(support_split.get(rec["id"]).answers)
            assert isinstance(c["answer"], str) and c["vqa_acc_score"] == pytest.approx(question_accuracy(c["answer"], truth))
            assert c["vqa_correct"] == (c["vqa_acc_score"] >= 0.5)
            assert all(0 <= p < K for p in c["positions"])

    train_dir = run_train(TrainStageConfig(index=index, beams=beam_dir, selector={
        "version": "v3", "hidden_dim": 32, "num_layers": 1, "pool_size": K, "shots": SHOTS, "epochs": 2, "batch_size": 4,
        "val_fraction": 0.25}), root / "train")
    assert (train_dir / "selector.safetensors").exists()
    train_metrics = json.loads((train_dir / "metrics.json").read_text())
    assert train_metrics["train_anchors"] == ANCHORS - 1 and train_metrics["val_anchors"] == 1
    assert train_metrics["final"] and all(math.isfinite(v) for v in train_metrics["final"].values())
    lap("train")

    ecfg = EvalConfig(index=index, test=data_config(test), model=scorer, methods=METHODS, shots=[1, 2], sizes=[TEST_SIZE],
                      selector=train_dir, selector_k=K, max_new_tokens=NEW_TOKENS, n_boot=10)
    eval_a = run_eval(ecfg, root / "eval-a", backend=backend)
    assert eval_a is not None
    lap("eval")
    cells = json.loads((eval_a / "metrics.json").read_text())["cells"]
    got = {(c["method"], c["shots"]): c for c in cells}
    want = {("zero-shot", 0)} | {(m, s) for m in METHODS if m != "zero-shot" for s in (1, 2)}
    assert set(got) == want
    for c in cells:
        assert c["n"] == TEST_SIZE and c["errors"] == 0, c
        assert 0.0 <= c["ci_low"] <= c["accuracy"] <= c["ci_high"] <= 1.0
    eval_rows = read_jsonl(eval_a / "ledger.jsonl")
    assert all(r["status"] in ("ok", "empty") for r in eval_rows)
    assert all(len(r["demos"]) == r["shots"] for r in eval_rows)

    ecfg_b = EvalConfig.model_validate(ecfg.model_dump() | {"methods": ["zero-shot", "random"], "shots": [1], "seed": 1})
    eval_b = run_eval(ecfg_b, root / "eval-b", backend=backend)
    assert eval_b is not None
    with pytest.raises(SystemExit) as exit_info:  # through the real CLI
        # eval seed 1 draws another 4 of the 6 test questions: compare on the (at least 2) shared ones
        cli_main(["runs", "compare", str(eval_a), str(eval_b), "--out", str(root / "compare"), "--allow-different-subsets"])
    assert exit_info.value.code in (0, None)
    with (root / "compare" / "compare_cells.csv").open() as f:
        compared = list(csv.DictReader(f))
    assert sorted((c["method"], c["shots"]) for c in compared) == [("random", "1"), ("zero-shot", "0")]
    assert all(c["size"] == str(TEST_SIZE) and 2 <= int(c["n"]) <= TEST_SIZE and int(c["n_A(own)"]) == TEST_SIZE for c in compared)
    zero = next(c for c in compared if c["method"] == "zero-shot")  # the seed changes no zero-shot prompt: no difference
    assert float(zero["B-A"]) == 0.0 and float(zero["p(B)"]) == 1.0
    lap("eval-b+compare")

    for folder in (index, cands, beam_dir, root / "beam-unbatched", rl_dir, train_dir, eval_a, eval_b):
        _complete(folder)
    return seconds
