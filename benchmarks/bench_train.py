"""Fine-tuning speed on a tiny Qwen2-VL (the toy-model size of the feasibility note), batch 16.

    .venv/bin/python benchmarks/bench_train.py [--steps 30] [--batch 16] [--threads 1]

Compares vlmlab's accelerate loop (full and LoRA) with Hugging Face `Trainer` and a bare
forward/backward/AdamW loop on the same pre-encoded samples, collate function and model, and
prints the median steps/s over interleaved rounds. The machine's load average is
printed too: on a shared machine the absolute numbers move with it, the ratios much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import PIL.Image
import torch

from vlmlab.data.images import Image
from vlmlab.models.base import Turn
from vlmlab.train import TrainExample, fine_tune

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
QUESTIONS = ["What is the colour?", "What colour is this image?", "Answer with the colour of the picture."]


def make_examples(n: int) -> list[TrainExample]:
    images = {c: Image.from_pil(PIL.Image.new("RGB", (56, 56), c)) for c in COLOURS}
    return [
        TrainExample(f"ex{i}", [Turn("user", [images[COLOURS[i % 8]], QUESTIONS[i % 3]])], COLOURS[i % 8])
        for i in range(n)
    ]


def bench_vlmlab(model: Path, examples: list[TrainExample], out: Path, method: str, steps: int, batch: int) -> float:
    kw = dict(target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]) if method == "lora" else {}
    result = fine_tune(model, examples, out / method, method=method, max_steps=steps, batch_size=batch, max_length=128,
                       learning_rate=1e-3, save_every=10**9, show_progress=False, resume=False, **kw)
    return steps / result.seconds  # the optimizer loop only, like the others


def bench_trainer(model_path: Path, examples: list[TrainExample], out: Path, steps: int, batch: int) -> float:
    from transformers import AutoModelForImageTextToText, Trainer, TrainingArguments

    from vlmlab.models.processor import load_processor
    from vlmlab.train.batches import collate_with_labels
    from vlmlab.train.examples import encode_example

    processor = load_processor(model_path)
    encoded = [encode_example(processor, ex) for ex in examples]
    pad = processor.tokenizer.pad_token_id

    def collate(items: list[dict]) -> dict:
        chosen = [encoded[item["idx"]] for item in items]
        return collate_with_labels([e.encoded for e in chosen], [e.labels for e in chosen], pad)

    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32)
    args = TrainingArguments(
        output_dir=str(out / "trainer"), per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-3,
        lr_scheduler_type="cosine", warmup_steps=1, logging_steps=10**9, save_strategy="no", report_to=[],
        dataloader_num_workers=0, use_cpu=True, remove_unused_columns=False, disable_tqdm=True, seed=0,
    )
    dataset = [{"idx": i} for i in range(len(encoded))]
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collate)
    start = time.perf_counter()
    trainer.train()
    return steps / (time.perf_counter() - start)


def bench_plain(model_path: Path, examples: list[TrainExample], steps: int, batch: int) -> float:
    """The floor: forward, backward and AdamW on the same batches, nothing else."""
    from transformers import AutoModelForImageTextToText

    from vlmlab.models.processor import load_processor
    from vlmlab.train.batches import collate_with_labels
    from vlmlab.train.examples import encode_example

    processor = load_processor(model_path)
    encoded = [encode_example(processor, ex) for ex in examples]
    pad = processor.tokenizer.pad_token_id
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = [collate_with_labels([e.encoded for e in encoded[i:i + batch]], [e.labels for e in encoded[i:i + batch]], pad)
               for i in range(0, batch * steps, batch) if i + batch <= len(encoded)]
    start = time.perf_counter()
    for k in range(steps):
        b = dict(batches[k % len(batches)])
        model(**b).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="variants run interleaved; the median is shown")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        # On a shared, oversubscribed CPU, 1 thread per process avoids OpenMP spin-waiting (20x here).
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vlmlab.models.tiny import build_tiny

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny("qwen2-vl", root / "tiny")  # hidden 128, 4 layers: ~1.5 M parameters
        n_params = sum(t.numel() for t in __import__("safetensors.torch", fromlist=["load_file"]).load_file(
            str(model / "model.safetensors")).values())
        examples = make_examples(args.examples)
        variants = {
            "vlmlab loop, full": lambda: bench_vlmlab(model, examples, root, "full", args.steps, args.batch),
            "vlmlab loop, LoRA r16 attn": lambda: bench_vlmlab(model, examples, root, "lora", args.steps, args.batch),
            "HF Trainer, full": lambda: bench_trainer(model, examples, root, args.steps, args.batch),
            "plain torch loop, full": lambda: bench_plain(model, examples, args.steps, args.batch),
        }
        bench_vlmlab(model, examples, root, "full", 2, args.batch)  # warm-up
        rates: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):  # interleaved, so that a change in machine load hits all variants
            for name, run in variants.items():
                rates[name].append(run())
        rows = [(name, statistics.median(r), min(r), max(r)) for name, r in rates.items()]
    load = os.getloadavg()[0]
    print(f"tiny qwen2-vl, {n_params / 1e6:.2f} M params, batch {args.batch}, {args.steps} steps, "
          f"torch threads {torch.get_num_threads()}, load average {load:.1f}")
    print(f"{'loop':<28} {'steps/s':>8} {'min':>6} {'max':>6} {'samples/s':>10}")
    for name, rate, low, high in rows:
        print(f"{name:<28} {rate:>8.2f} {low:>6.2f} {high:>6.2f} {rate * args.batch:>10.1f}")


if __name__ == "__main__":
    main()
