"""The shipped throughput config (`configs/rating/faces-vllm.yaml`, a vLLM/SGLang server through the
`openai` backend) runs end to end against an OpenAI-compatible server: the fake server of
`vlmlab.testing`, listing the config's model name, answering the study's prompts with logprobs.
(`tests/test_shipped_configs.py` dry-runs the same file as shipped.)"""

from __future__ import annotations

import math
import shlex
import time
from pathlib import Path

import yaml

from vlmlab.models.base import StepLogprobs
from vlmlab.runs import read_ledger
from vlmlab.testing import serve
from rating_helpers import run_cli as cli

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "rating" / "faces-vllm.yaml"
ANSWERS = {"emotion": "happy", "valence": "7", "arousal": "4"}


def rater(conversation, params):
    """Fixed answers per question, with the top-k logprobs a vLLM server returns; each answer takes
    0.1 s, so the client's concurrent requests overlap at the server."""
    question = conversation[-1].text.lower()
    text = "ok"
    for key, answer in ANSWERS.items():
        if key in question:
            text = answer
            time.sleep(0.1)
            break
    k = params["top_logprobs"]
    steps = [StepLogprobs(token=text, logprob=math.log(0.8), top=[(text, math.log(0.8)), ("5", math.log(0.1))][:k])] if k else None
    return text, steps


def test_vllm_config_runs_through_an_openai_compatible_server(tmp_path: Path, monkeypatch) -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    model = config["models"][0]
    assert model["kind"] == "openai" and model["base_url"].endswith("/v1")
    monkeypatch.chdir(tmp_path)
    assert cli(["toyworld", "generate", "faces", "--out", "data/faces", "--n", "6"]) == 0
    with serve(rater, api="openai", model=model["ref"], serialize=False) as server:
        model["base_url"] = server.url
        (tmp_path / "configs/rating").mkdir(parents=True)
        (tmp_path / "configs/rating/faces-vllm.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        args = shlex.split(CONFIG.read_text(encoding="utf-8").splitlines()[0].removeprefix("# vlmlab "))
        assert cli([*args, "--no-analyze"]) == 0
        assert server.max_in_flight > 1  # requests are kept in flight together: the server's batch
    ledgers = list((tmp_path / config["out"]).rglob("ledger.jsonl"))
    assert len(ledgers) == 1  # priority 1: context-carry at temperature 0, one variant
    records = read_ledger(ledgers[0])
    assert len(records) == 6 and all(r["status"] == "ok" for r in records)
    assert {(r["emotion"], r["valence"], r["arousal"], r["logprob_source"]) for r in records} == {("happy", 7, 4, "raw")}
    assert all(r["digit_distribution"]["valence"]["probs"][6] > 0.8 for r in records)  # the served logprobs, read back
    assert server.chat_requests == 1 + 3 * 6  # preflight + emotion, valence, arousal per face
