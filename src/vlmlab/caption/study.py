"""The caption study as one story: prepare data once, then per model fine-tune, generate, score; report.

    config = load_config("configs/caption/toy.yaml", CaptionConfig)
    outcome = run_study(config)              # every model, one after another
    outcome = run_study(config, models=["qwen2-vl-2b"], gpus=[0, 1])   # one process per model

Layout under `<out_dir>/<name>/`:

    _shared_data/      train.csv, test.csv, data.json, images/<strategy>/ (prepared PNGs)
    human/             the leave-one-out human row (metrics.json)
    <model>_img<size>_tok<max-tokens>/
        model.json     status (running/complete/degraded/failed), error, headline scores
        finetune/      fine_tune's out_dir (adapter or model, checkpoints while training)
        generate/      run folder: ledger.jsonl, predictions.csv, generation.json
        score/         run folder: metrics.json (both modes, headline mode recorded), report.md
    report.md/.html/.json, *.csv, caption_scores.png   (`build_report`)

A failure of one model (a bad checkpoint, out of memory, a too-long sample) is written to its
`model.json` (and `error.txt` with the traceback) and the study goes on with the next model; the
report lists it. Every stage resumes: re-running the same command continues fine-tuning from its
last checkpoint and generation from its ledger.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from vlmlab.caption.config import CaptionConfig, ModelEntry, select_models
from vlmlab.caption.data import SharedData, build_conversation, prepare_shared_data
from vlmlab.caption.generate import PromptItem, generate_predictions
from vlmlab.caption.images import ImagePreparer
from vlmlab.caption.scoring import human_metrics, score_predictions
from vlmlab.errors import ModelError, VlmlabError
from vlmlab.models.preflight import preflight_model
from vlmlab.runs import Run, atomic_write_json, atomic_write_text, read_run_info

MODEL_FILE = "model.json"
_console = Console(stderr=True)

# What a single model may fail with without stopping the others: our own errors, and what torch,
# transformers, PEFT and the OS raise for a model that does not load or does not fit in memory.
MODEL_FAILURES = (VlmlabError, RuntimeError, OSError, ValueError, KeyError, ImportError, MemoryError)


@dataclass
class StudyOutcome:
    """Per-model status (`complete`, `degraded`, `failed`) and the report paths."""

    study_dir: Path
    statuses: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    report: dict[str, Path] | None = None

    @property
    def failed(self) -> list[str]:
        return [m for m, s in self.statuses.items() if s == "failed"]


def run_study(
    config: CaptionConfig,
    *,
    models: list[str] | None = None,
    gpus: list[int] | None = None,
    overwrite: bool = False,
    config_path: Path | None = None,
    overrides: list[str] | None = None,
    report: bool = True,
) -> StudyOutcome:
    """Run the study for the selected models (all by default) and write the comparison report.

    Args:
        config: the validated study config.
        models: names of config models to run (default all).
        gpus: run each model in its own process, spreading models over these GPU ids (one model
            at a time per GPU); needs `config_path` (and the same `overrides`) to start the children.
        overwrite: start stages over where their folder holds another config.
        report: write the comparison report when done.
    """
    selected = select_models(config, models)
    if gpus:
        check_gpu_ids(gpus)
    study_dir = config.study_dir()
    created = _first_missing(study_dir)  # removed again if no model can run: nothing is left behind
    shared = prepare_data(config)  # every image decoded before any model is looked up
    refused = []  # hub access, processor, family facts, quantization, checked before any run folder:
    for model in selected:  # a model that fails alone is recorded failed below; when all fail, one line and nothing written
        try:
            preflight_model(model, config.tiny_root)
        except VlmlabError as exc:
            refused.append(str(exc))
    if refused and len(refused) == len(selected):
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise ModelError("; ".join(refused))
    if config.scoring.human:
        run_human(config, shared, overwrite=overwrite)
    outcome = StudyOutcome(study_dir=study_dir)
    if gpus:
        if config_path is None:
            raise ModelError("run_study(gpus=...) starts one process per model and needs config_path")
        _run_in_processes(config, selected, gpus, config_path, overrides or [], overwrite)
        for model in selected:
            info = read_model_info(config.model_dir(model))
            outcome.statuses[model.name] = info.get("status", "failed")
            if info.get("error"):
                outcome.errors[model.name] = info["error"]
    else:
        for model in selected:
            status, error = run_model_safely(config, model, shared, overwrite=overwrite)
            outcome.statuses[model.name] = status
            if error:
                outcome.errors[model.name] = error
    if report:
        from vlmlab.caption.report import build_report

        outcome.report = build_report(study_dir)
    return outcome


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder of `folder`'s path that does not exist yet (None if it exists)."""
    missing = None
    for candidate in [folder, *folder.parents]:
        if candidate.exists():
            return missing
        missing = candidate
    return missing


def prepare_data(config: CaptionConfig) -> SharedData:
    """The study's shared data (`_shared_data/`), identical for every model."""
    d = config.data
    return prepare_shared_data(
        d.test, config.study_dir() / "_shared_data", train=d.train, images=d.images, url_map=d.url_map,
        max_train_rows=d.max_train_rows, max_test_pairs=d.max_test_pairs,
    )


