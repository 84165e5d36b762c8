"""Items that ended in error are retried on the next open; connection keys resume; the degraded rule."""

from __future__ import annotations

import pytest
import yaml

from vlmlab.errors import ConfigError, RunError
from vlmlab.health import FailurePolicy, assess
from vlmlab.runs import Run, read_ledger

CONFIG = {"stage": "toy", "model": {"base_url": "http://a:1/v1", "ref": "m"}, "options": {"timeout": 5, "top_k": 3}}
VOLATILE = ("model.base_url", "options.timeout")


def test_error_items_are_pending_again_and_replaced(tmp_path):
    run = Run.open(tmp_path / "r", CONFIG)
    run.append("a", {"status": "ok", "value": 1})
    run.append("b", {"status": "error", "error": "HTTP 500"})
    run.append("c", {"status": "empty"})
    again = Run.open(tmp_path / "r", CONFIG)
    assert again.retried == 1 and again.done_ids() == {"a", "c"}
    assert again.pending(["a", "b", "c"], key=lambda x: x) == ["b"]
    assert [r["id"] for r in read_ledger(tmp_path / "r" / "ledger.jsonl")] == ["a", "c"]
    again.append("b", {"status": "ok", "value": 2})
    assert [r["id"] for r in Run.open(tmp_path / "r", CONFIG).records()] == ["a", "c", "b"]


def test_keep_errors_keeps_them_finished(tmp_path):
    run = Run.open(tmp_path / "r", CONFIG)
    run.append("b", {"status": "error", "error": "HTTP 500"})
    kept = Run.open(tmp_path / "r", CONFIG, retry_errors=False)
    assert kept.done_ids() == {"b"} and kept.retried == 0
    assert len(read_ledger(tmp_path / "r" / "ledger.jsonl")) == 1


def test_volatile_keys_resume_and_are_recorded(tmp_path):
    run = Run.open(tmp_path / "r", CONFIG, volatile=VOLATILE)
    run.append("a", {"status": "ok"})
    moved = {**CONFIG, "model": {"base_url": "http://b:2/v1", "ref": "m"}, "options": {"timeout": 60, "top_k": 3}}
    resumed = Run.open(tmp_path / "r", moved, volatile=VOLATILE)
    assert resumed.done_ids() == {"a"} and resumed.config_hash == run.config_hash
    snapshot = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert snapshot["model"]["base_url"] == "http://b:2/v1" and snapshot["options"]["timeout"] == 60
    changed = {**moved, "options": {"timeout": 60, "top_k": 4}}
    with pytest.raises(RunError, match=r"differs in: options\.top_k\)"):
        Run.open(tmp_path / "r", changed, volatile=VOLATILE)
    Run.open(tmp_path / "plain", CONFIG)
    with pytest.raises(RunError, match=r"differs in: model\.base_url, options\.timeout\)"):  # without volatile keys they are identity
        Run.open(tmp_path / "plain", moved)


def test_shard_merge_takes_the_retried_record(tmp_path):
    run = Run.open(tmp_path / "r", CONFIG)
    run.append("a", {"status": "error", "error": "x"})
    run.append("b", {"status": "ok"})
    shard = Run.open(tmp_path / "r", CONFIG, shard=(1, 2))
    assert shard.done_ids() == {"b"}
    shard.append("a", {"status": "ok", "value": 3})
    merged = shard.merge_shards(["a", "b"])
    assert [(r["id"], r["status"]) for r in merged] == [("a", "ok"), ("b", "ok")]


def records(statuses_and_errors):
    return [{"id": str(i), "status": s, "error": e} for i, (s, e) in enumerate(statuses_and_errors)]


def test_degraded_rule():
    every = assess(records([("error", "HTTP 400: no such model")] * 4), "r")
    assert every.degraded and every.reason == "every item failed" and every.by_message == {"HTTP 400: no such model": 4}
    same = assess(records([("error", "boom")] * 3 + [("ok", None)] * 2), "r")
    assert same.degraded and same.reason == "60% failed with the same error, more than 50%"
    mixed = assess(records([("error", "a"), ("error", "b"), ("empty", None), ("ok", None), ("ok", None)]), "r")
    assert not mixed.degraded and mixed.failed == 2 and mixed.by_message == {"a": 1, "b": 1}  # empty is an answer
    assert not assess(records([("empty", None)] * 3), "r").degraded
    half = assess(records([("error", "a")] * 2 + [("ok", None)] * 2), "r")
    assert not half.degraded  # exactly 50% with one error is not "over 50%"
    strict = assess(records([("error", "a"), ("ok", None), ("ok", None), ("ok", None)]), "r", FailurePolicy(max_error_share=0.2))
    assert strict.degraded and strict.reason == "25% failed, more than the allowed 20%"
    lenient = assess(records([("error", "a")] * 4), "r", FailurePolicy(max_error_share=1.0))
    assert not lenient.degraded
    assert assess([], "r").degraded is False
    assert every.lines() == ["r: 4/4 items failed (every item failed)", "  4 x HTTP 400: no such model"]
    with pytest.raises(ConfigError, match="between 0 and 1"):
        FailurePolicy(max_error_share=1.5)


def test_keep_errors_environment_reaches_run_open(tmp_path, monkeypatch):
    from vlmlab.cli.outcome import keep_errors
    from vlmlab.runs import KEEP_ERRORS_ENV

    monkeypatch.delenv(KEEP_ERRORS_ENV, raising=False)
    Run.open(tmp_path / "r", CONFIG).append("b", {"status": "error", "error": "x"})
    with keep_errors(True):
        assert Run.open(tmp_path / "r", CONFIG).done_ids() == {"b"}
    import os

    assert KEEP_ERRORS_ENV not in os.environ  # restored after the command
    assert Run.open(tmp_path / "r", CONFIG).done_ids() == set()
