"""Generation throughput of the `hf` backend: batch 1, 8 and 32, with and without length buckets.

    .venv/bin/python benchmarks/bench_generate.py [--family qwen2-vl] [--items 64] [--new-tokens 16] [--repeats 3] [--threads 1]

The requests hold 0-2 images of varied sizes (28 to 224 px a side, mixed aspect ratios: 1 to 64
image tokens each on Qwen2-VL) and questions of varied length, so prompt lengths vary the way
real data does. The tiny model (built offline under a temp dir) gets a processor that keeps
images up to 224x224 px instead of resizing them to its 56 px default.

Every configuration runs `--repeats` times, alternating (one pass over all configurations, then
the next), so load from other processes hits them alike; the table prints the median items/s,
the ratio against batch 1 and against the same batch size without buckets, and whether every
configuration's texts equal batch 1's (greedy). Also printed: the padding share of the prompt
positions each configuration ran, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, Turn
from vlmlab.models.hf import HFBackend
from vlmlab.models.tiny import tiny_model_path

CONFIGS = [(1, False), (8, False), (8, True), (32, False), (32, True)]  # (batch size, length buckets)


def varied_images(n: int, seed: int = 0) -> list[Image]:
    """`n` images with sides drawn from 28..224 px (multiples of 28), a square of another colour on each."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w, h = (int(rng.integers(1, 9)) * 28 for _ in range(2))
        arr = np.zeros((h, w, 3), np.uint8) + rng.integers(0, 255, size=3, dtype=np.uint8)
        arr[h // 4 : h // 2, w // 4 : w // 2] = rng.integers(0, 255, size=3, dtype=np.uint8)
        out.append(Image.from_pil(PIL.Image.fromarray(arr)))
    return out


def requests(n: int, new_tokens: int, seed: int = 0) -> list[GenerationRequest]:
    rng = np.random.default_rng(seed)
    images = varied_images(2 * n, seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, 3))
        words = " of this" * int(rng.integers(0, 6))
        content = [*images[2 * i : 2 * i + k], "What is the colour" + words + "?"]
        out.append(GenerationRequest(id=f"q{i}", conversation=[Turn("user", content)], max_new_tokens=new_tokens))
    return out


def large_image_model(family: str, root: Path, side: int = 224) -> Path:
    """The tiny checkpoint with a processor that keeps images up to `side`x`side` pixels."""
    path = tiny_model_path(family, root)
    out = root / f"{path.name}-{side}px"
    if not out.exists():
        tmp = Path(tempfile.mkdtemp(dir=root))
        shutil.copytree(path, tmp, dirs_exist_ok=True)
        cfg = json.loads((tmp / "processor_config.json").read_text())
        cfg["image_processor"]["size"] = {"shortest_edge": 28 * 28, "longest_edge": side * side}
        (tmp / "processor_config.json").write_text(json.dumps(cfg, indent=2))
        tmp.rename(out)
    return out


def padding_share(backend: HFBackend, reqs: list[GenerationRequest], bs: int, buckets: bool) -> float:
    """The fraction of prompt positions that are padding when `reqs` are batched this way."""
    lengths = [backend._encode(r.conversation, None).input_ids.shape[0] for r in reqs]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i]) if buckets else list(range(len(lengths)))
    run = pad = 0
    for start in range(0, len(order), bs):
        chunk = [lengths[i] for i in order[start : start + bs]]
        run += max(chunk) * len(chunk)
        pad += max(chunk) * len(chunk) - sum(chunk)
    return pad / run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="qwen2-vl")
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    root = Path(tempfile.gettempdir()) / "vlmlab-bench-tiny"
    root.mkdir(exist_ok=True)
    path = large_image_model(args.family, root)
    reqs = requests(args.items, args.new_tokens)
    backend = HFBackend(path, dtype="float32", vision_cache=False)
    backend.generate(reqs[:8])  # warm-up
    rates: dict[tuple, list[float]] = {c: [] for c in CONFIGS}
    texts: dict[tuple, list[str]] = {}
    load = [os.getloadavg()[0]]
    cpu0 = time.process_time()
    for _ in range(args.repeats):
        for bs, buckets in CONFIGS:
            backend.batch_size, backend.length_buckets = bs, buckets
            t0 = time.perf_counter()
            res = backend.generate(reqs)
            rates[(bs, buckets)].append(args.items / (time.perf_counter() - t0))
            texts[(bs, buckets)] = [r.text for r in res]
            load.append(os.getloadavg()[0])
    tokens = [backend._encode(r.conversation, None).input_ids.shape[0] for r in reqs]
    print(f"family={args.family} items={args.items} max_new_tokens={args.new_tokens} threads={args.threads} repeats={args.repeats} "
          f"prompt tokens {min(tokens)}-{max(tokens)} (median {int(np.median(tokens))}); load average {min(load):.1f}-{max(load):.1f}; "
          f"CPU seconds {time.process_time() - cpu0:.0f}")
    print(f"{'batch':>5} {'buckets':>7} {'items/s':>8} {'vs batch 1':>10} {'vs unbucketed':>13} {'padding':>8} {'same text':>9}")
    base = float(np.median(rates[(1, False)]))
    for bs, buckets in CONFIGS:
        rate = float(np.median(rates[(bs, buckets)]))
        plain = float(np.median(rates[(bs, False)]))
        print(f"{bs:>5} {'yes' if buckets else 'no':>7} {rate:>8.2f} {rate / base:>9.2f}x {rate / plain:>12.2f}x "
              f"{padding_share(backend, reqs, bs, buckets):>7.0%} {str(texts[(bs, buckets)] == texts[(1, False)]):>9}")


if __name__ == "__main__":
    main()
