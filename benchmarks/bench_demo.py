"""Time per stage of `vlmlab demo` from scratch: toy data, first-time toy model builds, three studies, report.

    .venv/bin/python benchmarks/bench_demo.py            # full and quick plans, fresh model cache each
    .venv/bin/python benchmarks/bench_demo.py --plan quick --cache ~/.cache/vlmlab/toymodels   # reuse built models

Each plan runs in a new temporary folder with (by default) a new, empty toy model cache, so the
first-time model builds are included as they are on a fresh machine. The budget is 5 minutes for
the full plan and 1 minute for `--quick` on a 2-core CPU. The machine's load average is printed:
on a shared machine the absolute numbers move with it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

BUDGET = {"full": 300.0, "quick": 60.0}


def run(plan: str, cache: Path | None, seed: int) -> dict:
    from vlmlab.demo import run_demo

    with tempfile.TemporaryDirectory(prefix=f"bench-demo-{plan}-") as tmp:
        root = Path(tmp)
        load0 = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        result = run_demo(root / "demo", quick=plan == "quick", seed=seed, cache_root=cache or root / "toymodels")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {"plan": plan, "stages": result.timings["stages"], "wall": wall, "cpu": cpu, "load": (load0 + os.getloadavg()[0]) / 2,
                "summary": result.summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", choices=["full", "quick", "both"], default="both")
    parser.add_argument("--cache", type=Path, default=None, help="toy model cache to reuse (default: a new empty one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    plans = ["quick", "full"] if args.plan == "both" else [args.plan]
    results = [run(p, args.cache, args.seed) for p in plans]
    names = list(dict.fromkeys(n for r in results for n in r["stages"]))
    print(f"\n{'stage':24}" + "".join(f"{r['plan'] + ' (s)':>12}" for r in results))
    for name in names:
        print(f"{name:24}" + "".join(f"{r['stages'].get(name, float('nan')):12.1f}" for r in results))
    print(f"{'total wall':24}" + "".join(f"{r['wall']:12.1f}" for r in results))
    print(f"{'process CPU':24}" + "".join(f"{r['cpu']:12.1f}" for r in results))
    print(f"{'budget':24}" + "".join(f"{BUDGET[r['plan']]:12.0f}" for r in results))
    print(f"{'load average':24}" + "".join(f"{r['load']:12.1f}" for r in results))
    for r in results:
        icl = r["summary"]["icl"]["accuracy"]
        cap = r["summary"]["caption"]
        print(f"{r['plan']}: CIDEr {cap['before']['CIDEr']:.3f} -> {cap['after']['CIDEr']:.3f}; 2-shot VQA "
              + ", ".join(f"{m} {icl[m]['2']['accuracy']:.3f}" for m in ("random", "text", "image", "selector") if "2" in icl.get(m, {}))
              + f"; rating kappa {r['summary']['rating'].get('kappa', float('nan')):.3f}, valence r {r['summary']['rating'].get('valence_r', float('nan')):.3f}")


if __name__ == "__main__":
    main()
