"""Batched caption generation through the run ledger, with honest handling of empty outputs.

Each finished item is one ledger line (`prediction`, `status`, `error`, references), flushed and
fsynced, so a crash (even SIGKILL) loses at most the batch in flight and a re-run continues where
it stopped. `predictions.csv` (id, image, query, prediction, references, status) is rewritten from
the ledger at the end, in test order.

A prediction whose status is `empty` (nothing but whitespace) or `error` is never passed off as a
caption: the items are counted and listed in `generation.json`, the stage's status becomes
`degraded`, and a loud warning with a hint is printed.

    summary = generate_predictions(backend, items, run, max_new_tokens=128, batch_size=8)
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from rich.console import Console

from vlmlab.models.base import Backend, GenerationRequest, Turn
from vlmlab.progress import progress_bar
from vlmlab.runs import Run, atomic_write_text

EMPTY_HINT = (
    "check the model's generation config and EOS handling (an EOS or end-of-turn token generated first gives empty "
    "text), the chat template, max_new_tokens, and that fine-tuning did not collapse the model"
)
_console = Console(stderr=True)


@dataclass
class PromptItem:
    """One test pair ready for generation."""

    id: str
    image: str  # the source image, for predictions.csv
    query: str
    references: list[str]
    conversation: list[Turn]


@dataclass
class GenerationSummary:
    """What `generate_predictions` produced; `status` is `complete` or `degraded`."""

    n: int
    ok: int
    empty: int
    error: int
    empty_ids: list[str] = field(default_factory=list)
    error_ids: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # first few error messages by id

    @property
    def status(self) -> str:
        return "complete" if self.empty == 0 and self.error == 0 else "degraded"

    @property
    def empty_rate(self) -> float:
        return self.empty / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status, "empty_rate": self.empty_rate,
                "hint": EMPTY_HINT if self.empty else None}


def generate_predictions(
    backend: Backend,
    items: Sequence[PromptItem],
    run: Run,
    *,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    seed: int = 0,
    batch_size: int = 8,
    warn: bool = True,
) -> GenerationSummary:
    """Generate a caption for every item not yet in `run`'s ledger; write predictions.csv; summarise.

    Args:
        backend: any `Backend` (HF, OpenAI-compatible, Ollama).
        items: the test pairs, in the order predictions.csv should list them.
        run: the open generation run (its ledger is the resume state).
        max_new_tokens / temperature / seed: per request (temperature 0 = greedy).
        batch_size: requests per `backend.generate` call (and per ledger flush).
        warn: print the loud warning when items came back empty or failed.
    """
    pending = run.pending(items)
    with progress_bar() as bar:
        task = bar.add_task("generate", total=len(items), completed=len(items) - len(pending))
        for start in range(0, len(pending), batch_size):
            chunk = pending[start : start + batch_size]
            requests = [
                GenerationRequest(id=it.id, conversation=it.conversation, max_new_tokens=max_new_tokens,
                                  temperature=temperature, seed=seed)
                for it in chunk
            ]
            results = backend.generate(requests)
            for item, result in zip(chunk, results):
                run.append(item.id, {
                    "image": item.image, "query": item.query, "prediction": result.text if result.status == "ok" else "",
                    "raw_text": result.text, "status": result.status, "error": result.error,
                    "references": item.references, "prompt_tokens": result.prompt_tokens,
                    "generated_tokens": result.generated_tokens,
                })
            bar.advance(task, len(chunk))
    by_id = {r["id"]: r for r in run.records()}
    rows = [by_id[it.id] for it in items]
    write_predictions_csv(run, rows)
    summary = summarize(rows)
    run.write_json("generation.json", summary.to_dict())
    if warn:
        warn_if_degraded(summary, str(run.dir))
    return summary


def write_predictions_csv(run: Run, rows: Sequence[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("id", "image", "query", "prediction", "references", "status"))
    for r in rows:
        writer.writerow((r["id"], r["image"], r["query"], r["prediction"], json.dumps(r["references"], ensure_ascii=False), r["status"]))
    atomic_write_text(run.dir / "predictions.csv", buf.getvalue())


def summarize(rows: Sequence[dict[str, Any]]) -> GenerationSummary:
    """Counts of ok / empty / error predictions, with the ids of the bad ones."""
    empty_ids = [r["id"] for r in rows if r["status"] == "empty"]
    error_ids = [r["id"] for r in rows if r["status"] == "error"]
    errors = {r["id"]: str(r.get("error")) for r in rows if r["status"] == "error"}
    first_errors = dict(list(errors.items())[:20])
    return GenerationSummary(n=len(rows), ok=len(rows) - len(empty_ids) - len(error_ids), empty=len(empty_ids),
                             error=len(error_ids), empty_ids=empty_ids, error_ids=error_ids, errors=first_errors)


def warn_if_degraded(summary: GenerationSummary, where: str) -> None:
    """A loud, multi-line warning on stderr when some predictions are empty or failed."""
    if summary.status == "complete":
        return
    lines = [f"WARNING: {where}: {summary.empty} of {summary.n} predictions are EMPTY and {summary.error} FAILED."]
    if summary.empty:
        lines.append(f"  empty: {', '.join(summary.empty_ids[:10])}{' ...' if summary.empty > 10 else ''}")
        lines.append(f"  hint: {EMPTY_HINT}")
    if summary.error:
        first_id, first_msg = next(iter(summary.errors.items()))
        lines.append(f"  first error ({first_id}): {first_msg}")
    lines.append("  They are scored as empty captions (no credit), listed in generation.json, and the run is marked degraded.")
    _console.print("\n".join(lines), style="bold red", markup=False, highlight=False, soft_wrap=True)
