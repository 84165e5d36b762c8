"""The rating study through a real OpenAI-compatible server: `transformers serve` on 127.0.0.1.

The server (transformers[serving], not our code) serves a tiny Gemma3 checkpoint; the same
checkpoint runs in-process through the `hf` backend. Every answer of every step must be equal.
The server ignores `logprobs`, so its condition must say so, the CLI must warn, and a config
requiring logprobs must stop at the preflight with nothing written.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from vlmlab.runs import read_ledger
from rating_helpers import make_faces
from rating_helpers import run_cli as cli

pytestmark = pytest.mark.slow

TRANSFORMERS = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gemma3(tiny_model) -> Path:
    return tiny_model("gemma3")


@pytest.fixture(scope="module")
def server(gemma3, tmp_path_factory):
    if TRANSFORMERS is None:
        pytest.fail("the `transformers` command is missing; install vlmlab's dependencies (transformers[serving])")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    log = open(tmp_path_factory.mktemp("serve") / "serve.log", "w+")
    proc = subprocess.Popen([TRANSFORMERS, "serve", str(gemma3), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                             "--dtype", "float32", "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # measured 84-120 s on a 2-core machine at load 10-14 (mostly imports)
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"transformers serve exited with {proc.returncode}: {log.read()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not answer /health within 300 s")
            time.sleep(0.5)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


MODES = ["context-carry", "single-shot", "text-only"]
QUESTIONS = {"context-carry": 3, "single-shot": 1, "text-only": 2}


def write_study(path: Path, ratings: Path, out: Path, models: list[dict], modes: list[str] = MODES, **capture) -> Path:
    config = {
        "out": str(out),
        "data": {"ratings": str(ratings), "limit": 4},
        "models": models,
        "conditions": {"modes": modes, "temperatures": [0.0]},
        "capture": {"top_logprobs": 3, "max_new_tokens": 5, **capture},
        "batch_size": 4,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_openai_backend_on_transformers_serve_equals_hf(server, gemma3, tmp_path, capsys):
    ratings, _ = make_faces(tmp_path / "faces", n_per_cell=1)
    models = [
        {"name": "direct", "ref": str(gemma3), "variants": [{"name": "fp32", "dtype": "float32", "batch_size": 4}]},
        {"name": "served", "kind": "openai", "ref": str(gemma3), "base_url": server,
         "variants": [{"name": "default", "options": {"max_concurrency": 2, "timeout": 60, "max_retries": 1}}]},
    ]
    config = write_study(tmp_path / "study.yaml", ratings, tmp_path / "out", models)
    assert cli(["rating", "run", str(config), "--no-analyze"]) == 0
    err = capsys.readouterr().err
    pairs = 0
    for mode in MODES:
        assert f"warning: served__default/{mode}__t0__r0: logprobs unavailable (server returned none)" in err
        direct = read_ledger(tmp_path / "out" / "direct__fp32" / f"{mode}__t0__r0" / "ledger.jsonl")
        served = read_ledger(tmp_path / "out" / "served__default" / f"{mode}__t0__r0" / "ledger.jsonl")
        assert [r["image_id"] for r in served] == [r["image_id"] for r in direct] and len(direct) == 4
        for d, s in zip(direct, served):
            assert s["status"] != "error", s.get("error")
            assert set(s["answers"]) == set(d["answers"])
            for question in d["answers"]:
                assert s["answers"][question]["text"] == d["answers"][question]["text"], (mode, d["image_id"], question)
                assert s["answers"][question]["status"] == d["answers"][question]["status"]
                pairs += 1
        info = {name: json.loads((tmp_path / "out" / name / f"{mode}__t0__r0" / "run.json").read_text())
                for name in ("direct__fp32", "served__default")}
        assert info["direct__fp32"]["logprobs"] == "captured"
        assert info["served__default"]["logprobs"] == "unavailable (server returned none)"
    assert pairs == 4 * sum(QUESTIONS.values())  # every answer of every step of every mode: 24


def test_real_server_typo_and_required_logprobs_stop_before_writing(server, gemma3, tmp_path, capsys):
    ratings, _ = make_faces(tmp_path / "faces", n_per_cell=1)
    served = {"name": "served", "kind": "openai", "ref": str(gemma3), "base_url": server,
              "variants": [{"name": "default", "options": {"timeout": 60, "max_retries": 1}}]}
    typo = write_study(tmp_path / "typo.yaml", ratings, tmp_path / "out", [{**served, "ref": str(gemma3) + "x"}], modes=["context-carry"])
    assert cli(["rating", "run", str(typo)]) == 2
    assert f"does not serve model '{gemma3}x'" in capsys.readouterr().err
    required = write_study(tmp_path / "req.yaml", ratings, tmp_path / "out", [served], modes=["context-carry"], require_logprobs=True)
    assert cli(["rating", "run", str(required)]) == 2
    assert "returned no logprobs, and capture.require_logprobs is set" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
