"""The real stage outputs (index, candidates, beam, rl-data on the toy world) train a selector."""

from __future__ import annotations

from pathlib import Path

import torch

from vlmlab.icl.configs import BackendConfig, BeamConfig, RLDataConfig
from vlmlab.icl.selectors import DataFingerprint, SelectorConfig, SelectorData, load_selector, select, train_selector
from vlmlab.icl.stages import read_jsonl, run_beam, run_rl_data


def test_stage_outputs_train_a_v4_selector(tmp_path: Path, candidates_run: Path, index_run: Path, toy_backend) -> None:
    scorer = BackendConfig(ref="unused-in-tests")
    beam_dir = run_beam(BeamConfig(candidates=candidates_run, scorer=scorer, beam_size=3, shots=2), tmp_path / "beam", backend=toy_backend)
    rl_dir = run_rl_data(RLDataConfig(beams=beam_dir, n_sampled=4, top_positives=2, top_negatives=2, min_positives=1), tmp_path / "rl", backend=toy_backend)
    data = SelectorData.from_run(index_run, beam_dir / "beams.jsonl", rl_dir / "rl.jsonl", dataset="toy", modality="text+image")
    beams = {r["id"]: r for r in read_jsonl(beam_dir / "beams.jsonl")}
    assert set(data.anchor_ids) == set(beams)
    for row, anchor in enumerate(data.anchor_ids):
        pool = data.pool_ids(row)
        assert pool == beams[anchor]["pool"]
        # labels are in selection order: a left beam's (the default) first pick is last in the prompt
        assert beams[anchor]["order"] == "left"
        assert [pool[p] for p in data.beam_positions[row, 0].tolist()] == beams[anchor]["beams"][0]["ids"][::-1]
    assert data.order == "left"
    assert data.has_rl and bool(data.rl_mask.any())

    cfg = SelectorConfig(version="v4", embedding_dim=data.embedding_dim, hidden_dim=16, pool_size=8, shots=2, epochs=2,
                         rce_epochs=1, grpo_epochs=1, batch_size=4, val_fraction=0.2)
    report = train_selector(cfg, data, tmp_path / "selector", progress=False)
    assert {row["phase"] for row in report.steps} == {"supervised", "rce", "grpo"}
    assert (tmp_path / "selector" / "eval_log.csv").exists()

    fp = DataFingerprint.from_ids("toy", data.support_ids, data.embedding_dim, "text+image")
    model = load_selector(tmp_path / "selector", fingerprint=fp)
    rows = torch.arange(len(data))
    picks = select(model, data.query_emb, data.pool_embeddings(rows), 2, data.pool_mask)
    for row, anchor in enumerate(data.anchor_ids):
        chosen = [data.pool_ids(row)[p] for p in picks[row].tolist()]
        assert anchor not in chosen and len(set(chosen)) == 2
