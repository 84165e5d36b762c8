"""Build time of every toy model recipe (full and quick), each into a fresh cache folder.

    .venv/bin/python benchmarks/bench_toymodels.py [--recipes icl-vqa,face-rater] [--quick-only] [--threads 1]

Prints one row per recipe: wall seconds of `build_toy_model` (data generation, encoding, training,
saving; a `base` recipe such as captioner-base is built first and counted in its own row), the
process CPU seconds of the same call, the seconds spent inside the optimizer loops, and the final
training loss per stage. The machine's load average is printed too: on a shared 2-core machine wall
time follows the load, CPU time much less. Budgets (idle machine): icl-vqa <= 90 s,
captioner + captioner-base <= 60 s, face-rater <= 40 s, each quick variant <= 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from vlmlab.toymodels import build_toy_model, get_recipe

ORDER = ("captioner-base", "captioner", "icl-vqa", "face-rater")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(ORDER))
    parser.add_argument("--quick-only", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    names = []
    for base in args.recipes.split(","):
        names.append(f"{base}-quick")
        if not args.quick_only:
            names.append(base)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            recipe = get_recipe(name)
            t0, c0 = time.perf_counter(), time.process_time()
            path = build_toy_model(recipe, cache_root=Path(tmp), progress=False, threads=args.threads)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            training = json.loads((path / "training.json").read_text())
            train = sum(s["train_seconds"] for s in training["stages"])
            losses = " / ".join(f"{s['last_loss']:.2f}" for s in training["stages"])
            rows.append((name, wall, cpu, train, losses, os.getloadavg()[0]))
    print(f"{'recipe':<22} {'wall s':>8} {'cpu s':>8} {'train s':>8} {'load':>5}  final loss per stage")
    for name, wall, cpu, train, losses, load in rows:
        print(f"{name:<22} {wall:8.1f} {cpu:8.1f} {train:8.1f} {load:5.1f}  {losses}")


if __name__ == "__main__":
    main()