def run_human(config: CaptionConfig, shared: SharedData, *, overwrite: bool = False) -> dict[str, Any] | None:
    """Score the leave-one-out human row into `<study>/human/metrics.json` (None if no pair has 2+ refs)."""
    references = {r.id: r.references for r in shared.test}
    if not any(len(r) >= 2 for r in references.values()):
        _console.print("note: no test pair has two or more references; the human row is left out", style="yellow")
        return None
    run = Run.open(config.study_dir() / "human", {"data": shared.fingerprint, "scoring": config.scoring.model_dump(mode="json")},
                   stage="caption-human", overwrite=overwrite)
    done = run.dir / "metrics.json"
    if read_run_info(run.dir).get("status") == "complete" and done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))  # same data and scoring: already scored
    metrics = human_metrics(references, headline=config.scoring.headline, metrics=config.metrics_canonical())
    run.write_metrics(metrics)
    run.finish("complete")
    return metrics


def read_model_info(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}


def _write_model_info(model_dir: Path, **info: Any) -> None:
    current = read_model_info(model_dir)
    current.update(info)
    atomic_write_json(model_dir / MODEL_FILE, current)


def run_model_safely(config: CaptionConfig, model: ModelEntry, shared: SharedData, *, overwrite: bool = False) -> tuple[str, str | None]:
    """`run_model`, but a failure is recorded in model.json and returned instead of raised."""
    model_dir = config.model_dir(model)
    try:
        status = run_model(config, model, shared, overwrite=overwrite)
        return status, None
    except MODEL_FAILURES as exc:
        message = " ".join(f"{type(exc).__name__}: {exc}".split()) if not isinstance(exc, VlmlabError) else str(exc)
        atomic_write_text(model_dir / "error.txt", traceback.format_exc())
        _write_model_info(model_dir, model=model.name, status="failed", error=message)
        _console.print(f"FAILED {model.name}: {message} (traceback in {model_dir / 'error.txt'}); going on with the other models",
                       style="bold red", markup=False, highlight=False, soft_wrap=True)
        return "failed", message
    finally:
        _free_memory()


def _free_memory() -> None:
    """Release the finished model's memory before the next model loads (one process runs them all)."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def resolve_model_path(model: ModelEntry, tiny_root: Path | None) -> Path:
    """The local checkpoint folder of a model entry's `ref` (registry name, tiny name, or folder)."""
    from vlmlab.models.hf import resolve_checkpoint
    from vlmlab.models.loading import checkpoint_location

    return resolve_checkpoint(checkpoint_location(model.ref, tiny_root))


def check_image_count(checkpoint: Path, images_per_prompt: int) -> None:
    """Fail before any training when the family cannot take this many images per prompt (BLIP-2 takes one)."""
    from vlmlab.models.hf import open_checkpoint

    spec = open_checkpoint(checkpoint)[1]
    most = spec.max_images
    if most is not None and images_per_prompt > most:
        raise ModelError(
            f"{spec.name} takes at most {most} image(s) per prompt but the image policy passes {images_per_prompt}; "
            "use image.policy squash or pad for this model"
        )


