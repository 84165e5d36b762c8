"""The combined `runs report` rendered by headless Chromium: ICL accuracy table with CIs, caption
metrics on separate axes, the stage reports untouched, and a screenshot of the whole page."""

from __future__ import annotations

import os
from pathlib import Path

import PIL.Image
import pytest

from vlmlab.cli import main
from vlmlab.report.browser import dump_dom, find_chromium
from vlmlab.report.document import Report, write_report
from vlmlab.report.plots import panel_bar_chart
from vlmlab.runs import Run


def _need_chromium() -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; scripts/test.sh installs Debian's chromium package")
        pytest.skip("chromium not installed")


@pytest.mark.slow
def test_combined_report_in_a_browser(tmp_path: Path) -> None:
    _need_chromium()
    runs = tmp_path / "runs"
    for name, acc in (("eval-a", 0.48), ("eval-b", 0.71)):
        run = Run.open(runs / "icl" / name, {"name": name}, stage="icl-eval")
        run.append("q1", {"status": "ok"})
        cells = [{"method": m, "shots": 2, "accuracy": a, "ci_low": a - 0.1, "ci_high": a + 0.1, "n": 60}
                 for m, a in (("text", acc), ("random", 0.36))] * 20   # long: the page is taller than 2,400 px
        run.write_metrics({"cells": cells})
        (run.dir / "report.md").write_text(f"# {name} own report\n")
    study = runs / "caption" / "toy"
    study.mkdir(parents=True)
    caption = Report("Caption study: toy")
    caption.figure(panel_bar_chart(["zero-shot", "fine-tuned"], {"BLEU-4": [0.01, 0.2], "CIDEr": [0.04, 2.7]}),
                   "caption_scores.png", caption="one panel and y axis per metric")
    write_report(caption, study)

    with pytest.raises(SystemExit) as exc:
        main(["runs", "report", str(runs), "--png"])
    assert exc.value.code == 0
    assert (runs / "icl/eval-a/report.md").read_text() == "# eval-a own report\n"
    dom = dump_dom(runs / "combined-report.html")
    assert "<h2>icl/eval-b</h2>" in dom
    assert all(f"<th>{c}</th>" in dom for c in ("method", "accuracy", "ci_high", "ci_low", "n"))
    assert "<td>0.7100</td>" in dom and "<td>0.6100</td>" in dom and "<td>0.8100</td>" in dom
    assert "one panel and y axis per metric" in dom and dom.count("data:image/png") == 1
    with PIL.Image.open(runs / "combined-report.png") as im:
        assert im.size[0] == 1280 and im.size[1] > 2400          # the whole page, not the first 2,400 px
        bottom = im.convert("L").crop((0, im.size[1] - 8, im.size[0], im.size[1]))
        assert bottom.getextrema()[0] > 200                      # ends in blank space below the content
