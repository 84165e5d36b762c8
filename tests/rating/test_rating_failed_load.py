"""A condition whose model fails to load is marked `failed` with the reason, never left `running`."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from rating_helpers import run_cli as cli
from vlmlab.runs import read_run_info


def test_model_that_fails_to_load_marks_its_conditions_failed(faces, tiny_qwen2_vl: Path, tmp_path: Path, capsys) -> None:
    ratings, _ = faces
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_qwen2_vl, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a download cut short
    out = tmp_path / "out"
    config = tmp_path / "s.yaml"
    config.write_text(yaml.safe_dump({
        "out": str(out), "data": {"ratings": str(ratings)},
        "models": [{"name": "broken", "ref": str(broken), "kind": "hf"}],
        "conditions": {"modes": ["context-carry", "single-shot"], "temperatures": [0.0], "repeats": 1},
        "capture": {"top_logprobs": 0}, "batch_size": 8,
    }))
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
