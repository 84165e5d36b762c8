"""A condition whose model fails to load (or asks more of it than it allows) is marked `failed` with
the reason, never left `running`; the CLI prints one line and exits 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from rating_helpers import run_cli as cli
from vlmlab.runs import read_run_info


def write_study(tmp_path: Path, ratings: Path, model: Path, max_new_tokens: int = 24) -> Path:
    config = tmp_path / "s.yaml"
    config.write_text(yaml.safe_dump({
        "out": str(tmp_path / "out"), "data": {"ratings": str(ratings)},
        "models": [{"name": "broken", "ref": str(model), "kind": "hf"}],
        "conditions": {"modes": ["context-carry", "single-shot"], "temperatures": [0.0], "repeats": 1},
        "capture": {"top_logprobs": 0, "max_new_tokens": max_new_tokens}, "batch_size": 8,
    }))
    return config


def test_model_that_fails_to_load_marks_its_conditions_failed(faces, tiny_qwen2_vl: Path, tmp_path: Path, capsys) -> None:
    ratings, _ = faces
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_qwen2_vl, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a download cut short
    out = tmp_path / "out"
    config = write_study(tmp_path, ratings, broken)
    assert cli(["rating", "run", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "model.safetensors" in err[0], err
    infos = {p.parent.relative_to(out).as_posix(): read_run_info(p.parent) for p in out.rglob("run.json")}
    assert sorted(infos) == ["broken__default/context-carry__t0__r0", "broken__default/single-shot__t0__r0"]
    for info in infos.values():
        assert info["status"] == "failed" and info["error"] == err[0].removeprefix("error: ")

    assert cli(["runs", "list", str(out)]) == 0
    listed = capsys.readouterr().out
    assert "running" not in listed and listed.count("failed") == 2
    assert cli(["runs", "show", str(out / "broken__default/single-shot__t0__r0")]) == 0
    assert f"failed because: {err[0].removeprefix('error: ')}" in capsys.readouterr().out


def test_max_new_tokens_past_the_model_positions_is_one_line_exit_2(faces, tiny_qwen2_vl: Path, tmp_path: Path, capsys) -> None:
    """3000 passes the config bound (32768), but tiny Qwen2-VL has 2048 positions: refused before generating."""
    ratings, _ = faces
    config = write_study(tmp_path, ratings, tiny_qwen2_vl, max_new_tokens=3000)
    assert cli(["rating", "run", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: max_new_tokens=3000: request "), err
    assert "allows 2048 positions in all (max_position_embeddings in its config); set max_new_tokens to at most " in err[0]
    out = tmp_path / "out"
    assert not [p for p in out.rglob("ledger.jsonl") if p.read_text().strip()]  # nothing was generated
    assert {read_run_info(p.parent)["status"] for p in out.rglob("run.json")} == {"failed"}


def test_max_positions_is_read_from_the_text_config(tiny_qwen2_vl: Path) -> None:
    from transformers import AutoConfig, PretrainedConfig

    from vlmlab.models.positions import max_positions, position_limit

    config = AutoConfig.from_pretrained(tiny_qwen2_vl)
    assert max_positions(config) == config.get_text_config(decoder=True).max_position_embeddings == 2048
    assert position_limit(config) == (2048, "max_position_embeddings")
    gpt2 = PretrainedConfig()
    gpt2.n_positions = 1024
    assert position_limit(gpt2) == (1024, "n_positions")
    assert position_limit(PretrainedConfig(is_encoder_decoder=True, max_position_embeddings=512)) is None
