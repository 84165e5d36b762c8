"""rl-data candidate sources (upstream Lever-Plus): the selector's own beams and temperature samples,
retrieval; and the selector's beam search checked by brute force."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from vlmlab.errors import CheckpointError
from vlmlab.icl.configs import BackendConfig, BeamConfig, RLDataConfig, TrainStageConfig
from vlmlab.icl.selectors.records import load_index_embeddings
from vlmlab.icl.stages import read_jsonl, run_beam, run_rl_data
from vlmlab.icl.train_stage import run_train


def test_selector_beams_are_the_most_probable_sequences() -> None:
    from vlmlab.icl.selectors import SelectorConfig, build_selector
    from vlmlab.icl.selectors.objectives import sequence_log_prob
    from vlmlab.icl.selectors.sampling import selector_beams, selector_samples

    torch.manual_seed(0)
    for version in ("v0", "v2"):
        model = build_selector(SelectorConfig(version=version, embedding_dim=8, hidden_dim=16, pool_size=5, shots=2)).eval()
        query, pool, mask = torch.randn(2, 8), torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
        seqs, logp = selector_beams(model, query, pool, mask, shots=2, beams=6)
        every = torch.tensor(list(itertools.permutations(range(5), 2)))[None].expand(2, -1, -1)
        with torch.no_grad():
            exact = sequence_log_prob(model.sequence_logits(query, pool, mask, every), every).topk(6, dim=-1)
        assert torch.allclose(logp, exact.values, atol=1e-5)
        assert torch.equal(seqs, every[0][exact.indices])
        assert torch.equal(seqs[:, 0], model.greedy(query, pool, mask, 2))
        drawn = selector_samples(model, query, pool, mask, 2, 200, 1.3, torch.Generator().manual_seed(0))
        assert all(a != b for a, b in drawn.reshape(-1, 2).tolist())  # never the same item twice


def test_rl_data_from_the_selectors_own_beams_samples_and_retrieval(tmp_path: Path, candidates_run: Path, index_run: Path, toy_backend) -> None:
    from vlmlab.icl.selectors import load_selector
    from vlmlab.icl.selectors.sampling import selector_beams

    beam_dir = run_beam(BeamConfig(candidates=candidates_run, scorer=BackendConfig(ref="x"), beam_size=3, shots=2), tmp_path / "beam", backend=toy_backend)
    train = run_train(TrainStageConfig(index=index_run, beams=beam_dir, modality="text", icd_answers=False,
                                       selector={"version": "v2", "hidden_dim": 16, "pool_size": 8, "epochs": 2, "batch_size": 4, "val_fraction": 0.25}),
                      tmp_path / "train")
    cfg = RLDataConfig(beams=beam_dir, sources=["beams", "retrieval", "selector-beams", "selector-samples"], selector=train, selector_beams=2,
                       selector_samples=2, n_sampled=0, min_positives=0)
    rl = run_rl_data(cfg, tmp_path / "rl", backend=toy_backend)
    raw = read_jsonl(rl / "rl_raw.jsonl")
    beams = {r["id"]: r for r in read_jsonl(beam_dir / "beams.jsonl")}
    ids, text = load_index_embeddings(index_run, "text")
    row = {q: i for i, q in enumerate(ids)}
    model = load_selector(train)
    for rec in raw:
        by_source: dict[str, list[list[int]]] = {}
        for c in rec["candidates"]:
            by_source.setdefault(c["source"], []).append(c["positions"])
            assert c["beam_score"] is not None and c["vqa_gt_prob"] is not None  # every candidate InfoScore-scored
        assert "beam" in by_source and "sampled" not in by_source  # a source's repeat of an earlier sequence is dropped
        pool = rec["pool"]
        sims = text[[row[p] for p in pool]] @ text[row[rec["id"]]]
        top = [int(p) for p in np.argsort(-sims, kind="stable")[:2]]
        assert by_source.get("retrieval") == [top[::-1]] or top[::-1] in by_source["beam"]
        # the selector's own beams, turned from selection order into the beams' (left) prompt order
        q = torch.from_numpy(text[[row[rec["id"]]]])
        seqs, _ = selector_beams(model, q, torch.from_numpy(text[[row[p] for p in pool]])[None], torch.ones(1, len(pool), dtype=torch.bool), 2, 2)
        own = [s[::-1] for s in seqs[0].tolist()]
        listed = [p for src in ("beam", "retrieval", "selector-beam") for p in by_source.get(src, [])]
        assert all(s in listed for s in own)
        assert beams[rec["id"]]["order"] == "left"
    sources = {c["source"] for r in raw for c in r["candidates"]}
    assert {"selector-t1", "selector-t1.3"} & sources


def test_a_selector_from_another_index_cannot_feed_rl_data(tmp_path: Path, candidates_run: Path, index_run: Path, toy_backend) -> None:
    import shutil

    beam_dir = run_beam(BeamConfig(candidates=candidates_run, scorer=BackendConfig(ref="x"), beam_size=2, shots=2), tmp_path / "beam", backend=toy_backend)
    train = run_train(TrainStageConfig(index=index_run, beams=beam_dir, modality="text", icd_answers=False,
                                       selector={"version": "v1", "hidden_dim": 16, "pool_size": 8, "epochs": 1, "batch_size": 4, "val_fraction": 0.25}),
                      tmp_path / "train")
    text = np.load(index_run / "embeddings" / "text.npy")
    shutil.copy(index_run / "embeddings" / "text.npy", tmp_path / "text.npy")
    np.save(index_run / "embeddings" / "text.npy", text[:, ::-1].copy())
    with pytest.raises(CheckpointError, match="embeddings_sha256"):
        run_rl_data(RLDataConfig(beams=beam_dir, sources=["selector-beams"], selector=train), tmp_path / "rl", backend=toy_backend)
    assert not (tmp_path / "rl").exists()


def test_selector_beams_break_ties_the_same_way_in_any_batch() -> None:
    """Support items with the same wording have equal embeddings, so their sequences tie exactly; a query's
    beams must not depend on which other queries share its batch (topk orders ties by batch shape)."""
    from vlmlab.icl.selectors import SelectorConfig, build_selector
    from vlmlab.icl.selectors.sampling import selector_beams

    torch.manual_seed(0)
    model = build_selector(SelectorConfig(version="v2", embedding_dim=8, hidden_dim=16, pool_size=8, shots=2)).eval()
    base = torch.randn(4, 8)
    pool = base[[0, 1, 2, 3, 0, 1, 2, 3]][None].repeat(10, 1, 1)  # every item has an identical twin 4 positions on
    query, mask = torch.randn(10, 8), torch.ones(10, 8, dtype=torch.bool)
    together, logp = selector_beams(model, query, pool, mask, shots=2, beams=6)
    for i in range(10):
        alone, alone_logp = selector_beams(model, query[i : i + 1], pool[i : i + 1], mask[i : i + 1], shots=2, beams=6)
        assert torch.equal(alone[0], together[i]) and torch.allclose(alone_logp[0], logp[i])
        seqs = together[i].tolist()
        twins = [(a, b) for a in range(6) for b in range(a + 1, 6) if [p % 4 for p in seqs[a]] == [p % 4 for p in seqs[b]]]
        assert twins and all(seqs[a] < seqs[b] for a, b in twins)  # of tied twin sequences, the earlier positions lead


@pytest.mark.parametrize("score_eos", [True, False])
def test_candidate_infoscores_and_gt_prob_equal_brute_force(tmp_path: Path, candidates_run: Path, toy_support, toy_backend, score_eos: bool) -> None:
    """Every candidate's `vqa_gt_prob` is P(y|seq⊕x) and a sampled one's `beam_score` is P(y|seq⊕x) − P(y|x), each
    P = exp(mean token log-prob) of one `score()` call on the backend itself, scored with the beam run's `score_eos`."""
    from vlmlab.icl.data import load_split
    from vlmlab.icl.prompts import score_request

    from icl_toy import data_config

    beam_dir = run_beam(BeamConfig(candidates=candidates_run, scorer=BackendConfig(ref="x"), beam_size=2, shots=2, score_eos=score_eos),
                        tmp_path / "beam", backend=toy_backend)
    flags: set[bool] = set()

    class Recording:  # the toy scorer ignores the flag, so check what rl-data asks for
        supports_score = True

        def score(self, requests):
            flags.update(r.score_end_of_turn for r in requests)
            return toy_backend.score(requests)

        def generate(self, requests):
            return toy_backend.generate(requests)

    rl = run_rl_data(RLDataConfig(beams=beam_dir, n_sampled=4, min_positives=0), tmp_path / "rl", backend=Recording())
    assert flags == {score_eos}
    support = load_split(data_config(toy_support))

    def prob(demos: list[str], anchor: str) -> float:
        request = score_request("check", [support.get(q, "s") for q in demos], support.get(anchor, "s"), score_eos=score_eos)
        assert request.score_end_of_turn is score_eos
        (result,) = toy_backend.score([request])
        return float(np.exp(np.mean(result.token_logprobs)))

    checked = 0
    for rec in read_jsonl(rl / "rl_raw.jsonl"):
        base = prob([], rec["id"])
        for c in rec["candidates"]:
            p = prob(c["ids"], rec["id"])
            assert c["vqa_gt_prob"] == pytest.approx(p, abs=1e-9)
            if c["source"] == "sampled":
                assert c["beam_score"] == pytest.approx(p - base, abs=1e-9)
                checked += 1
            else:  # a beam keeps its search score, the cumulative InfoScore of the same prompt
                assert c["beam_score"] == pytest.approx(p - base, abs=1e-6)
    assert checked >= 20
