"""`vlmlab icl ...` through the real CLI: YAML configs, --set overrides, one-line errors, a tiny VLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vlmlab.cli import main

def _yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(json.loads(json.dumps(data, default=str))))
    return path


def test_cli_index_and_candidates(tmp_path: Path, toy_support, capsys) -> None:
    support = {k: str(v) for k, v in toy_support.items()}
    idx_cfg = _yaml(tmp_path / "index.yaml", {"support": support, "text_embedder": "bag-of-words", "image_embedder": "pixels"})
    with pytest.raises(SystemExit) as exc:
        main(["icl", "index", str(idx_cfg), "--out", str(tmp_path / "index")])
    assert exc.value.code in (0, None)
    assert (tmp_path / "index" / "embeddings" / "text.npy").exists()
    cand_cfg = _yaml(tmp_path / "cand.yaml", {"index": str(tmp_path / "index"), "k": 5, "anchors": 4})
    with pytest.raises(SystemExit):
        main(["icl", "candidates", str(cand_cfg), "--set", "sampler=text", "--out", str(tmp_path / "cand")])
    rows = [json.loads(line) for line in (tmp_path / "cand" / "candidates.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(len(r["pool"]) == 5 for r in rows)
    assert "sampler: text" in (tmp_path / "cand" / "config.yaml").read_text()


def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    cfg = _yaml(tmp_path / "cand.yaml", {"index": str(tmp_path / "nope"), "k": 5, "sampler": "mixx"})
    with pytest.raises(SystemExit) as exc:
        main(["icl", "candidates", str(cfg), "--out", str(tmp_path / "c")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'mix'" in err


@pytest.mark.slow
def test_cli_beam_on_tiny_qwen2_vl(tmp_path: Path, toy_support, tiny_root: Path, monkeypatch) -> None:
    """The chain through the CLI with a tiny real Qwen2-VL scorer (registry name `tiny-qwen2-vl`,
    built under `$VLMLAB_HOME/tiny`)."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "tiny").symlink_to(tiny_root)
    monkeypatch.setenv("VLMLAB_HOME", str(tmp_path / "home"))
    support = {k: str(v) for k, v in toy_support.items()}
    _yaml(tmp_path / "index.yaml", {"support": support, "text_embedder": "bag-of-words", "image_embedder": "pixels"})
    _yaml(tmp_path / "cand.yaml", {"index": str(tmp_path / "index"), "k": 4, "anchors": 2})
    _yaml(tmp_path / "beam.yaml", {"candidates": str(tmp_path / "cand"), "beam_size": 2, "shots": 2,
                                   "scorer": {"ref": "tiny-qwen2-vl", "dtype": "float32"}})
    for stage, cfg, out in [("index", "index.yaml", "index"), ("candidates", "cand.yaml", "cand"), ("beam", "beam.yaml", "beam")]:
        with pytest.raises(SystemExit) as exc:
            main(["icl", stage, str(tmp_path / cfg), "--out", str(tmp_path / out)])
        assert exc.value.code in (0, None)
    beams = [json.loads(line) for line in (tmp_path / "beam" / "beams.jsonl").read_text().splitlines()]
    assert len(beams) == 2 and all(len(r["beams"]) == 2 for r in beams)
    metrics = json.loads((tmp_path / "beam" / "metrics.json").read_text())
    assert metrics["mean_forward_passes"] == 1 + 4 + 2 * 3 and metrics["errors"] == 0
