"""`vlmlab icl train` with every pointer variant and every reward mode on the toy world (one beam and
rl-data run shared; each selector trains one epoch per phase)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vlmlab.cli import main
from vlmlab.icl.configs import BackendConfig, BeamConfig, RLDataConfig
from vlmlab.icl.selectors.objectives import REWARD_MODES
from vlmlab.icl.stages import run_beam, run_rl_data

VARIANTS = [{}, {"diversity": "mmr"}, {"diversity": "dpp"}, {"candidate_self_attention": True}, {"scoring": "additive"}, {"scoring": "bilinear"},
            {"stop_token": True}]


@pytest.mark.slow
def test_every_variant_and_reward_mode_trains_through_the_cli(tmp_path: Path, candidates_run: Path, index_run: Path, toy_backend) -> None:
    beam = run_beam(BeamConfig(candidates=candidates_run, scorer=BackendConfig(ref="x"), beam_size=3, shots=2), tmp_path / "beam", backend=toy_backend)
    rl = run_rl_data(RLDataConfig(beams=beam, sources=["beams", "random", "retrieval"], n_sampled=3, min_positives=0), tmp_path / "rl",
                     backend=toy_backend)
    base = {"hidden_dim": 16, "pool_size": 8, "epochs": 1, "rce_epochs": 1, "grpo_epochs": 1, "batch_size": 4, "val_fraction": 0.25}
    runs = [(f"variant{i}", {"version": "v4", **v}) for i, v in enumerate(VARIANTS)] + [(mode, {"version": "v4", "reward_mode": mode}) for mode in REWARD_MODES]
    for name, selector in runs:
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump({"index": str(index_run), "beams": str(beam), "rl": str(rl), "selector": {**base, **selector}}))
        with pytest.raises(SystemExit) as exit_info:
            main(["icl", "train", str(cfg), "--out", str(tmp_path / "train" / name)])
        assert exit_info.value.code in (0, None), name
        meta = json.loads((tmp_path / "train" / name / "selector.json").read_text())
        assert all(meta["config"][k] == v for k, v in selector.items()), name
        phases = {line.split(",")[0] for line in (tmp_path / "train" / name / "eval_log.csv").read_text().splitlines()[1:]}
        assert phases == {"supervised", "rce", "grpo"}, name
        if selector.get("stop_token"):  # held-out metrics of a STOP selector say how many ICDs it gives
            assert "mean_shots" in json.loads((tmp_path / "train" / name / "metrics.json").read_text())["final"], name
