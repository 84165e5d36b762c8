"""An ICL stage whose items mostly fail ends with exit code 3 and prints the failures counted by message
(the shared health rule, `vlmlab.health`); a stage where a few fail warns and exits 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from icl_toy import data_config
from vlmlab.cli import main
from vlmlab.models.base import GenerationResult, ScoreResult


class Overloaded:
    """The toy backend, except that requests about the `failing` anchors / queries fail as an overloaded server's do."""

    supports_score = True

    def __init__(self, inner, failing: set[str]) -> None:
        self.inner, self.failing = inner, failing

    def _fails(self, request_id: str) -> bool:
        return any(request_id.startswith(f"{q}/") or request_id.endswith(f"|{q}") for q in self.failing)

    def score(self, requests):
        return [ScoreResult(id=r.id, status="error", error="HTTP 503: overloaded") if self._fails(r.id) else res
                for r, res in zip(requests, self.inner.score(requests))]

    def generate(self, requests):
        return [GenerationResult(id=r.id, status="error", error="HTTP 503: overloaded") if self._fails(r.id) else res
                for r, res in zip(requests, self.inner.generate(requests))]


def _cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), capsys.readouterr().err


def test_beam_stage_with_most_anchors_failing_exits_3_with_counts(tmp_path: Path, candidates_run: Path, toy_backend, monkeypatch, capsys) -> None:
    import vlmlab.icl.stages as stages

    anchors = [json.loads(line)["id"] for line in (candidates_run / "candidates.jsonl").read_text().splitlines()]
    cfg = tmp_path / "beam.yaml"
    cfg.write_text(yaml.safe_dump({"candidates": str(candidates_run), "scorer": {"ref": "x"}, "beam_size": 2, "shots": 2}))
    monkeypatch.setattr(stages, "load_backend", lambda _: Overloaded(toy_backend, set(anchors[:7])))
    monkeypatch.setattr(stages, "preflight_model", lambda *a, **k: None)  # the scripted backend has no checkpoint
    code, err = _cli(["icl", "beam", cfg, "--out", tmp_path / "beam"], capsys)
    assert code == 3, err
    assert "7/10 items failed (70% failed with the same error, more than 50%)" in err
    assert "7 x scoring failed: HTTP 503: overloaded" in err
    assert json.loads((tmp_path / "beam" / "metrics.json").read_text())["errors"] == 7
    # a re-run retries the failed anchors; with the server back, the stage ends well
    monkeypatch.setattr(stages, "load_backend", lambda _: toy_backend)
    monkeypatch.setattr(stages, "preflight_model", lambda *a, **k: None)  # the scripted backend has no checkpoint
    code, err = _cli(["icl", "beam", cfg, "--out", tmp_path / "beam"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "beam" / "metrics.json").read_text())["ok"] == 10


def test_eval_stage_exit_code_follows_the_health_rule(tmp_path: Path, index_run: Path, toy_test, toy_backend, monkeypatch, capsys) -> None:
    import vlmlab.icl.eval_stage as eval_stage
    from vlmlab.icl.data import load_split

    qids = load_split(data_config(toy_test)).ids
    test = {k: str(v) for k, v in data_config(toy_test).model_dump().items()}
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(yaml.safe_dump({"index": str(index_run), "test": test, "model": {"ref": "x"}, "methods": ["zero-shot", "random"],
                                   "shots": [1], "n_boot": 20}))
    for name, failing, expected in (("most", qids[:12], 3), ("few", qids[:2], 0)):  # 18 questions x 2 methods
        monkeypatch.setattr(eval_stage, "load_backend", lambda _, f=set(failing): Overloaded(toy_backend, f))
        monkeypatch.setattr(eval_stage, "preflight_model", lambda *a, **k: None)  # the scripted backend has no checkpoint
        code, err = _cli(["icl", "eval", cfg, "--out", tmp_path / name], capsys)
        assert code == expected, err
        n_failed = 2 * len(failing)
        if expected == 3:
            assert f"{n_failed}/36 items failed" in err and f"{n_failed} x HTTP 503: overloaded" in err
        else:
            assert f"{n_failed}/36 items failed (retried on the next run)" in err
        cells = json.loads((tmp_path / name / "metrics.json").read_text())["cells"]
        assert sum(c["errors"] for c in cells) == n_failed
