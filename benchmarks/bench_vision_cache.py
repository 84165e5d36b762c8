"""`score()` with vs without the vision-feature cache, on a tiny Qwen2-VL (ICL-like workload).

    .venv/bin/python benchmarks/bench_vision_cache.py [--family qwen2-vl] [--requests 64] [--threads 1]

Each request shows 2 demonstration images plus a query image drawn from a pool of 8 images, as in
InfoScore beam search where the same images are scored many times. Prints seconds for each mode,
the speed-up ratio, the cache hit count, and the largest difference between the two modes'
log-probabilities (must be <= 1e-5).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from vlmlab.data.images import Image
from vlmlab.models.base import ScoreRequest, Turn
from vlmlab.models.hf import HFBackend
from vlmlab.models.tiny import tiny_model_path


def requests(n: int, size: int) -> list[ScoreRequest]:
    rng = np.random.default_rng(0)
    images = [Image.from_pil(PIL.Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))) for _ in range(8)]
    out = []
    for i in range(n):
        a, b, q = (int(x) for x in rng.choice(8, 3, replace=False))
        conv = [
            Turn("user", [images[a], "What is the colour?"]), Turn("assistant", "red"),
            Turn("user", [images[b], "What is the colour?"]), Turn("assistant", "blue"),
            Turn("user", [images[q], "What is the colour?"]),
        ]
        out.append(ScoreRequest(id=f"s{i}", conversation=conv, target=["green", "red", "blue"][i % 3]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="qwen2-vl")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vision-depth", type=int, default=4, help="tiny vision tower depth (real towers are deep)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = tiny_model_path(args.family, Path(tmp), vision_depth=args.vision_depth)
        reqs = requests(args.requests, 56)
        timings, results = {}, {}
        for cache in (False, True):
            backend = HFBackend(path, batch_size=8, vision_cache=cache)
            backend.score(reqs[:8])  # warm-up (and, cached, fills part of the cache like a running study)
            backend.clear_vision_cache()
            t0 = time.perf_counter()
            results[cache] = backend.score(reqs)
            timings[cache] = time.perf_counter() - t0
            hits = backend.vision_cache_hits
    diff = max(float(np.abs(a.token_logprobs - b.token_logprobs).max()) for a, b in zip(results[False], results[True]))
    print(f"family={args.family} requests={args.requests} images/request=3 pool=8 vision_depth={args.vision_depth} threads={args.threads}")
    print(f"{'mode':>10} {'seconds':>8} {'req/s':>8}")
    for cache in (False, True):
        print(f"{'cached' if cache else 'uncached':>10} {timings[cache]:>8.2f} {args.requests / timings[cache]:>8.2f}")
    print(f"speed-up: {timings[False] / timings[True]:.2f}x   cache hits: {hits}   max |diff| logprob: {diff:.2e}")


if __name__ == "__main__":
    main()
