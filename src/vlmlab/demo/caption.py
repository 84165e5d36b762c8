"""The demo's caption study: the captioner-base toy model before and after LoRA fine-tuning.

`run_caption(config)` runs `vlmlab.caption.run_study` (shared data, the human leave-one-out row,
zero-shot "before" row, LoRA fine-tune + "after" row, comparison report in the study folder) and
returns the headline scores the demo's summary shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlmlab.caption.config import CaptionConfig
from vlmlab.demo.configs import AFTER, BEFORE
from vlmlab.errors import RunError

KEYS = ("BLEU-4", "ROUGE-L", "CIDEr")


def run_caption(config: CaptionConfig) -> dict[str, Any]:
    """Run the caption study (resumable) and return `caption_summary(config)`.

    Raises:
        RunError: a model of the study failed (its error and traceback are in its folder).
    """
    from vlmlab.caption.study import run_study

    outcome = run_study(config)
    if outcome.failed:
        details = "; ".join(f"{m}: {outcome.errors.get(m, 'failed')}" for m in outcome.failed)
        raise RunError(f"caption study in {outcome.study_dir} failed for {details}; re-run the demo to resume")
    return caption_summary(config)


def caption_summary(config: CaptionConfig) -> dict[str, Any]:
    """Headline scores (the study's headline mode) of the before/after rows and the human row."""
    out: dict[str, Any] = {"study_dir": str(config.study_dir()), "mode": config.scoring.headline}
    for key, name in (("before", BEFORE), ("after", AFTER)):
        model = next(m for m in config.models if m.name == name)
        path = config.model_dir(model) / "score" / "metrics.json"
        if not path.is_file():
            raise RunError(f"{path}: missing; the caption study did not finish for {name!r} (re-run the demo to resume)")
        metrics = json.loads(path.read_text(encoding="utf-8"))
        scores = metrics["modes"][config.scoring.headline]
        out[key] = {k: scores.get(k) for k in KEYS}
        out[key]["empty_rate"] = scores.get("empty_prediction_rate")
        out[key]["status"] = metrics.get("status")
        if metrics.get("finetune"):
            ft = metrics["finetune"]
            out["finetune"] = {"steps": ft.get("steps"), "first_loss": ft.get("first_loss"), "last_loss": ft.get("last_loss"),
                               "seconds": ft.get("seconds")}
    human = Path(config.study_dir()) / "human" / "metrics.json"
    if human.is_file():
        scores = json.loads(human.read_text(encoding="utf-8"))["modes"][config.scoring.headline]
        out["human"] = {k: scores.get(k) for k in KEYS}
    out["test_pairs"] = _count_test_pairs(config)
    return out


def _count_test_pairs(config: CaptionConfig) -> int | None:
    path = Path(config.study_dir()) / "_shared_data" / "data.json"
    if not path.is_file():
        return None
    value = json.loads(path.read_text(encoding="utf-8")).get("test_pairs")
    return int(value) if isinstance(value, int) else None
