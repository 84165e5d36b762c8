"""`vlmlab score`: caption metrics and VQA accuracy for prediction files (parsing only; see vlmlab.metrics)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(help="Score predictions: COCO caption metrics, VQA accuracy.", no_args_is_help=True)


class Format(str, Enum):
    json = "json"
    table = "table"


class CaptionMode(str, Enum):
    grouped = "grouped"
    per_row = "per-row"


class VqaMode(str, Enum):
    official = "official"
    vqa2016 = "vqa2016"
    openflamingo = "openflamingo"
    okvqa = "okvqa"
    lmms_eval = "lmms-eval"
    lmms_eval_vqav2 = "lmms-eval-vqav2"


def _print_table(title: str, rows: list[tuple[str, object]]) -> None:
    from rich.table import Table

    from vlmlab.progress import make_console

    table = Table("metric", "value", title=title)
    for key, value in rows:
        table.add_row(key, "null" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value))
    make_console().print(table)  # off a terminal: wide, so nothing is folded


@app.command("caption")
def caption(
    pred: Path = typer.Argument(..., help='Predictions: JSONL of {"id", "prediction"}, CSV/TSV with those columns, or a COCO result JSON [{"image_id", "caption"}].'),
    refs: Path = typer.Argument(..., help='References: JSONL of {"id", "references": [...]}, one {"id", "reference"} per row, a COCO captions annotation JSON, or a datasets source (parquet, arrow, save_to_disk folder, hf:id#split).'),
    mode: CaptionMode = typer.Option(CaptionMode.grouped, "--mode", help="grouped: all refs of an id; per-row: each ref its own item."),
    metrics: Optional[List[str]] = typer.Option(None, "--metrics", help="Subset of BLEU, METEOR, ROUGE-L, CIDEr, SPICE (repeat or comma-separate)."),
    fmt: Format = typer.Option(Format.json, "--format", help="json or table."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Score only ids present in both files."),
    per_item: bool = typer.Option(False, "--per-item", help="Include per-item scores in the JSON output."),
) -> None:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr-D and SPICE with pycocoevalcap conventions."""
    from vlmlab.metrics.caption import parse_metrics, score_captions
    from vlmlab.metrics.files import read_caption_predictions, read_caption_references

    wanted = parse_metrics(metrics)
    result = score_captions(
        read_caption_predictions(pred), read_caption_references(refs),
        mode=mode.value, metrics=wanted, allow_missing=allow_missing,
    )
    out = result.to_dict(per_item=per_item)
    if fmt == Format.json:
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    rows = [(k, v) for k, v in out.items() if k not in ("per_item", "missing") and not k.endswith("_reason")]
    _print_table(f"caption scores ({result.mode})", rows)
    for key, reason in result.unavailable.items():
        typer.echo(f"{key}: {reason}")


@app.command("vqa")
def vqa(
    pred: Path = typer.Argument(..., help='Predictions: JSON list of {"question_id", "answer"}.'),
    annotations: Path = typer.Argument(..., help="VQA v2 / OK-VQA annotations JSON, or a datasets source with one row per question (parquet, arrow, save_to_disk folder, hf:id#split)."),
    questions: Optional[Path] = typer.Option(None, "--questions", help="VQA questions JSON: evaluate exactly these questions."),
    mode: VqaMode = typer.Option(VqaMode.official, "--mode", help="official (GT-Vision-Lab master, 2021-), vqa2016 (its 2016-2021 version), openflamingo (also Lever-LM), okvqa (openflamingo + OK-VQA stemming), lmms-eval (EvalAI processor), lmms-eval-vqav2 (its vqav2 task). README: VQA accuracy modes."),
    fmt: Format = typer.Option(Format.json, "--format", help="json or table."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Score only questions with both a prediction and an annotation."),
) -> None:
    """VQA accuracy (percent, as the official tool prints it), per question and per answer type."""
    from vlmlab.metrics.files import read_vqa_annotations, read_vqa_predictions, read_vqa_question_ids
    from vlmlab.metrics.vqa import vqa_accuracy

    result = vqa_accuracy(
        read_vqa_predictions(pred),
        read_vqa_annotations(annotations),
        mode=mode.value,
        question_ids=read_vqa_question_ids(questions) if questions is not None else None,
        allow_missing=allow_missing,
    )
    out = result.to_dict()
    if fmt == Format.json:
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    rows: list[tuple[str, object]] = [("accuracy", out["accuracy"]), ("n", out["n"])]
    rows += [(f"answer type: {k}", v) for k, v in sorted(out["per_answer_type"].items())]
    _print_table(f"VQA accuracy ({result.mode})", rows)