def run_model(config: CaptionConfig, model: ModelEntry, shared: SharedData, *, overwrite: bool = False) -> str:
    """Fine-tune (if asked), generate and score one model; returns `complete` or `degraded`."""
    model_dir = config.model_dir(model)
    model_dir.mkdir(parents=True, exist_ok=True)
    _write_model_info(model_dir, model=model.name, status="running", error=None)
    _console.print(f"[bold]{model.name}[/bold] -> {model_dir}")
    prep = ImagePreparer(shared.folder / "images", policy=config.image.policy, size=config.image.size,
                         pad_aspect=config.image.pad_aspect, views=config.image.views, fov=config.image.fov)

    def conversation(record: Any) -> list:
        return build_conversation(prep(record.image), record.query, template=config.prompt.template,
                                  empty_query=config.prompt.empty_query)

    base_path = resolve_model_path(model, config.tiny_root)
    check_image_count(base_path, len(prep.views_per_image()))
    load_path, adapter, finetune_info = base_path, None, None
    if config.wants_finetune(model):
        result = _finetune(config, model, base_path, shared, conversation, model_dir / "finetune", overwrite)
        if result.method == "lora":
            adapter = result.output_path
        else:
            load_path = result.output_path
        losses = result.losses
        k = max(1, min(10, len(losses) // 10))
        finetune_info = {"method": result.method, "steps": result.steps, "first_loss": sum(losses[:k]) / k,
                         "last_loss": sum(losses[-k:]) / k, "skipped": result.num_skipped, "seconds": result.seconds,
                         "output": str(result.output_path), "fingerprint": result.fingerprint}
        _write_model_info(model_dir, finetune=finetune_info)

    gen = config.generation
    block = model.block(ref=load_path, adapter=adapter, batch_size=model.batch_size or gen.batch_size, max_length=gen.max_length)
    backend = block.load(config.tiny_root)
    items = [PromptItem(id=r.id, image=str(r.image.path), query=r.query, references=list(r.references),
                        conversation=conversation(r)) for r in shared.test]
    gen_config = {
        "model": model.model_dump(mode="json"), "checkpoint": str(base_path),
        "finetune": finetune_info["fingerprint"] if finetune_info else None,
        "data": shared.fingerprint, "image": prep.describe(), "prompt": config.prompt.model_dump(mode="json"),
        "generation": gen.model_dump(mode="json"),
    }
    gen_run = Run.open(model_dir / "generate", gen_config, stage="caption-generate", overwrite=overwrite)
    summary = generate_predictions(backend, items, gen_run, max_new_tokens=gen.max_new_tokens, temperature=gen.temperature,
                                   seed=gen.seed, batch_size=model.batch_size or gen.batch_size)
    gen_run.finish(summary.status, **{k: v for k, v in summary.to_dict().items() if k in ("n", "ok", "empty", "error", "empty_rate")})
    del backend

    score_run = Run.open(model_dir / "score", {"generate": gen_run.config_hash, "scoring": config.scoring.model_dump(mode="json")},
                         stage="caption-score", overwrite=True)
    metrics = score_predictions(gen_run.records(), headline=config.scoring.headline, metrics=config.metrics_canonical())
    metrics.update({"model": model.name, "precision": block.precision(), "status": summary.status, "generation": summary.to_dict(), "finetune": finetune_info,
                    "image": prep.describe(), "max_new_tokens": gen.max_new_tokens})
    score_run.write_metrics(metrics)
    score_run.write_report(_model_report(model.name, metrics))
    score_run.finish(summary.status)
    _write_model_info(model_dir, status=summary.status, headline_mode=metrics["headline_mode"],
                      headline={k: metrics["headline"].get(k) for k in ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE")})
    return summary.status


def _finetune(config: CaptionConfig, model: ModelEntry, base_path: Path, shared: SharedData, conversation: Any,
              out_dir: Path, overwrite: bool) -> Any:
    from vlmlab.train import TrainExample, fine_tune

    ft = config.finetune
    examples = [TrainExample(id=r.id, conversation=conversation(r), target=r.references[0]) for r in shared.train]
    args = ft.fine_tune_args(target_modules=model.target_modules, dtype=ft.dtype if model.dtype == "auto" else model.dtype)
    return fine_tune(base_path, examples, out_dir, args, save_every=ft.save_every, resume=not overwrite)


def _model_report(name: str, metrics: dict[str, Any]) -> str:
    mode = metrics["headline_mode"]
    head = metrics["headline"]
    keys = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE")
    lines = [f"# {name}: caption scores ({mode})", "", f"status: {metrics['status']}", f"precision: {metrics.get('precision', 'auto')}", "",
             "| metric | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|",
             "| score | " + " | ".join("–" if head.get(k) is None else f"{head[k]:.4f}" for k in keys) + " |", ""]
    c = metrics["counts"]
    lines.append(f"predictions: {metrics['n']} ({c['ok']} ok, {c['empty']} empty, {c['error']} error)")
    return "\n".join(lines)


def _run_in_processes(config: CaptionConfig, models: list[ModelEntry], gpus: list[int], config_path: Path,
                      overrides: list[str], overwrite: bool) -> None:
    """One child `vlmlab caption run` per model; each GPU runs its share of the models one after another."""
    queues: dict[int, list[ModelEntry]] = {g: [] for g in gpus}
    for i, model in enumerate(models):
        queues[gpus[i % len(gpus)]].append(model)

    def worker(gpu: int, queue: list[ModelEntry]) -> None:
        for model in queue:
            cmd = [sys.executable, "-m", "vlmlab", "caption", "run", str(config_path), "--models", model.name, "--no-report",
                   "--no-human"]
            for item in overrides:
                cmd += ["--set", item]
            if overwrite:
                cmd.append("--overwrite")
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(gpu)}
            log = config.model_dir(model) / "process.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            _console.print(f"{model.name}: GPU {gpu}, log {log}")
            with open(log, "wb") as fh:
                code = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
            if code not in (0, 1) or read_model_info(config.model_dir(model)).get("status") in (None, "running"):
                _write_model_info(config.model_dir(model), model=model.name, status="failed",
                                  error=f"process exited with code {code}; see {log}")

    threads = [threading.Thread(target=worker, args=(g, q)) for g, q in queues.items() if q]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def check_gpu_ids(gpus: list[int]) -> None:
    """Refuse GPU ids this machine does not have (a CPU-only machine has none), before any work.

    Without this check `--gpus 0,1` on a CPU-only machine ran every model on the CPU and logged
    "GPU 0", exiting 0.
    """
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    bad = sorted({g for g in gpus if not 0 <= g < visible})
    if bad:
        have = f"GPUs 0-{visible - 1}" if visible else "no GPU"
        raise ModelError(f"--gpus {','.join(map(str, gpus))}: this machine has {have} (GPU ids {bad} do not exist); "
                         "drop --gpus to run on the CPU, or pass ids of visible GPUs (see nvidia-smi, CUDA_VISIBLE_DEVICES)")
