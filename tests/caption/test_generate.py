"""Generation through the ledger: empty predictions counted, listed, degraded, warned; resume skips done items."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

import pytest

from vlmlab.caption.data import build_conversation
from vlmlab.caption.generate import EMPTY_HINT, PromptItem, generate_predictions
from vlmlab.models.base import GenerationRequest, GenerationResult, Turn
from vlmlab.runs import Run


class ScriptedBackend:
    """A Backend whose answers are given per id ("" -> empty, None -> error); records what it was asked."""

    name = "scripted"
    supports_score = False

    def __init__(self, answers: dict[str, str | None]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append([r.id for r in requests])
        out = []
        for r in requests:
            text = self.answers[r.id]
            if text is None:
                out.append(GenerationResult(id=r.id, status="error", error="CUDA out of memory (scripted)"))
            else:
                out.append(GenerationResult(id=r.id, status=GenerationResult.status_for(text), text=text, generated_tokens=3))
        return out

    def score(self, requests):  # pragma: no cover - not used
        raise NotImplementedError


def items(n: int) -> list[PromptItem]:
    return [PromptItem(id=f"p{i}", image=f"panos/{i}.png", query="Describe the image.", references=[f"ref {i}", f"other {i}"],
                       conversation=[Turn("user", ["Describe the image."])]) for i in range(n)]


def test_empty_predictions_are_counted_listed_and_degrade_the_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    answers = {"p0": "a red circle", "p1": "   ", "p2": "a blue square", "p3": None, "p4": ""}
    run = Run.open(tmp_path / "gen", {"x": 1}, stage="caption-generate")
    summary = generate_predictions(ScriptedBackend(answers), items(5), run, batch_size=2)
    assert (summary.n, summary.ok, summary.empty, summary.error) == (5, 2, 2, 1)
    assert summary.empty_ids == ["p1", "p4"] and summary.error_ids == ["p3"] and summary.status == "degraded"
    err = capsys.readouterr().err
    assert "2 of 5 predictions are EMPTY" in err and "p1, p4" in err and "EOS" in err and "FAILED" in err
    info = json.loads((run.dir / "generation.json").read_text())
    assert info["status"] == "degraded" and info["empty_ids"] == ["p1", "p4"] and info["hint"] == EMPTY_HINT
    assert info["errors"] == {"p3": "CUDA out of memory (scripted)"}
    with open(run.dir / "predictions.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["id"] for r in table] == ["p0", "p1", "p2", "p3", "p4"]
    assert [r["status"] for r in table] == ["ok", "empty", "ok", "error", "empty"]
    assert table[1]["prediction"] == "" and table[3]["prediction"] == ""  # never an error string as a caption
    assert json.loads(table[0]["references"]) == ["ref 0", "other 0"] and table[0]["image"] == "panos/0.png"


def test_a_clean_run_is_complete_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = Run.open(tmp_path / "gen", {"x": 1})
    summary = generate_predictions(ScriptedBackend({f"p{i}": f"caption {i}" for i in range(3)}), items(3), run)
    assert summary.status == "complete" and summary.empty_rate == 0
    assert "WARNING" not in capsys.readouterr().err


def test_resume_generates_only_missing_items(tmp_path: Path) -> None:
    answers = {f"p{i}": f"caption {i}" for i in range(5)}
    run = Run.open(tmp_path / "gen", {"x": 1})
    for i in (0, 1, 3):  # as if a crash happened after these were written
        run.append(f"p{i}", {"image": "x", "query": "q", "prediction": f"caption {i}", "raw_text": f"caption {i}", "status": "ok",
                             "error": None, "references": [f"ref {i}", f"other {i}"], "generated_tokens": 2})
    with open(run.ledger_path, "a") as fh:
        fh.write('{"id": "p2", "config_ha')  # torn last line
    resumed = Run.open(tmp_path / "gen", {"x": 1})
    backend = ScriptedBackend(answers)
    summary = generate_predictions(backend, items(5), resumed, batch_size=8)
    assert backend.calls == [["p2", "p4"]] and summary.ok == 5
    assert [r["id"] for r in Run.open(tmp_path / "gen", {"x": 1}).records()] == ["p0", "p1", "p3", "p2", "p4"]
    with open(resumed.dir / "predictions.csv", newline="") as fh:
        assert [r["id"] for r in csv.DictReader(fh)] == ["p0", "p1", "p2", "p3", "p4"]  # test order, not ledger order


def test_conversation_puts_images_first_then_the_prompt(colour_image_factory) -> None:
    img = colour_image_factory((255, 0, 0))
    conv = build_conversation([img, img], "location", template="Query: {query}")
    assert len(conv) == 1 and conv[0].role == "user" and conv[0].content == (img, img, "Query: location")
    assert build_conversation([img], "", empty_query="Describe it.")[0].content[-1] == "Describe it."
