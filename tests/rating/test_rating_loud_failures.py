"""Loud failures of a rating study against HTTP servers: preflight, exit 3, retry, logprobs, dry run.

Every case runs the real CLI against a fake server on 127.0.0.1 and checks the exit code, the one
line on stderr and what was (not) written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vlmlab.rating.analysis import analyze_runs
from vlmlab.runs import read_ledger
from vlmlab.testing import serve
from rating_helpers import ScriptedRater
from rating_helpers import run_cli as cli

RUN = "scripted__default/context-carry__t0__r0"


def responder(rater: ScriptedRater, logprobs: bool = True):
    def respond(conversation, params):
        from vlmlab.models.base import GenerationRequest

        req = GenerationRequest(id="x", conversation=conversation, temperature=params["temperature"] or 0.0, seed=params["seed"],
                                top_logprobs=params.get("top_logprobs") or 0)
        result = rater.generate([req])[0]
        return (result.text, result.logprobs) if logprobs else result.text

    return respond


def write_study(path: Path, ratings: Path, out: Path, url: str, *, kind: str = "openai", ref: str = "fake", capture: dict | None = None,
                options: dict | None = None, modes: tuple[str, ...] = ("context-carry",)) -> Path:
    config = {
        "out": str(out),
        "data": {"ratings": str(ratings)},
        "models": [{"name": "scripted", "ref": ref, "kind": kind, "base_url": url,
                    "variants": [{"name": "default", "options": {"backoff_base": 0.001, "timeout": 5, "max_retries": 1, **(options or {})}}]}],
        "conditions": {"modes": list(modes), "temperatures": [0.0], "repeats": 1},
        "capture": capture or {"top_logprobs": 5},
        "batch_size": 8,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def test_model_name_typo_is_one_line_before_anything_is_written(faces, tmp_path, capsys):
    ratings, truth = faces
    with serve(responder(ScriptedRater(truth)), api="openai", model="qwen2-vl") as server:
        config = write_study(tmp_path / "s.yaml", ratings, tmp_path / "out", server.url, ref="qwen2vl")
        assert cli(["rating", "run", str(config)]) == 2
        assert server.chat_requests == 0
    line = one_error_line(capsys)
    assert "does not serve model 'qwen2vl' (it lists: qwen2-vl)" in line
    assert not (tmp_path / "out").exists()


def test_wrong_url_answering_404_is_one_line_exit_2(faces, tmp_path, capsys):
    ratings, truth = faces
    with serve(responder(ScriptedRater(truth)), api="openai") as server:
        wrong = server.url.replace("/v1", "/v2")  # every route 404s
        config = write_study(tmp_path / "s.yaml", ratings, tmp_path / "out", wrong)
        assert cli(["rating", "run", str(config)]) == 2
    line = one_error_line(capsys)
    assert "refused a test request with an image" in line and "HTTP 404" in line
    assert not (tmp_path / "out").exists()


def test_unreachable_server_is_one_line_exit_2(faces, tmp_path, capsys):
    ratings, _ = faces
    config = write_study(tmp_path / "s.yaml", ratings, tmp_path / "out", "http://127.0.0.1:9/v1")
    assert cli(["rating", "run", str(config)]) == 2
    assert "cannot reach the openai server at http://127.0.0.1:9/v1" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_every_item_failing_exits_3_then_a_fixed_server_resumes_without_overwrite(faces, tmp_path, capsys):
    ratings, truth = faces
    rater = ScriptedRater(truth, fp_b=0.0)
    good = responder(rater)

    def broken(conversation, params):
        if conversation[-1].text.startswith("Reply"):
            return good(conversation, params)  # the preflight passes; the items fail
        raise RuntimeError("CUDA out of memory")

    config = tmp_path / "s.yaml"
    with serve(broken, api="openai") as server:
        write_study(config, ratings, tmp_path / "out", server.url)
        assert cli(["rating", "run", str(config), "--no-analyze"]) == 3
    err = capsys.readouterr().err
    assert f"{RUN}: {len(truth)}/{len(truth)} items failed (every item failed)" in err
    assert f"{len(truth)} x HTTP 500: responder raised RuntimeError: CUDA out of memory; gave up after 2 attempts" in err
    info = json.loads((tmp_path / "out" / RUN / "run.json").read_text())
    assert info["status"] == "degraded" and info["item_status"] == {"error": len(truth)}

    # the fixed server listens on another port, with another timeout: no --overwrite needed
    with serve(good, api="openai") as server:
        write_study(config, ratings, tmp_path / "out", server.url, options={"timeout": 7, "max_concurrency": 2})
        assert cli(["rating", "run", str(config), "--no-analyze"]) == 0
        assert server.answered == 1 + 3 * len(truth)  # preflight + three steps of every failed item
    records = read_ledger(tmp_path / "out" / RUN / "ledger.jsonl")
    assert len(records) == len(truth) and all(r["status"] == "ok" for r in records)
    snapshot = yaml.safe_load((tmp_path / "out" / RUN / "config.yaml").read_text())
    assert snapshot["model"]["base_url"] == server.url and snapshot["variant"]["options"]["timeout"] == 7

    # a third run has nothing left to do: no request at all, even to a stopped server
    write_study(config, ratings, tmp_path / "out", "http://127.0.0.1:9/v1")
    assert cli(["rating", "run", str(config), "--no-analyze"]) == 0


def test_half_failing_with_one_error_exits_3_and_keep_errors_keeps_them(faces, tmp_path, capsys):
    ratings, truth = faces
    rater = ScriptedRater(truth, fp_b=0.0)
    good = responder(rater)
    bad_ids = sorted(truth)[: len(truth) * 3 // 4]

    def flaky(conversation, params):
        images = conversation[0].images or conversation[-1].images
        if images and images[0].load().getpixel((0, 0))[0] - 1 in {int(i[4:]) for i in bad_ids}:
            raise RuntimeError("model overloaded")
        return good(conversation, params)

    config = tmp_path / "s.yaml"
    with serve(flaky, api="openai") as server:
        write_study(config, ratings, tmp_path / "out", server.url)
        assert cli(["rating", "run", str(config), "--no-analyze"]) == 3
        err = capsys.readouterr().err
        assert f"{len(bad_ids)}/{len(truth)} items failed (75% failed with the same error, more than 50%)" in err
        requests_before = server.answered
        assert cli(["rating", "run", str(config), "--no-analyze", "--keep-errors"]) == 3
        assert server.answered == requests_before  # kept errors are not retried: nothing to do, no preflight
        capsys.readouterr()
        # a user who accepts up to 80% failures gets exit 0 and a warning
        assert cli(["rating", "run", str(config), "--no-analyze", "--keep-errors", "--max-error-share", "0.8"]) == 0
    assert f"warning: {RUN}: {len(bad_ids)}/{len(truth)} items failed (retried on the next run)" in capsys.readouterr().err


def test_server_without_logprobs_is_recorded_warned_and_reported(faces, tmp_path, capsys):
    ratings, truth = faces
    with serve(responder(ScriptedRater(truth, fp_b=0.0), logprobs=False), api="openai") as server:
        config = write_study(tmp_path / "s.yaml", ratings, tmp_path / "out", server.url)
        assert cli(["rating", "run", str(config), "--no-analyze"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {RUN}: logprobs unavailable (server returned none)" in err
    info = json.loads((tmp_path / "out" / RUN / "run.json").read_text())
    assert info["logprobs"] == "unavailable (server returned none)" and info["status"] == "complete"
    paths = analyze_runs([tmp_path / "out" / RUN], tmp_path / "analysis", n_boot=20)
    report = paths["md"].read_text()
    assert "– (logprobs unavailable (server returned none))" in report


def test_require_logprobs_fails_at_the_preflight(faces, tmp_path, capsys):
    ratings, truth = faces
    with serve(responder(ScriptedRater(truth), logprobs=False), api="openai") as server:
        config = write_study(tmp_path / "s.yaml", ratings, tmp_path / "out", server.url,
                             capture={"top_logprobs": 5, "require_logprobs": True})
        assert cli(["rating", "run", str(config)]) == 2
        assert server.answered == 1
    assert "returned no logprobs, and capture.require_logprobs is set" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kind", "capture", "modes", "message"),
    [
        ("ollama", {"top_logprobs": 50}, ("context-carry",), "top_logprobs 50 is more than the ollama backend accepts (20)"),
        ("openai", {"top_logprobs": 5, "hidden_layers": [-1]}, ("context-carry",), "hidden states (hidden_layers [-1]) are asked of a openai backend"),
        ("hf", {"hidden_layers": [-1], "hidden_pool": "image"}, ("context-carry", "text-only"), "hidden_pool: image needs image tokens, but text-only prompts"),
    ],
)
def test_contradictions_are_caught_at_load(faces, tmp_path, capsys, kind, capture, modes, message):
    ratings, _ = faces
    config = write_study(tmp_path / "s.yaml", ratings, tmp_path / "out", "http://127.0.0.1:9", kind=kind, capture=capture, modes=modes)
    if kind == "hf":
        data = yaml.safe_load(config.read_text())
        data["models"][0] = {"name": "m", "ref": "tiny-qwen2-vl"}
        config.write_text(yaml.safe_dump(data))
    assert cli(["rating", "run", str(config), "--dry-run"]) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_condition_identity_ignores_connection_fields_and_require_logprobs(faces, tmp_path):
    from vlmlab.config import config_hash
    from vlmlab.rating.conditions import expand_conditions
    from vlmlab.rating.config import RatingConfig
    from vlmlab.rating.run import _volatile
    from vlmlab.runs import check_folder

    ratings, _ = faces
    base = yaml.safe_load(write_study(tmp_path / "a.yaml", ratings, tmp_path / "out", "http://h:1/v1").read_text())
    [condition] = expand_conditions(RatingConfig.model_validate(base))
    data = condition.config(RatingConfig.model_validate(base))
    digest = check_folder(tmp_path / "none", data, _volatile(condition))[0]
    without = {**data, "capture": {k: v for k, v in data["capture"].items() if k != "require_logprobs"}}
    without = {**without, "model": {**{k: v for k, v in data["model"].items() if k != "base_url"}, "options": {}}}  # the resolved block
    without = {**without, "variant": {**data["variant"], "options": {}}}
    assert digest == config_hash(without)  # identity: everything but how the server is reached
