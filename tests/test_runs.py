"""Run folders: resume, torn lines, config conflicts, shards — with a real process killed by SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vlmlab.errors import RunError
from vlmlab.runs import Run, find_runs, read_ledger, summarize_run

WORKER = textwrap.dedent(
    """
    import hashlib, sys, time
    from pathlib import Path
    from vlmlab.runs import Run

    folder, n = Path(sys.argv[1]), int(sys.argv[2])
    run = Run.open(folder, {"stage": "toy", "n": n, "salt": "abc"}, stage="toy")
    for i in run.pending(range(n), key=lambda i: f"item-{i:03d}"):
        value = hashlib.sha256(f"{i}".encode()).hexdigest()[:16]
        time.sleep(0.01)
        run.append(f"item-{i:03d}", {"value": value, "status": "ok"})
        print(i, flush=True)
    run.write_metrics({"n": len(run.records())})
    run.finish("complete")
    print("done", flush=True)
    """
)


def run_worker(folder: Path, n: int, kill_after: int | None = None) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(folder), str(n)], stdout=subprocess.PIPE, text=True
    )
    if kill_after is None:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        return out
    seen = 0
    assert proc.stdout is not None
    for _line in proc.stdout:
        seen += 1
        if seen >= kill_after:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return ""


def test_resume_after_sigkill_equals_uninterrupted(tmp_path):
    reference = tmp_path / "reference"
    run_worker(reference, 40)
    resumed = tmp_path / "resumed"
    for kill_after in (1, 7, 23):
        run_worker(resumed, 40, kill_after=kill_after)
    out = run_worker(resumed, 40)
    assert "done" in out
    assert (resumed / "ledger.jsonl").read_bytes() == (reference / "ledger.jsonl").read_bytes()
    assert json.loads((resumed / "metrics.json").read_text()) == {"n": 40}


def test_torn_last_line_is_dropped_and_file_repaired(tmp_path):
    run = Run.open(tmp_path / "r", {"a": 1})
    run.append("x", {"v": 1})
    run.append("y", {"v": 2})
    ledger = tmp_path / "r" / "ledger.jsonl"
    good = ledger.read_bytes()
    ledger.write_bytes(good + b'{"id": "z", "config_ha')
    resumed = Run.open(tmp_path / "r", {"a": 1})
    assert resumed.done_ids() == {"x", "y"}
    assert ledger.read_bytes() == good
    resumed.append("z", {"v": 3})
    assert [r["id"] for r in read_ledger(ledger)] == ["x", "y", "z"]


def test_complete_json_without_newline_counts_as_torn(tmp_path):
    run = Run.open(tmp_path / "r", {"a": 1})
    run.append("x", {"v": 1})
    ledger = tmp_path / "r" / "ledger.jsonl"
    ledger.write_bytes(ledger.read_bytes() + json.dumps({"id": "y", "config_hash": run.config_hash}).encode())
    assert Run.open(tmp_path / "r", {"a": 1}).done_ids() == {"x"}


def test_corrupt_middle_line_is_an_error(tmp_path):
    run = Run.open(tmp_path / "r", {"a": 1})
    run.append("x", {"v": 1})
    ledger = tmp_path / "r" / "ledger.jsonl"
    ledger.write_text("garbage\n" + ledger.read_text())
    with pytest.raises(RunError, match="line 1 is not valid JSON"):
        Run.open(tmp_path / "r", {"a": 1})


def test_different_config_is_refused_unless_overwrite(tmp_path):
    run = Run.open(tmp_path / "r", {"model": {"name": "a"}, "n": 1})
    run.append("x", {"v": 1})
    with pytest.raises(RunError, match=r"different config .*differs in: model.name.*--overwrite"):
        Run.open(tmp_path / "r", {"model": {"name": "b"}, "n": 1})
    fresh = Run.open(tmp_path / "r", {"model": {"name": "b"}, "n": 1}, overwrite=True)
    assert fresh.done_ids() == set()


def test_ledger_lines_carry_id_and_config_hash(tmp_path):
    run = Run.open(tmp_path / "r", {"a": 1})
    run.append("x", {"v": 1})
    line = json.loads((tmp_path / "r" / "ledger.jsonl").read_text())
    assert line == {"id": "x", "config_hash": run.config_hash, "v": 1}
    with pytest.raises(ValueError):
        run.append("x", {"v": 2})


def test_shards_merge_to_single_process_ledger(tmp_path):
    ids = [f"q{i}" for i in range(10)]
    single = Run.open(tmp_path / "single", {"a": 1})
    for i in ids:
        single.append(i, {"v": i})
    for rank in range(2):
        shard = Run.open(tmp_path / "multi", {"a": 1}, shard=(rank, 2))
        for i in ids[rank::2]:
            shard.append(i, {"v": i})
    merged = Run.open(tmp_path / "multi", {"a": 1})
    merged.merge_shards(order=ids)
    assert (tmp_path / "multi" / "ledger.jsonl").read_bytes() == (tmp_path / "single" / "ledger.jsonl").read_bytes()
    assert not list((tmp_path / "multi").glob("ledger.rank*"))


def test_find_and_summarize(tmp_path):
    run = Run.open(tmp_path / "a" / "stage1", {"a": 1}, stage="icl.beam")
    run.append("x", {"status": "ok"})
    run.append("y", {"status": "error", "error": "boom"})
    run.write_metrics({"acc": 0.5})
    run.finish("degraded")
    assert find_runs(tmp_path) == [tmp_path / "a" / "stage1"]
    s = summarize_run(tmp_path / "a" / "stage1")
    assert s["stage"] == "icl.beam" and s["status"] == "degraded" and s["items"] == 2
    assert s["item_status"] == {"ok": 1, "error": 1} and s["metrics"] == {"acc": 0.5}
    with pytest.raises(RunError, match="not a run folder"):
        summarize_run(tmp_path)
