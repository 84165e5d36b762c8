"""Time toy-world generation at the default sizes (and print a small table).

    .venv/bin/python benchmarks/bench_toyworld.py [--repeat 1]

Each kind is generated into a fresh temp folder with seed 0; the table shows wall time, CPU time,
items per second and the bytes written.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from vlmlab.toyworld import DEFAULT_SIZES, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per kind; the best is reported")
    args = parser.parse_args()
    print(f"{'kind':<10} {'n':>6} {'files':>6} {'wall s':>8} {'cpu s':>8} {'items/s':>9} {'MB':>7}")
    for kind, n in DEFAULT_SIZES.items():
        best_wall = best_cpu = float("inf")
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / kind
                w0, c0 = time.perf_counter(), time.process_time()
                manifest = generate(kind, out, n=n, seed=0)
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
            best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
        print(f"{kind:<10} {n:>6} {len(manifest.files):>6} {best_wall:>8.2f} {best_cpu:>8.2f} {n / best_wall:>9.0f} {size / 1e6:>7.2f}")


if __name__ == "__main__":
    main()
