"""Run the rating study: every selected condition is its own resumable run folder.

Per condition: load (or reuse) the backend of its model variant, then for the pending images in
batches walk the prompt mode's steps — one batched `generate` per step — parse each answer, save
top-k logprobs and hidden states as NPZ, and append one ledger line per image. A failed or empty
generation is recorded as such and never parsed; a parse failure keeps the raw text.

Before anything is written, every HTTP model gets one preflight request (model listed, image
accepted). A server that answers without logprobs marks the condition `logprobs: unavailable
(server returned none)` in its run.json, or stops the run at once when `capture.require_logprobs`.
Items that ended in error are retried on the next run (unless `keep_errors`); changing only how a
server is reached (base_url, api_key_env, timeout, max_concurrency, retries) resumes the runs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vlmlab.data.images import Image
from vlmlab.errors import DataError, ModelError
from vlmlab.models.backend_checks import CONNECTION_OPTIONS, connection_keys, preflight
from vlmlab.models.base import Backend, GenerationRequest, GenerationResult, Turn
from vlmlab.models.preflight import preflight_model
from vlmlab.progress import progress_bar
from vlmlab.metrics.agreement import entropy
from vlmlab.rating.capture import digit_distribution, logprob_arrays, rating_step, save_npz
from vlmlab.rating.conditions import Condition, condition_dir, expand_conditions, request_seed, select_conditions
from vlmlab.rating.config import CaptureConfig, PromptConfig, RatingConfig
from vlmlab.rating.parse import ParseFailure, parse_emotion, parse_json_answer, parse_rating
from vlmlab.rating.prompts import QUESTIONS, next_conversation, steps_for
from vlmlab.runs import Run, check_folder, read_ledger

LOGPROBS_UNAVAILABLE = "unavailable (server returned none)"


@dataclass(frozen=True)
class FaceItem:
    """One image with the human consensus: majority emotion, mean valence and arousal."""

    id: str
    image: Image
    emotion: str | None
    valence: float | None
    arousal: float | None
    group: str | None


def load_items(study: RatingConfig) -> list[FaceItem]:
    """Aggregate the human ratings per image (ties in the majority emotion break alphabetically)."""
    from vlmlab.data.expressions import read_face_ratings

    records = read_face_ratings(study.data.ratings, study.data.images, study.data.format)
    allowed = {e.strip().lower() for e in study.emotions}
    for record in records:  # a label outside the list could never be matched by a parsed answer
        if record.emotion and record.emotion.strip().lower() not in allowed:
            raise DataError(f"{record.source}: emotion {record.emotion!r} is not one of the configured emotions "
                            f"({', '.join(study.emotions)}); fix the row or add it to `emotions:` in the config")
    by_image: dict[str, list] = {}
    for record in records:
        by_image.setdefault(record.image_id, []).append(record)
    group_col = study.data.group_column
    if group_col and records and group_col not in records[0].groups:
        raise DataError(f"{study.data.ratings}: no column {group_col!r} for data.group_column; columns with groups: {', '.join(records[0].groups) or 'none'}")
    items = []
    for image_id, rows in by_image.items():
        emotions = Counter(r.emotion for r in rows if r.emotion)
        emotion = sorted(emotions.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if emotions else None
        valences = [r.valence for r in rows if r.valence is not None]
        arousals = [r.arousal for r in rows if r.arousal is not None]
        items.append(
            FaceItem(
                id=image_id,
                image=rows[0].image,
                emotion=emotion,
                valence=float(np.mean(valences)) if valences else None,
                arousal=float(np.mean(arousals)) if arousals else None,
                group=rows[0].groups.get(group_col) if group_col else None,
            )
        )
    if study.data.limit is not None:
        items = items[: study.data.limit]
    if not items:
        raise DataError(f"{study.data.ratings}: no ratings to run")
    return items


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _parse(question: str, text: str, emotions: Sequence[str]) -> dict[str, Any]:
    if question == "emotion":
        return {"emotion": parse_emotion(text, emotions)}
    if question in ("valence", "arousal"):
        return {question: parse_rating(text)}
    answer = parse_json_answer(text, emotions)
    return {"emotion": answer.emotion, "valence": answer.valence, "arousal": answer.arousal}


def rate_items(
    backend: Backend,
    condition: Condition,
    items: Sequence[FaceItem],
    run: Run,
    *,
    prompts: PromptConfig,
    emotions: Sequence[str],
    capture: CaptureConfig,
    batch_size: int,
    seed: int,
    on_item: Callable[[], None] | None = None,
) -> None:
    """Rate `items` (already filtered to pending ones) and append each to the run's ledger.

    Args:
        prompts, emotions: the question templates and the categories answers are parsed against.
        capture: what to generate and keep (max_new_tokens, top-k logprobs, hidden states) and
            whether an answer without logprobs stops the run.
        batch_size: images per batched `generate` call.
        seed: the condition's seed (`condition.seed(study_seed)`); each request's seed derives from it.
    """
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        plans = [steps_for(condition.mode, prompts, emotions, item.emotion) for item in chunk]
        history: list[list[Turn]] = [[] for _ in chunk]
        alive = [True] * len(chunk)
        answers: list[dict[str, dict[str, Any]]] = [{} for _ in chunk]
        results: list[dict[str, GenerationResult]] = [{} for _ in chunk]
        for step_index in range(len(plans[0])):
            requests, owners = [], []
            for i, (item, plan) in enumerate(zip(chunk, plans)):
                if not alive[i]:
                    continue
                step = plan[step_index]
                conversation = next_conversation(step, item.image, history[i], prompts.system)
                history[i] = conversation
                requests.append(
                    GenerationRequest(
                        id=f"{item.id}:{step.question}",
                        conversation=conversation,
                        max_new_tokens=capture.max_new_tokens,
                        temperature=condition.temperature,
                        seed=request_seed(seed, item.id, step.question),
                        top_logprobs=capture.top_logprobs,
                        hidden_layers=tuple(capture.hidden_layers) if step_index == 0 else (),
                        hidden_pool=capture.hidden_pool,
                    )
                )
                owners.append(i)
            for i, result in zip(owners, backend.generate(requests)):
                if capture.require_logprobs and result.status == "ok" and not result.logprobs:
                    raise ModelError(
                        f"{condition.model.name}: the answer to {result.id!r} has no logprobs, and capture.require_logprobs is set; "
                        "use a server that returns logprobs or set capture.require_logprobs: false"
                    )
                step = plans[i][step_index]
                results[i][step.question] = result
                entry: dict[str, Any] = {"text": result.text, "status": result.status}
                if result.status != "ok":
                    entry["error"] = result.error or "empty generation"
                    alive[i] = False  # nothing to carry forward; later steps are not asked
                else:
                    try:
                        entry["parsed"] = _parse(step.question, result.text, emotions)
                    except ParseFailure as exc:
                        entry["parse_error"] = str(exc)
                    history[i] = history[i] + [Turn("assistant", result.text)]
                answers[i][step.question] = entry
        for i, item in enumerate(chunk):
            run.append(item.id, _record(item, condition, answers[i], results[i], run.dir, capture.top_logprobs))
            if on_item:
                on_item()


def _record(item: FaceItem, condition: Condition, answers: dict, results: dict[str, GenerationResult], folder: Path, k: int) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for entry in answers.values():
        parsed.update(entry.get("parsed", {}))
    statuses = [e["status"] for e in answers.values()]
    expected = QUESTIONS[condition.mode]
    if "error" in statuses:
        status = "error"
    elif "empty" in statuses:
        status = "empty"
    elif len(answers) < len(expected) or any("parse_error" in e for e in answers.values()):
        status = "parse_error"
    else:
        status = "ok"
    record: dict[str, Any] = {
        "image_id": item.id,
        "group": item.group,
        "human": {"emotion": item.emotion, "valence": item.valence, "arousal": item.arousal},
        "status": status,
        "emotion": parsed.get("emotion"),
        "valence": parsed.get("valence"),
        "arousal": parsed.get("arousal"),
        "answers": answers,
    }
    if status in ("error", "empty"):
        record["error"] = next((e["error"] for e in answers.values() if e.get("error")), "empty generation")
    arrays: dict[str, np.ndarray] = {}
    sources = set()
    digits: dict[str, Any] = {}
    for question, result in results.items():
        if result.logprobs:
            arrays.update(logprob_arrays(question, result.logprobs, k))
            sources.add(result.logprob_source or "unknown")
        for dimension in ("valence", "arousal"):
            value = answers.get(question, {}).get("parsed", {}).get(dimension)
            if value is None or not result.logprobs:
                continue
            index = rating_step(result.logprobs, value)
            if index is None:
                continue
            try:
                dist, mass = digit_distribution(result.logprobs[index])
            except DataError:
                continue
            digits[dimension] = {"probs": [round(float(p), 6) for p in dist], "mass": round(mass, 6), "entropy_bits": round(entropy(dist), 6)}
    if arrays:
        name = f"logprobs/{_safe(item.id)}.npz"
        save_npz(folder / name, arrays)
        record["logprobs_file"] = name
        record["logprob_source"] = sorted(sources)[0] if len(sources) == 1 else sorted(sources)
    if digits:
        record["digit_distribution"] = digits
    first = next(iter(results.values()), None)
    if first is not None and first.hidden_states:
        name = f"hidden/{_safe(item.id)}.npz"
        save_npz(folder / name, {f"layer{layer}": np.asarray(v, dtype=np.float32) for layer, v in first.hidden_states.items()})
        record["hidden_file"] = name
    return record


def _volatile(condition: Condition) -> tuple[str, ...]:
    """Keys of a condition's config that do not change its results (not part of its identity):
    how to reach its server, and whether missing logprobs stop the run."""
    always = ("capture.require_logprobs",)
    if not connection_keys(condition.model.kind):
        return always
    return (*always, "model.base_url", *(f"{where}.options.{k}" for where in ("model", "variant") for k in CONNECTION_OPTIONS))


def plan_study(study: RatingConfig, max_priority: int | None = None, resolve_models: bool = True) -> tuple[list[FaceItem], list[Condition]]:
    """The items and the selected conditions, every hf model resolved; raises on any contradiction."""
    from vlmlab.rating.baselines import check_baselines

    items = load_items(study)
    check_baselines(study)  # a label map that misses a classifier label fails before any run starts
    conditions = select_conditions(expand_conditions(study), max_priority)
    if not conditions and study.models:
        raise DataError(f"no condition has priority <= {max_priority}; lower priorities run first (try --priority {min(c.priority for c in expand_conditions(study))})")
    for model in study.models if resolve_models else []:
        if model.kind == "hf":
            from vlmlab.models.names import get_spec

            get_spec(model.ref)  # a registered name or a checkpoint folder (nothing is downloaded)
    return items, conditions


def _done_counts(study: RatingConfig, items: Sequence[FaceItem], conditions: Sequence[Condition], overwrite: bool,
                 keep_errors: bool) -> list[int]:
    """Finished items per condition, read without writing; RunError for a folder of another config."""
    ids = {str(i.id) for i in items}
    counts = []
    for condition in conditions:
        folder = condition_dir(study.out, condition)
        done = 0
        if not overwrite and check_folder(folder, condition.config(study), _volatile(condition))[1] is not None:
            records = read_ledger(folder / "ledger.jsonl")
            done = len({str(r["id"]) for r in records if keep_errors or r.get("status") != "error"} & ids)
        counts.append(done)
    return counts


def dry_run(study: RatingConfig, *, max_priority: int | None = None, overwrite: bool = False, keep_errors: bool = False) -> list[dict[str, Any]]:
    """What `run_study` would do, one dict per condition (name, folder, done, pending); writes nothing.

    Resolves the data, the models and every condition, and refuses a folder holding another config.
    """
    items, conditions = plan_study(study, max_priority)
    done = _done_counts(study, items, conditions, overwrite, keep_errors)
    return [{"condition": c.name, "priority": c.priority, "folder": str(condition_dir(study.out, c)), "kind": c.model.kind,
             "items": len(items), "done": d, "pending": len(items) - d} for c, d in zip(conditions, done)]


def run_study(
    study: RatingConfig,
    *,
    max_priority: int | None = None,
    overwrite: bool = False,
    backend_factory: Callable[[Condition], Backend] | None = None,
    keep_errors: bool = False,
) -> list[Path]:
    """Run every selected condition; returns their run folders (finished ones are skipped)."""
    from vlmlab.rating.baselines import run_baselines

    items, conditions = plan_study(study, max_priority, resolve_models=backend_factory is None)
    factory = backend_factory or _load_backend
    backends: dict[tuple[str, str], Backend] = {}
    done = _done_counts(study, items, conditions, overwrite, keep_errors)
    checked: set[tuple[str, str]] = set()
    for condition, finished in zip(conditions, done):  # HTTP servers with work to do are checked before anything is written
        key = (condition.model.name, condition.variant.name)
        if condition.model.kind == "hf" and backend_factory is None and finished < len(items) and key not in checked:
            checked.add(key)
            preflight_model(condition.block)  # hub access, processor, family facts, quantization: one line, nothing written
        if condition.model.kind != "hf" and key not in backends and finished < len(items):
            backends[key] = factory(condition)
            image = any(c.mode != "text-only" for c in conditions if c.model.name == condition.model.name)
            found = preflight(backends[key], image=image, top_logprobs=study.capture.top_logprobs)
            if study.capture.require_logprobs and not found["logprobs"]:
                raise ModelError(
                    f"{condition.model.name}: the server at {condition.model.base_url} returned no logprobs, and capture.require_logprobs "
                    "is set; use a server that returns logprobs or set capture.require_logprobs: false"
                )
    folders = []
    runs = []
    for condition in conditions:
        run = Run.open(condition_dir(study.out, condition), condition.config(study), stage="rating.condition", overwrite=overwrite,
                       retry_errors=False if keep_errors else None, volatile=_volatile(condition))
        runs.append((condition, run))
    total = sum(len(run.pending(items)) for _, run in runs)
    try:
        _rate_conditions(study, items, runs, backends, factory, total, folders)
    except BaseException as exc:  # a model that fails to load, Ctrl-C: no folder may stay marked `running`
        _mark_failed(runs, folders, exc)
        raise
    return folders + run_baselines(study, items, overwrite=overwrite)


def _rate_conditions(study: RatingConfig, items: Sequence[FaceItem], runs: list[tuple[Condition, Run]],
                     backends: dict[tuple[str, str], Backend], factory: Callable[[Condition], Backend], total: int,
                     folders: list[Path]) -> None:
    """Rate the pending items of every opened condition, finishing each run (appended to `folders`)."""
    with progress_bar() as progress:
        task = progress.add_task("rating", total=total)
        for condition, run in runs:
            pending = run.pending(items)
            if pending:
                key = (condition.model.name, condition.variant.name)
                if key not in backends:
                    backends[key] = factory(condition)
                progress.update(task, description=f"rating {condition.name}")
                rate_items(backends[key], condition, pending, run, prompts=study.prompts, emotions=study.emotions, capture=study.capture,
                           batch_size=study.batch_size, seed=condition.seed(study.seed), on_item=lambda: progress.advance(task))
            records = run.records()
            counts = Counter(r["status"] for r in records)
            summary: dict[str, Any] = {"item_status": dict(counts), "priority": condition.priority}
            if study.capture.top_logprobs > 0:
                answered = [r for r in records if r["status"] != "error"]
                summary["logprobs"] = "captured" if any(r.get("logprobs_file") for r in records) or not answered else LOGPROBS_UNAVAILABLE
            run.finish("complete" if counts.get("ok", 0) == len(records) else "degraded", **summary)
            folders.append(run.dir)


def _mark_failed(runs: list[tuple[Condition, Run]], finished: list[Path], exc: BaseException) -> None:
    """Mark every opened, unfinished condition `failed` with the reason (the CLI's one line)."""
    reason = (str(exc).splitlines() or [""])[0] or type(exc).__name__
    for _, run in runs:
        if run.dir not in finished:
            run.finish("failed", error=reason)


def _load_backend(condition: Condition) -> Backend:
    """The condition's backend, through the one model-block path (`ModelBlock.load`)."""
    backend: Backend = condition.block.load()
    return backend
