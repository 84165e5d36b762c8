"""Report rendering: escaping of data, best-per-column marking, JSON round trip, real browser render."""

from __future__ import annotations

import json
import os

import pytest

from vlmlab.report import Report, Table, render_html, render_markdown, write_report
from vlmlab.report.browser import dump_dom, find_chromium, screenshot
from vlmlab.report.document import report_from_json
from vlmlab.report.plots import bar_chart, confusion_matrix_plot, scatter_plot

EVIL_CAPTION = '<script>document.body.setAttribute("data-pwned","script")</script>'
EVIL_IMG = '<img src=x onerror="document.body.setAttribute(\'data-pwned\',\'img\')">'


def sample_report() -> Report:
    report = Report("Toy | study")
    report.heading("Captions")
    report.text(f"model said: {EVIL_CAPTION}")
    report.table(
        Table(
            ["model", "CIDEr", "empty rate"],
            [["a", 0.5, 0.1], ["b", 0.7, 0.0], [EVIL_IMG, 0.7, None]],
            caption="results",
            best={"CIDEr": "max", "empty rate": "min"},
        )
    )
    report.figure(bar_chart(["a", "b"], {"CIDEr": [0.5, 0.7]}, title="CIDEr"), "cider", caption="CIDEr by model")
    report.figure(confusion_matrix_plot([[3, 1], [0, 4]], ["x", "y"]), "confusion")
    report.figure(scatter_plot([1, 2, 3], [1, 2, 4]), "scatter")
    return report


def test_markdown_escapes_and_marks_best():
    md = render_markdown(sample_report())
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "<img" not in md and "&lt;img" in md
    assert "| **0.0000** |" in md  # the one lowest empty rate
    assert "**0.7000**" not in md  # CIDEr 0.7 is a tie between two rows: no best
    assert "Toy \\| study" in md


def test_html_escapes_and_embeds_figures():
    page = render_html(sample_report())
    assert "<script>" not in page and "<img src=x" not in page
    assert page.count('src="data:image/png;base64,') == 3
    assert 'class="best"' in page
    assert "Content-Security-Policy" in page


def test_write_and_reload(tmp_path):
    paths = write_report(sample_report(), tmp_path)
    assert all(p.exists() for p in paths.values())
    assert (tmp_path / "cider.png").read_bytes()[:4] == b"\x89PNG"
    again = report_from_json(json.loads(paths["json"].read_text()), tmp_path)
    assert render_html(again) == paths["html"].read_text()


def test_rows_must_match_columns():
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        Table(["a", "b"], [[1]])


def _need_chromium():
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; scripts/test.sh installs Debian's chromium package")
        pytest.skip("chromium not installed")


def test_browser_renders_tables_images_and_never_runs_data(tmp_path):
    _need_chromium()
    paths = write_report(sample_report(), tmp_path)
    dom = dump_dom(paths["html"])
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "&lt;script&gt;" in dom and "&lt;img src=x" in dom
    assert dom.count("<table") == 1 and dom.count('src="data:image/png') == 3
    png = screenshot(paths["html"], tmp_path / "report.png", height=1600)
    data = png.read_bytes()
    assert data[:4] == b"\x89PNG" and len(data) > 20_000
