"""Stage `train` through the CLI: a selector checkpoint from real beams, strict config, no retraining."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vlmlab.cli import main
from vlmlab.config import load_config
from vlmlab.errors import ConfigError
from vlmlab.icl.configs import BackendConfig, BeamConfig, TrainStageConfig
from vlmlab.icl.selectors import load_selector
from vlmlab.icl.stages import run_beam


def test_train_stage_writes_a_loadable_checkpoint(tmp_path: Path, candidates_run: Path, index_run: Path, toy_backend, monkeypatch) -> None:
    beam_dir = run_beam(BeamConfig(candidates=candidates_run, scorer=BackendConfig(ref="unused"), beam_size=3, shots=2), tmp_path / "beam", backend=toy_backend)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"index": str(index_run), "beams": str(beam_dir), "selector": {"version": "v3", "hidden_dim": 16, "pool_size": 8, "epochs": 2, "batch_size": 4, "val_fraction": 0.25}}))
    with pytest.raises(SystemExit) as exit_info:
        main(["icl", "train", str(config), "--out", str(tmp_path / "train")])
    assert exit_info.value.code in (0, None)
    folder = tmp_path / "train"
    assert (folder / "selector.safetensors").exists() and (folder / "report.html").exists()
    model = load_selector(folder)
    assert sum(p.numel() for p in model.parameters()) > 0
    meta = json.loads((folder / "selector.json").read_text())
    assert meta["beams"] == {"score_eos": True, "prompt_format": "chat"}  # how the InfoScores it learned from were scored
    provenance = meta["data"]["provenance"]
    assert provenance["pool_sampler"] == "mix" and provenance["pool_k"] == 8 and provenance["embedders"]["text"] == "bag-of-words"
    assert len(provenance["embeddings_sha256"]) == 64
    # a finished run is not trained again: the trainer must not even be called
    import vlmlab.icl.train_stage as train_stage

    def refuse(*args, **kwargs):
        raise AssertionError("a finished train run was trained again")

    monkeypatch.setattr(train_stage, "train_selector", refuse)
    with pytest.raises(SystemExit) as again:
        main(["icl", "train", str(config), "--out", str(folder)])
    assert again.value.code in (0, None)


def test_train_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"index": "i", "beams": "b", "selector": {"version": "v4"}}))
    with pytest.raises(ConfigError, match="rl-data"):
        load_config(path, TrainStageConfig)
    path.write_text(yaml.safe_dump({"index": "i", "beams": "b", "selector": {"version": "v2", "num_layer": 2}}))
    with pytest.raises(ConfigError, match="num_layer"):
        load_config(path, TrainStageConfig)


def test_beams_without_a_run_folder_record_unknown_pools(tmp_path: Path, index_run: Path) -> None:
    """Beams imported from upstream files have no beam/candidates config: the checkpoint says the pools
    are unknown (so eval needs --allow-mismatch) instead of claiming some."""
    from vlmlab.icl.stages import training_provenance

    (tmp_path / "imported").mkdir()
    prov = training_provenance(index_run, tmp_path / "imported")
    assert prov["pool_sampler"] is None and prov["embedders"]["text"] == "bag-of-words"
