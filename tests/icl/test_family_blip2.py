"""BLIP-2 takes one image per prompt: refused as a scorer or with demonstrations, one clear error each, and
still usable as a zero-shot baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from family_smoke import scorer_config
from icl_toy import data_config
from vlmlab.errors import ModelError
from vlmlab.icl.configs import BeamConfig, EvalConfig, RLDataConfig
from vlmlab.icl.eval_stage import run_eval
from vlmlab.icl.prompts import check_backend_images
from vlmlab.icl.stages import load_backend, run_beam, run_rl_data
from vlmlab.runs import read_run_info

BLIP2_REFUSED = r"icl \w+(-\w+)?: the blip2 model takes at most 1 image\(s\) per prompt, but a \d-shot ICL prompt holds \d"


@pytest.fixture
def blip2(tiny_root: Path):
    return load_backend(scorer_config("blip2", tiny_root))


def test_blip2_cannot_hold_demonstration_images(blip2, toy_backend) -> None:
    with pytest.raises(ModelError, match=BLIP2_REFUSED) as exc:
        check_backend_images(blip2, 2, "beam")
    assert "one image per demonstration" in str(exc.value) and "qwen2-vl" in str(exc.value)
    assert len(str(exc.value).splitlines()) == 1
    check_backend_images(blip2, 0, "eval")  # zero-shot: one image, fine
    check_backend_images(toy_backend, 5, "beam")  # backends that declare no limit are not checked


def test_rl_data_with_blip2_is_one_clear_error(tmp_path: Path, candidates_run: Path, toy_backend, blip2, tiny_root: Path) -> None:
    beam_dir = run_beam(BeamConfig(candidates=candidates_run, scorer=scorer_config("qwen2-vl", tiny_root), beam_size=2, shots=2),
                        tmp_path / "beam", backend=toy_backend)
    assert beam_dir is not None
    with pytest.raises(ModelError, match=BLIP2_REFUSED):
        run_rl_data(RLDataConfig(beams=beam_dir, scorer=scorer_config("blip2", tiny_root), n_sampled=2, max_new_tokens=2), tmp_path / "rl",
                    backend=blip2)
    assert not (tmp_path / "rl" / "ledger.jsonl").exists() or not (tmp_path / "rl" / "ledger.jsonl").read_text().strip()


def test_blip2_zero_shot_eval_runs(tmp_path: Path, index_run: Path, toy_test, blip2, tiny_root: Path) -> None:
    """One image per prompt is all zero-shot needs: BLIP-2 stays usable as a zero-shot baseline."""
    cfg = EvalConfig(index=index_run, test=data_config(toy_test), model=scorer_config("blip2", tiny_root), methods=["zero-shot"],
                     sizes=[4], max_new_tokens=2, n_boot=10)
    out = run_eval(cfg, tmp_path / "eval", backend=blip2)
    assert out is not None and read_run_info(out)["status"] == "complete"
    cells = json.loads((out / "metrics.json").read_text())["cells"]
    assert [(c["method"], c["shots"], c["n"], c["errors"]) for c in cells] == [("zero-shot", 0, 4, 0)]


def test_beam_with_blip2_scorer_is_one_clear_error(tmp_path: Path, candidates_run: Path, blip2, tiny_root: Path) -> None:
    with pytest.raises(ModelError, match=BLIP2_REFUSED):
        run_beam(BeamConfig(candidates=candidates_run, scorer=scorer_config("blip2", tiny_root), beam_size=2, shots=2), tmp_path / "beam",
                 backend=blip2)


def test_eval_with_blip2_and_demonstrations_is_one_clear_error(tmp_path: Path, index_run: Path, toy_test, blip2, tiny_root: Path) -> None:
    cfg = EvalConfig(index=index_run, test=data_config(toy_test), model=scorer_config("blip2", tiny_root), methods=["zero-shot", "random"],
                     shots=[1], sizes=[4], max_new_tokens=2, n_boot=10)
    with pytest.raises(ModelError, match=BLIP2_REFUSED):
        run_eval(cfg, tmp_path / "eval", backend=blip2)
