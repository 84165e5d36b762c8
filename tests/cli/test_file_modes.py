"""Files written by real commands follow the user's umask: 0644 under 022 (colleagues on a shared
server can read results; they used to be 0600), 0600 under 077.

`test_cli_errors.py::test_files_follow_the_umask` checks the writer; this runs `icl index` and
`runs report`, whose outputs come from several writers (atomic JSON/text, the ledger, numpy).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from cli_support import run_cli
from vlmlab.toyworld import generate


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_run_outputs_and_reports_follow_the_umask(umask: int, mode: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "toy-vqa"
    generate("vqa", data, n=30, seed=0)
    config = tmp_path / "index.yaml"
    config.write_text(yaml.safe_dump({"support": {"questions": str(data / "train_questions.json"),
                                                  "annotations": str(data / "train_annotations.json"), "images": str(data)},
                                      "text_embedder": "bag-of-words", "image_embedder": "pixels"}))
    runs = tmp_path / "runs"
    old = os.umask(umask)
    try:
        assert run_cli(["icl", "index", str(config), "--out", str(runs / "index")], capsys)[0] == 0
        assert run_cli(["runs", "report", str(runs)], capsys)[0] == 0
    finally:
        os.umask(old)
    written = {p.relative_to(runs).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in runs.rglob("*") if p.is_file()}
    for name in ("index/metrics.json", "index/report.md", "index/run.json", "index/config.yaml", "index/ledger.jsonl",
                 "index/embeddings/ids.json", "combined-report.md", "combined-report.html"):
        assert written.pop(name) == mode, name
    assert written and set(written.values()) == {mode}, written  # and every other file too
