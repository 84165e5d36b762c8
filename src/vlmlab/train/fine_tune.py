"""Supervised fine-tuning of a VLM (LoRA or full) with resumable checkpoints.

`fine_tune()` reads as one story: validate, encode and length-check every sample, load the model
(with a LoRA adapter or fully trainable), run the optimizer loop, checkpoint every `save_every`
steps, save the result. Re-running the same call after a crash (even SIGKILL) continues from the
last checkpoint and ends with the same weights as an uninterrupted run (bit-identical on CPU).

The loop is a plain `accelerate.Accelerator` loop rather than HF `Trainer`: our labels come from
the inference encoder, samples are pre-encoded once, the sample order is a pure function of
(seed, step) so resume needs no data-loader state, and checkpoints are safetensors plus
weights-only tensors. Speed is not the reason: `benchmarks/bench_train.py` (1.4 M-param Qwen2-VL,
batch 16, 1 torch thread, shared machine at load ~10, median of 3 interleaved rounds) measured
2.76 steps/s for this loop, 2.81 for a bare forward/backward/AdamW loop and 2.46 for `Trainer`:
the same within the machine's noise (each ranged 1.5-4.6). On a busy CPU the torch thread count
matters far more (2 threads instead of 1: ~20x slower there). Under `accelerate launch` or
`torchrun` the same code trains data-parallel (DDP; tested with two CPU ranks); on one device it
runs in one process.

What a run learns with is one `FineTuneArgs` (validated, hashed for the fingerprint); keywords
of `FineTuneArgs` may also be given directly, as overrides of `args`.

Example:
    args = FineTuneArgs(method="lora", learning_rate=2e-4, epochs=1, batch_size=8, max_length=512)
    result = fine_tune(Path("tiny-qwen2-vl"), examples, Path("runs/ft"), args, save_every=100)
    result = fine_tune(Path("tiny-qwen2-vl"), examples, Path("runs/ft"), max_length=512)   # defaults + one override
    HFBackend(base_path, adapter=result.output_path)
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from vlmlab.errors import ModelError, RunError
from vlmlab.progress import progress_bar
from vlmlab.train import checkpoint as ckpt
from vlmlab.train.args import FineTuneArgs, resolve_args, train_config
from vlmlab.train.batches import collate_with_labels, step_micro_batches, steps_per_epoch
from vlmlab.train.examples import (
    IGNORE_INDEX,
    TrainExample,
    encode_and_guard,
    examples_fingerprint,
    materialize,
    validate_examples,
)
from vlmlab.train.model_setup import load_for_training, resolve_dtype, save_trained
from vlmlab.train.schedule import build_scheduler

# `fine_tune`'s own keywords: they steer the run (checkpoints, resume, output), never its weights.
RUN_CONTROL = ("save_every", "keep_checkpoints", "keep_final_checkpoints", "log_every", "keep_encoded_bytes", "resume",
               "on_log", "show_progress")


@dataclass
class StepLog:
    """What a progress callback receives every `log_every` optimizer steps."""

    step: int  # optimizer steps done so far
    total_steps: int
    loss: float  # mean per-token loss over the steps since the last log
    learning_rate: float
    seconds: float  # training time so far, across resumes


@dataclass
class TrainResult:
    """What `fine_tune` produced. `output_path` is the adapter folder (LoRA) or model folder (full)."""

    output_path: Path
    method: str
    steps: int
    losses: list[float]  # mean per-token loss of every optimizer step
    learning_rates: list[float]
    num_examples: int  # samples trained on (after skipping)
    skipped_ids: list[str]
    seconds: float  # training time, summed across resumes
    dtype: str
    resumed_from_step: int | None = None
    fingerprint: str = ""

    @property
    def num_skipped(self) -> int:
        return len(self.skipped_ids)

    def to_json(self) -> str:
        data = asdict(self)
        data["output_path"] = str(self.output_path)
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "TrainResult":
        data = json.loads(text)
        data["output_path"] = Path(data["output_path"])
        return cls(**data)


def _prepare_out_dir(out_dir: Path, train_config: dict[str, Any], resume: bool, is_main: bool) -> TrainResult | None:
    """Return the finished result if this exact training already completed; refuse a different one."""
    config_file = out_dir / "train_config.json"
    result_file = out_dir / "result.json"
    if resume and config_file.is_file():
        old = json.loads(config_file.read_text())
        if old.get("fingerprint") != train_config["fingerprint"]:
            diff = sorted(k for k in set(old) | set(train_config) if k != "fingerprint" and old.get(k) != train_config.get(k))
            raise RunError(
                f"{out_dir}: holds a fine-tuning run with a different setup (differs in: {', '.join(diff) or 'examples'}); "
                "use another out_dir, or resume=False to start over there"
            )
        if result_file.is_file():
            return TrainResult.from_json(result_file.read_text())
    elif is_main:
        for name in ("checkpoints", "adapter", "model", "result.json"):
            target = out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        from vlmlab.runs import atomic_write_text

        atomic_write_text(config_file, json.dumps(train_config, indent=1, sort_keys=True))
    return None


def fine_tune(
    model_path: Path | str,
    examples: Sequence[TrainExample],
    out_dir: Path,
    args: FineTuneArgs | None = None,
    *,
    save_every: int = 500,
    keep_checkpoints: int = 2,
    keep_final_checkpoints: bool = False,
    log_every: int = 10,
    keep_encoded_bytes: int = 2 << 30,
    resume: bool = True,
    on_log: Callable[[StepLog], None] | None = None,
    show_progress: bool = True,
    **overrides: Any,
) -> TrainResult:
    """Fine-tune the model at `model_path` on `examples`; write the adapter or model under `out_dir`.

    Args:
        model_path: a checkpoint folder (or a Hugging Face id already in the local cache) loadable by
            `AutoModelForImageTextToText`; the processor is loaded like the HF backend loads it.
        examples: the training samples; loss goes on `target` (and, with `loss_on="all_assistant"`, on
            every assistant answer in the conversation) plus the end-of-turn token after each answer.
        out_dir: where `adapter/` (LoRA) or `model/` (full, with the processor) goes, with
            `checkpoints/`, `train_config.json` and `result.json`.
        args: what the run learns with (`FineTuneArgs`: method, LoRA, optimizer, length, dtype, ...);
            default `FineTuneArgs()`.
        save_every: write a checkpoint every this many optimizer steps (the last `keep_checkpoints` kept;
            all are deleted once the result is saved unless `keep_final_checkpoints`).
        resume: continue from the last checkpoint (or return the finished result) when `out_dir` holds
            the same training; False starts over and deletes earlier checkpoints and outputs there.
        keep_encoded_bytes: processor outputs (pixel values) of up to this many bytes stay in memory
            from the length check on; samples beyond it are re-encoded each time they are batched.
        on_log: called every `log_every` steps with a `StepLog`.
        **overrides: `FineTuneArgs` fields replacing those of `args` (`fine_tune(m, ex, out, lora_r=8)`);
            an unknown name is a `ConfigError` with a "did you mean".

    Returns:
        A `TrainResult` with the output path, per-step losses, skipped sample ids and seconds.
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs

    from vlmlab.models.hf import open_checkpoint, resolve_checkpoint
    from vlmlab.models.families import per_image_processing
    from vlmlab.models.hf_encode import ImageInputCache

    args = resolve_args(args, overrides, also_problems=[f"save_every must be >= 1, got {save_every}"] if save_every < 1 else [],
                     other_names=RUN_CONTROL)
    validate_examples(examples)
    model_path = resolve_checkpoint(model_path)
    if not (model_path / "config.json").is_file():
        raise ModelError(f"{model_path}: no config.json; pass a Hugging Face checkpoint folder")
    out_dir = Path(out_dir)
    torch_dtype, mixed_precision = resolve_dtype(args.dtype, model_path)
    # Full training under DDP: a text-only batch leaves the vision tower without gradients.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=args.method == "full")
    # Half precision is torch.autocast (+ a GradScaler for float16) here, not accelerate's mixed_precision:
    # accelerate keeps it in one process-wide state that refuses a second value, and successive fine_tune
    # calls in one process (several models of a study) may use different dtypes. Same bytes either way
    # (measured on CPU for float32 and bfloat16, LoRA and full).
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), kwargs_handlers=[ddp])
    world, rank = accelerator.num_processes, accelerator.process_index
    device_type = accelerator.device.type
    scaler = torch.amp.GradScaler(device_type, enabled=mixed_precision == "fp16")

    config = train_config(args, model_path=str(model_path.resolve()), examples=examples_fingerprint(examples),
                          num_examples=len(examples), dtype=str(torch_dtype).removeprefix("torch."),
                          mixed_precision=mixed_precision, world_size=world)
    finished = _prepare_out_dir(out_dir, config, resume, accelerator.is_main_process)
    accelerator.wait_for_everyone()
    if finished is not None:
        return finished

    processor, _ = open_checkpoint(model_path)
    # images preprocessed once per content hash (bit-identical outputs; processors that treat images one by one)
    image_inputs = ImageInputCache() if per_image_processing(processor) else None
    with _bar(show_progress, transient=True) as bar:
        task = bar.add_task("encode + length check", total=len(examples))
        encoded, skipped = encode_and_guard(
            processor, examples, max_length=args.max_length, skip_too_long=args.skip_too_long, loss_on=args.loss_on,
            keep_bytes=keep_encoded_bytes, on_example=lambda i: bar.advance(task), image_inputs=image_inputs,
        )
    kept_examples = {ex.id: ex for ex in examples}
    n = len(encoded)
    total_steps = args.max_steps if args.max_steps is not None else args.epochs * steps_per_epoch(n, args.batch_size, args.grad_accum, world)
    pad_id = processor.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = processor.tokenizer.eos_token_id

    torch.manual_seed(args.seed)
    model = load_for_training(
        model_path, method=args.method, torch_dtype=torch_dtype, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout, target_modules=_as_list(args.target_modules),
        gradient_checkpointing=args.gradient_checkpointing,
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=args.weight_decay)
    lr_scheduler = build_scheduler(optimizer, total_steps, args.warmup_ratio, args.scheduler)

    ckpt_root = out_dir / "checkpoints"
    start_step, losses, lrs, seconds_before, resumed_from = 0, [], [], 0.0, None
    last = ckpt.latest_checkpoint(ckpt_root) if resume else None
    if last is not None:
        opt_state, sched_state, state = ckpt.load_checkpoint(last, model, rank)
        optimizer.load_state_dict(opt_state)
        lr_scheduler.load_state_dict(sched_state)
        start_step, losses, lrs = state["step"], state["losses"], state["learning_rates"]
        seconds_before, resumed_from = state["seconds"], state["step"]
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()

    def batch_for(indices: list[int]) -> dict[str, Any]:
        items = [encoded[i] for i in indices]
        encs = [materialize(processor, kept_examples[e.id], e, args.loss_on) for e in items]
        batch = collate_with_labels(encs, [e.labels for e in items], pad_id)
        return {k: (v.to(accelerator.device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}

    started = time.perf_counter()
    window_losses: list[float] = []
    with _bar(show_progress) as bar:
        task = bar.add_task("fine-tune", total=total_steps, completed=start_step)
        for step in range(start_step, total_steps):
            micro = step_micro_batches(step, num_samples=n, batch_size=args.batch_size, grad_accum=args.grad_accum, seed=args.seed, world_size=world)
            step_tokens = sum(encoded[i].num_loss_tokens for ranks in micro for idx in ranks for i in idx)
            loss_sum = torch.zeros((), device=accelerator.device)
            for j, ranks in enumerate(micro):
                batch = batch_for(ranks[rank])
                labels = batch.pop("labels")
                sync = contextlib.nullcontext() if j == len(micro) - 1 else accelerator.no_sync(model)
                with sync, torch.autocast(device_type, dtype=torch_dtype, enabled=mixed_precision != "no"):
                    logits = model(**batch, use_cache=False).logits
                    token_loss = torch.nn.functional.cross_entropy(
                        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
                    )
                    accelerator.backward(scaler.scale(token_loss * (world / step_tokens)))
                loss_sum += token_loss.detach()
            if args.max_grad_norm > 0:
                scaler.unscale_(optimizer)
                accelerator.clip_grad_norm_(params, args.max_grad_norm)
            lrs.append(float(lr_scheduler.get_last_lr()[0]))
            scaler.step(optimizer)  # optimizer.step(), skipped (float16 only) when a gradient overflowed
            scaler.update()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step_loss = float(accelerator.reduce(loss_sum, reduction="sum")) / step_tokens
            if not math.isfinite(step_loss):
                raise RunError(f"fine-tuning loss became {step_loss} at step {step + 1}; lower learning_rate or use bfloat16/float32 instead of float16")
            losses.append(step_loss)
            window_losses.append(step_loss)
            done = step + 1
            seconds = seconds_before + time.perf_counter() - started
            bar.advance(task)
            if on_log is not None and (done % log_every == 0 or done == total_steps):
                on_log(StepLog(done, total_steps, sum(window_losses) / len(window_losses), lrs[-1], seconds))
                window_losses = []
            if done % save_every == 0 and done < total_steps:
                _save_checkpoint(accelerator, model, optimizer, lr_scheduler, ckpt_root, done, keep_checkpoints,
                                 {"step": done, "losses": losses, "learning_rates": lrs, "seconds": seconds,
                                  "fingerprint": config["fingerprint"]})

    seconds = seconds_before + time.perf_counter() - started
    accelerator.wait_for_everyone()
    output = out_dir / ("adapter" if args.method == "lora" else "model")
    result = TrainResult(
        output_path=output, method=args.method, steps=total_steps, losses=losses, learning_rates=lrs, num_examples=n,
        skipped_ids=skipped, seconds=seconds, dtype=config["dtype"], resumed_from_step=resumed_from,
        fingerprint=config["fingerprint"],
    )
    if accelerator.is_main_process:
        save_trained(accelerator.unwrap_model(model), processor, output, method=args.method, train_config=config)
        from vlmlab.runs import atomic_write_text

        atomic_write_text(out_dir / "result.json", result.to_json())
        if not keep_final_checkpoints:
            shutil.rmtree(ckpt_root, ignore_errors=True)
    accelerator.wait_for_everyone()
    return result


def _as_list(target_modules: tuple[str, ...] | str | None) -> list[str] | str | None:
    """PEFT's form of LoRA targets: names as a list (what callers passed before `FineTuneArgs`), or a regex."""
    return list(target_modules) if isinstance(target_modules, tuple) else target_modules


def _bar(show: bool, transient: bool = False) -> Any:
    bar = progress_bar(transient=transient)
    bar.disable = bar.disable or not show
    return bar


def _save_checkpoint(accelerator: Any, model: Any, optimizer: Any, lr_scheduler: Any, root: Path, step: int,
                     keep: int, state: dict[str, Any]) -> None:
    ckpt.write_rank_files(ckpt.tmp_checkpoint_dir(root, step), accelerator.process_index)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        ckpt.finish_checkpoint(
            root, step, model=accelerator.unwrap_model(model), optimizer_state=optimizer.state_dict(),
            scheduler_state=lr_scheduler.state_dict(), state=state, keep=keep,
        )
    accelerator.wait_for_everyone()
