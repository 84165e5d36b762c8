"""No "best" is bolded where the table shows a tie: every model at 0.0000 (untrained toy models,
empty captions), values that differ only below the shown digits, or a single ranked row.

Checked in a report written by the real `vlmlab caption report`, in Markdown and HTML.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli_support import run_cli
from vlmlab.report import Report, Table, render_html, render_markdown

KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")


def _bold_cells(markdown: str) -> list[str]:
    """Bold table cells (`| **0.5000** |`), not the bold table captions above the tables."""
    return re.findall(r"\| \*\*([^*|]+)\*\* (?=\|)", markdown)


def _model_folder(study: Path, name: str, scores: dict[str, float]) -> None:
    """A scored model folder as `caption run` leaves it (model.json, score/metrics.json)."""
    folder = study / f"{name}_img56_tok32"
    (folder / "score").mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps({"model": name, "status": "complete"}))
    mode = {**scores, "n": 4, "mean_prediction_tokens": 0.0, "mean_reference_tokens": 9.5, "token_ratio": 0.0,
            "empty_prediction_rate": 1.0, "error_predictions": 0}
    (folder / "score" / "metrics.json").write_text(json.dumps(
        {"headline_mode": "per-row", "status": "complete", "modes": {"per-row": mode, "grouped": mode}}))


@pytest.mark.parametrize("second", [0.0, 3e-7], ids=["all zero", "zero below the shown digits"])
def test_caption_report_bolds_no_best_on_a_zero_tie(second: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "toy-panorama"
    _model_folder(study, "tiny-a", {k: 0.0 for k in KEYS})
    _model_folder(study, "tiny-b", {k: second for k in KEYS})
    code, out, err = run_cli(["caption", "report", str(study)], capsys)
    assert code == 0, err
    markdown = (study / "report.md").read_text()
    assert "| tiny-a | 0.0000 |" in markdown and "| tiny-b | 0.0000 |" in markdown
    assert _bold_cells(markdown) == []
    page = (study / "report.html").read_text()
    assert "<td>0.0000</td>" in page and 'class="best"' not in page


def test_caption_report_still_bolds_a_real_best(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "toy-panorama"
    _model_folder(study, "tiny-a", {k: 0.0 for k in KEYS})
    _model_folder(study, "tiny-b", {k: 0.25 for k in KEYS})
    assert run_cli(["caption", "report", str(study)], capsys)[0] == 0
    markdown = (study / "report.md").read_text()
    # three tables rank the models: main metrics (5 columns, SPICE absent), the other mode, BLEU-1..4
    assert _bold_cells(markdown) == ["0.2500"] * (4 + 4 + 4)
    assert (study / "report.html").read_text().count('<td class="best">0.2500</td>') == 12


@pytest.mark.parametrize("rows", [
    [["a", 0.0], ["b", 0.0], ["c", 0.0]],          # every row at 0.0000
    [["a", 0.00004], ["b", 0.0]],                  # both read 0.0000
    [["a", 0.0], ["human", "0.9000"]],             # one ranked row (the human row is text, never ranked)
], ids=["all zero", "tie in the shown digits", "one ranked row"])
def test_no_best_without_a_shown_difference(rows: list[list[object]]) -> None:
    report = Report("r")
    report.table(Table(["model", "CIDEr"], rows, best={"CIDEr": "max"}))
    assert _bold_cells(render_markdown(report)) == []
    assert 'class="best"' not in render_html(report)


def test_best_is_decided_on_the_shown_digits() -> None:
    table = Table(["model", "CIDEr", "errors"], [["a", 0.12344, 3], ["b", 0.12341, 2]], best={"CIDEr": "max", "errors": "min"})
    assert table.best_rows() == {2: {1}}  # CIDEr: both show 0.1234, no best; errors: 2 < 3
    table.digits = 5
    assert table.best_rows() == {1: {0}, 2: {1}}  # at five digits 0.12344 > 0.12341 shows
