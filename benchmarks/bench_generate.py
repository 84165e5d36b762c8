"""Generation throughput of the `hf` backend, batch 1 vs batch 8, on a tiny Qwen2-VL.

    .venv/bin/python benchmarks/bench_generate.py [--family qwen2-vl] [--items 32] [--threads 1]

Prints items/s at each batch size, the ratio, and whether the outputs are identical (greedy
batched output must equal unbatched output). The tiny model is built offline under a temp dir.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import PIL.Image
import torch

from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, Turn
from vlmlab.models.hf import HFBackend
from vlmlab.models.tiny import tiny_model_path


def requests(n: int, new_tokens: int) -> list[GenerationRequest]:
    colours = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (240, 220, 20), (200, 0, 200), (0, 200, 200)]
    images = [Image.from_pil(PIL.Image.new("RGB", (56, 56), c)) for c in colours]
    return [
        GenerationRequest(
            id=f"q{i}",
            conversation=[Turn("user", [images[i % 6]] * (1 + i % 2) + ["What is the colour" + " of this" * (i % 3) + "?"])],
            max_new_tokens=new_tokens,
        )
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="qwen2-vl")
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = tiny_model_path(args.family, Path(tmp))
        reqs = requests(args.items, args.new_tokens)
        rows = []
        outputs = {}
        for bs in (1, 8):
            backend = HFBackend(path, batch_size=bs)
            backend.generate(reqs[:bs])  # warm-up
            t0 = time.perf_counter()
            res = backend.generate(reqs)
            secs = time.perf_counter() - t0
            outputs[bs] = [r.text for r in res]
            rows.append((bs, secs, args.items / secs))
    print(f"family={args.family} items={args.items} max_new_tokens={args.new_tokens} threads={args.threads}")
    print(f"{'batch':>5} {'seconds':>8} {'items/s':>8}")
    for bs, secs, ips in rows:
        print(f"{bs:>5} {secs:>8.2f} {ips:>8.2f}")
    print(f"ratio batch8/batch1: {rows[1][2] / rows[0][2]:.2f}x   identical outputs: {outputs[1] == outputs[8]}")


if __name__ == "__main__":
    main()
