"""Every stage resumes after SIGKILL of a real subprocess with identical output; 2 ranks == 1 process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from icl_toy import data_config
from icl_toy import toy_backend_for, write_toy_vqa
from vlmlab.icl.configs import BackendConfig, BeamConfig, CandidatesConfig, EvalConfig, IndexConfig, RLDataConfig
from vlmlab.icl.eval_stage import run_eval
from vlmlab.icl.stages import run_beam, run_candidates, run_index, run_rl_data

HERE = Path(__file__).parent
PY = sys.executable
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    """Toy data, stage configs, and the outputs of an uninterrupted in-process chain."""
    root = tmp_path_factory.mktemp("chain")
    support = write_toy_vqa(root / "support", n_images=10, seed=0, name="s", duplicate_images=2)
    test = write_toy_vqa(root / "test", n_images=5, seed=1, name="t")
    backend = toy_backend_for(support)
    backend.oracle.update(toy_backend_for(test).oracle)
    ref = root / "ref"
    cfgs = {
        "index": IndexConfig(support=data_config(support), text_embedder="bag-of-words", image_embedder="pixels", batch_size=4, cache_dir=None),
    }
    run_index(cfgs["index"], ref / "index")
    cfgs["candidates"] = CandidatesConfig(index=ref / "index", k=6, anchors=8, seed=0)
    run_candidates(cfgs["candidates"], ref / "candidates")
    cfgs["beam"] = BeamConfig(candidates=ref / "candidates", scorer=BackendConfig(ref="toy"), beam_size=2, shots=2, batch_size=8)
    run_beam(cfgs["beam"], ref / "beam", backend=backend)
    cfgs["rl-data"] = RLDataConfig(beams=ref / "beam", n_sampled=3, top_positives=2, top_negatives=2)
    run_rl_data(cfgs["rl-data"], ref / "rl-data", backend=backend)
    cfgs["eval"] = EvalConfig(index=ref / "index", test=data_config(test), model=BackendConfig(ref="toy"), methods=["zero-shot", "random", "text"],
                              shots=[1, 2], sizes=[5, "full"], n_boot=50, batch_size=2)
    run_eval(cfgs["eval"], ref / "eval", backend=backend)
    sj, tj = root / "support.json", root / "test.json"
    sj.write_text(json.dumps({k: str(v) for k, v in support.items()}))
    tj.write_text(json.dumps({k: str(v) for k, v in test.items()}))
    return {"root": root, "ref": ref, "cfgs": cfgs, "support_json": sj, "test_json": tj, "backend": backend}


OUTPUTS = {
    "index": ["embeddings/text.npy", "embeddings/image.npy", "embeddings/ids.json", "ledger.jsonl"],
    "candidates": ["candidates.jsonl", "ledger.jsonl"],
    "beam": ["beams.jsonl", "lever_lm.json", "ledger.jsonl"],
    "rl-data": ["rl.jsonl", "rl_raw.jsonl", "ledger.jsonl"],
    "eval": ["subsets.json", "ledger.jsonl"],
}


def _same_outputs(stage: str, a: Path, b: Path) -> None:
    for name in OUTPUTS[stage]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{stage}: {name} differs"
    if stage == "eval":
        cells = lambda p: json.loads((p / "metrics.json").read_text())["cells"]  # noqa: E731
        assert cells(a) == cells(b)


def _command(chain: dict, jobs: list[tuple[str, Path]], delay: float) -> list[str]:
    path = chain["root"] / f"jobs-{jobs[0][1].name}.json"
    path.write_text(json.dumps([{"stage": st, "config": json.loads(chain["cfgs"][st].model_dump_json()), "out": str(out)} for st, out in jobs]))
    return [PY, str(HERE / "stage_main.py"), str(path), str(chain["support_json"]), str(chain["test_json"]), str(delay)]


RUNNERS = {"index": run_index, "candidates": run_candidates, "beam": run_beam, "rl-data": run_rl_data, "eval": run_eval}


def _progress(stage: str, out: Path) -> int:
    if stage == "index":
        return len(list((out / "embed_cache").rglob("*.npy"))) if (out / "embed_cache").exists() else 0
    ledger = out / "ledger.jsonl"
    return len(ledger.read_text().splitlines()) if ledger.exists() else 0


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["index", "candidates", "beam", "rl-data", "eval"])
def test_stage_resumes_after_sigkill_with_identical_output(chain: dict, stage: str) -> None:
    """Kill a real subprocess part-way (SIGKILL: no cleanup), then finish the same run in-process."""
    out = chain["root"] / f"killed-{stage}"
    proc = subprocess.Popen(_command(chain, [(stage, out)], delay=0.3), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _progress(stage, out) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists()
    kwargs = {"backend": chain["backend"]} if stage in ("beam", "rl-data", "eval") else {}
    RUNNERS[stage](chain["cfgs"][stage], out, **kwargs)
    _same_outputs(stage, chain["ref"] / stage, out)


@pytest.mark.slow
def test_two_ranks_equal_one_process(chain: dict) -> None:
    """beam and eval under `torchrun --nproc_per_node 2` give the merged outputs of one process."""
    torchrun = shutil.which("torchrun", path=str(Path(PY).parent))
    assert torchrun is not None
    outs = [("beam", chain["root"] / "ranks-beam"), ("eval", chain["root"] / "ranks-eval")]
    cmd = _command(chain, outs, delay=0.0)
    run = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 500)] + cmd[1:],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "rank=1 world=2" in run.stdout and "rank=0 world=2" in run.stdout
    for stage, out in outs:
        assert not list(out.glob("ledger.rank*.jsonl"))
        _same_outputs(stage, chain["ref"] / stage, out)
