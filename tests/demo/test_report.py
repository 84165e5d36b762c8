"""The demo report in a real browser: tables and figures present, data and model text escaped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vlmlab.demo.summary import summary_rows, write_demo_report
from vlmlab.report import Report, Table, write_report
from vlmlab.report.browser import dump_dom, find_chromium
from vlmlab.report.plots import bar_chart

EVIL_CAPTION = '<script>document.body.setAttribute("data-pwned","script")</script>'
EVIL_IMG = '<img src=x onerror="document.body.setAttribute(\'data-pwned\',\'img\')">'


def _need_chromium() -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; scripts/test.sh installs Debian's chromium package")
        pytest.skip("chromium not installed")


def _summary() -> dict:
    return {
        "plan": {"quick": True, "seed": 0},
        "caption": {"mode": "grouped", "before": {"CIDEr": 0.1, "BLEU-4": 0.01}, "after": {"CIDEr": 1.2, "BLEU-4": 0.3},
                    "human": {"CIDEr": 0.9}},
        "icl": {"accuracy": {"zero-shot": {"0": {"accuracy": 0.3}}, "random": {"2": {"accuracy": 0.4}},
                             "selector": {"2": {"accuracy": 0.8}}},
                "infoscore": {"anchors": 3, "beam_accuracy": 0.9, "random_accuracy": 0.4}},
        "rating": {"kappa": 0.7, "valence_r": 0.9, "arousal_r": 0.8,
                   "effects": [{"effect": EVIL_IMG, "planted": -0.5, "recovered": -0.4, "low": -0.7, "high": -0.1}]},
    }


def fake_demo_folder(out: Path) -> Path:
    """A demo folder whose study report carries a model caption with markup in it."""
    study = Report("Caption study: demo")
    study.text(f"an example prediction: {EVIL_CAPTION}")
    study.table(Table(["model", "prediction", "CIDEr"], [[EVIL_IMG, EVIL_CAPTION, 0.5], ["after", "a red circle", 1.2]],
                      best={"CIDEr": "max"}))
    study.figure(bar_chart(["before", "after"], {"CIDEr": [0.1, 1.2]}), "caption_scores")
    write_report(study, out / "caption" / "demo")
    return out


def test_summary_rows_name_every_study() -> None:
    rows = summary_rows(_summary())
    assert {r[0] for r in rows} == {"caption", "icl", "rating"}
    assert ["caption", "CIDEr (grouped) before -> after LoRA fine-tuning", "0.100 -> 1.200"] in rows


def test_demo_report_escapes_data_in_a_browser(tmp_path: Path) -> None:
    _need_chromium()
    out = fake_demo_folder(tmp_path / "demo")
    paths = write_demo_report(out, _summary(), {"stages": {"data": 1.0}, "total_seconds": 1.0}, png=True)
    md = paths["md"].read_text(encoding="utf-8")
    assert "<script>" not in md and "<img src=x" not in md
    dom = dump_dom(paths["html"])
    body_tag = dom.split("<body", 1)[1].split(">", 1)[0]
    assert "data-pwned" not in body_tag  # neither the script nor the onerror handler ran
    assert dom.count("&lt;script&gt;") >= 2 and dom.count("&lt;img src=x") >= 2  # shown as text, summary and study
    assert dom.count("<table") >= 3 and dom.count('src="data:image/png') == 1
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_full_demo_report_renders(demo_result, demo_folder_lock) -> None:
    _need_chromium()
    with demo_folder_lock():  # the other worker's resume test re-runs the demo in this folder
        _check_full_report(demo_result.out)


def _check_full_report(out) -> None:
    for name in ("report.md", "report.html", "report.png", "timings.json", "summary.json"):
        assert (out / name).is_file(), name
    dom = dump_dom(out / "report.html")
    assert "Summary" in dom and "Time per stage" in dom
    for heading in ("Caption study", "ICL study", "Rating study"):
        assert heading in dom, heading
    assert dom.count("<table") >= 10
    assert dom.count('src="data:image/png') >= 4  # caption bars, ICL accuracy, rating plots
    assert "<script" not in dom.split("<body", 1)[1]
    for study in ("caption/demo", "icl", "rating/analysis"):
        assert (out / study / "report.html").is_file(), study
    timings = json.loads((out / "timings.json").read_text())
    expected = {"data", "caption", "icl:index", "icl:candidates", "icl:beam", "icl:rl-data", "icl:train", "icl:eval",
                "rating", "rating:analysis", "report"}
    assert expected <= set(timings["stages"])
