"""The conformance matrix as a benchmark: every tiny family built offline, every check of
`vlmlab.testing.conformance` run on it, with what `vlmlab models list` says each family supports
and the seconds each family took.

    .venv/bin/python benchmarks/bench_conformance.py [--out benchmarks/results/conformance.md] [--family llava ...]

Prints the family x check table and writes it, with the support table, the override count, the
timings and the machine's load, as Markdown to `--out`. Exits 1 when a check fails. The test
suite runs the same checks (tests/models/test_conformance_matrix.py) and prints the same table in
its terminal summary.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from vlmlab.models.support import SUPPORT_COLUMNS, family_support
from vlmlab.models.tiny import TINY_FAMILIES, tiny_model_path
from vlmlab.testing.conformance import CHECKS, KNOWN_FAILURES, header, row

PASSING = ("ok", "n/a", "refused", "needs ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "conformance.md")
    ap.add_argument("--family", action="append", help="only these families (repeatable; default all)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    from vlmlab.testing.conformance import run_all

    families = args.family or list(TINY_FAMILIES)
    load_before = os.getloadavg()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results: dict[str, dict[str, str]] = {}
    seconds: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in families:
            missing = TINY_FAMILIES[family].missing()
            if missing:
                results[family] = {c: f"needs {', '.join(missing)}" for c in CHECKS}
                seconds[family] = {}
                continue
            t0 = time.perf_counter()
            path = tiny_model_path(family, Path(tmp))
            seconds[family] = {"build": time.perf_counter() - t0}
            results[family] = run_all(path, seconds=seconds[family])
            print(row(family, results[family]), f"({sum(seconds[family].values()):.1f} s)", flush=True)
    support = {f: family_support(f) for f in families}
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    load_after = os.getloadavg()

    table = "\n".join([header(), *(row(f, r) for f, r in results.items())])
    print("\n" + table)
    failed = {f: {c: v for c, v in r.items() if not v.startswith(PASSING)} for f, r in results.items()}
    known = {f: r for f, r in failed.items() if r and set(r) == set(KNOWN_FAILURES.get(f, {}))}
    failed = {f: r for f, r in failed.items() if r and f not in known}
    overridden = [f for f, s in support.items() if s.overrides]
    lines = [
        "# Conformance matrix (issue #13)",
        "",
        f"Written by `benchmarks/bench_conformance.py` on {time.strftime('%Y-%m-%d')}: {len(families)} tiny families "
        f"(random weights, vlmlab's locally trained tokenizer), transformers {transformers.__version__}, torch "
        f"{torch.__version__}, {platform.machine()} CPU, {args.threads} torch thread(s), torchvision "
        f"{'installed' if importlib.util.find_spec('torchvision') else 'not installed'}.",
        f"Wall {wall:.0f} s, CPU {cpu:.0f} s; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
        f"(the machine is shared, so seconds are noisy).",
        "",
        "`ok` passed; `n/a` the family does not offer it (no vision-feature cache); `refused >N` a one-line refusal "
        "of more images than the family takes; `needs X` the family's processor needs a module missing here.",
        "",
        table,
        "",
        f"{sum(1 for r in results.values() if all(v.startswith(('ok', 'n/a', 'refused')) for v in r.values()))}/{len(families)} "
        f"families pass every check; {len(known)} with a known failure (below); "
        f"{sum(1 for f in families if TINY_FAMILIES[f].missing())} not run here (a module missing)"
        + (f"; unexpected failures: {failed}" if failed else "") + ".",
        *(f"\nKnown failure, {f} {c}: {KNOWN_FAILURES[f][c]}. Measured: {v[:160]}" for f, r in known.items() for c, v in r.items()),
        "",
        "## What each family supports (`vlmlab models list`)",
        "",
        f"Derived from the checkpoint by the backend's own code (`vlmlab.models.support`). {len(overridden)} of "
        f"{len(families)} families need an explicit registry override ({', '.join(overridden) or 'none'}); the rest "
        "are derived entirely.",
        "",
        "| family | model_type | " + " | ".join(SUPPORT_COLUMNS) + " |",
        "|---" * (len(SUPPORT_COLUMNS) + 2) + "|",
        *(f"| {f} | {s.model_type} | " + " | ".join(s.cells()[c] for c in SUPPORT_COLUMNS) + " |" for f, s in support.items()),
        "",
        "## Seconds per family (build + checks, wall clock)",
        "",
        "| family | build | " + " | ".join(CHECKS) + " | total |",
        "|---" * (len(CHECKS) + 3) + "|",
        *(f"| {f} | {t.get('build', 0):.1f} | " + " | ".join(f"{t[c]:.1f}" if c in t else "-" for c in CHECKS)
          + f" | {sum(t.values()):.1f} |" for f, t in seconds.items()),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"\nwrote {args.out}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
