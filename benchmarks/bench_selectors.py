"""Selector speed: training steps per second and selection throughput for v1–v4, the pointer variants (and v0).

    .venv/bin/python benchmarks/bench_selectors.py [--k 64] [--dim 384] [--hidden 256] [--batch 32]
        [--anchors 512] [--shots 2] [--threads 1] [--steps 20] [--repeats 3] [--v0] [--no-variants]

Variants (rows `v2+mmr`, `v2+dpp`, `v2+self-attn`, `v2+additive`, `v2+bilinear`, `v2+stop`): the
pointer-network options of upstream Lever-Plus v4-3/v4-7/v4-4/v4-5/v4-10 on the v2 network (`v2+stop`
trains on STOP-cut targets and selects up to `shots`).

Synthetic data in the exact beams/rl-data formats (`vlmlab.testing.selector_world`), K candidates
per query, D-wide embeddings. Per version: optimiser steps/s of each training phase (supervised
CE [+ ranking loss], and for v4 RCE and GRPO, where one GRPO "step" is one PPO-clip update), and
queries/s of `select` (greedy, `shots` ICDs, batches of 256 queries). Prints a small table: the
median of `--repeats` rounds, each round timing every row once in turn (so the rows alternate and a
burst of load on a shared machine hits them alike), the supervised rate also as a ratio to v2's in the
same round, the CPU seconds of the whole run and the load average before and after.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch

from vlmlab.icl.selectors import SelectorConfig, SelectorData, build_selector, select
from vlmlab.testing.selector_world import synthetic_task
from vlmlab.icl.selectors.train import grpo_updates, rce_step_loss, supervised_loss


def _rate(fn, steps: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return steps / (time.perf_counter() - start)


VARIANTS = {
    "v2+mmr": {"diversity": "mmr"},
    "v2+dpp": {"diversity": "dpp"},
    "v2+self-attn": {"candidate_self_attention": True},
    "v2+additive": {"scoring": "additive"},
    "v2+bilinear": {"scoring": "bilinear"},
    "v2+stop": {"stop_token": True},
}


def bench(version: str, data: SelectorData, args: argparse.Namespace, **options: object) -> dict[str, float]:
    cfg = SelectorConfig(
        **options,
        version=version,
        embedding_dim=data.embedding_dim,
        hidden_dim=args.hidden,
        num_heads=4 if version != "v1" else 1,
        pool_size=data.pool_size,
        shots=data.shots,
        batch_size=args.batch,
    )
    model = build_selector(cfg).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rows = torch.arange(args.batch)

    def step(loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    out = {"supervised steps/s": _rate(lambda: step(supervised_loss(model, cfg, data, rows)[0]), args.steps)}
    if cfg.uses_rl:
        out["rce steps/s"] = _rate(lambda: step(rce_step_loss(model, cfg, data, rows, 1.0)[0]), args.steps)
        reference = copy.deepcopy(model).eval().requires_grad_(False)
        one = cfg.model_copy(update={"grpo_inner_steps": 1})
        out["grpo updates/s"] = _rate(lambda: list(grpo_updates(model, reference, optimizer, one, data, rows, 0.1)), args.steps)
    model.eval()
    sel_rows = torch.arange(min(256, len(data)))
    query, pool, mask = data.query_emb[sel_rows], data.pool_embeddings(sel_rows), data.pool_mask[sel_rows]
    out["select queries/s"] = _rate(lambda: select(model, query, pool, data.shots, mask), max(3, args.steps // 4)) * len(sel_rows)
    out["params (k)"] = sum(p.numel() for p in model.parameters()) / 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--anchors", type=int, default=512)
    parser.add_argument("--shots", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="rounds over all rows; the table shows medians")
    parser.add_argument("--v0", action="store_true", help="also benchmark v0 (GPT-2)")
    parser.add_argument("--no-variants", action="store_true", help="skip the pointer variants")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = synthetic_task(n_anchors=args.anchors, support_size=args.anchors * 4, pool_size=args.k, dim=args.dim, shots=args.shots, num_beams=3, sampled_per_anchor=5)
    data = SelectorData.from_records(task.beams, task.support_ids, task.support_emb, rl=task.rl, dataset="synthetic")
    versions = (["v0"] if args.v0 else []) + ["v1", "v2", "v3", "v4"]
    cols = ["supervised steps/s", "x v2", "rce steps/s", "grpo updates/s", "select queries/s", "params (k)"]
    rows = [(v, v, {}) for v in versions] + ([] if args.no_variants else [(name, "v2", opts) for name, opts in VARIANTS.items()])
    load_before, cpu0, wall0 = os.getloadavg(), time.process_time(), time.perf_counter()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in rows}
    for _ in range(args.repeats):
        for name, version, options in rows:
            runs[name].append(bench(version, data, args, **options))
        base = runs["v2"][-1]["supervised steps/s"]
        for name, _, _ in rows:
            runs[name][-1]["x v2"] = runs[name][-1]["supervised steps/s"] / base
    load_after = os.getloadavg()
    print(f"K={args.k} D={args.dim} H={args.hidden} batch={args.batch} shots={args.shots} threads={args.threads} torch={torch.__version__}; "
          f"median of {args.repeats} alternating rounds; load average (1/5/15 min) before {'/'.join(f'{x:.2f}' for x in load_before)}, "
          f"after {'/'.join(f'{x:.2f}' for x in load_after)}; {time.process_time() - cpu0:.0f} CPU s, {time.perf_counter() - wall0:.0f} wall s")
    print("| version | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for name, _, _ in rows:
        med = {c: statistics.median(r[c] for r in runs[name]) for c in cols if c in runs[name][0]}
        print(f"| {name} | " + " | ".join((f"{med[c]:.2f}" if c == "x v2" else f"{med[c]:.1f}") if c in med else "-" for c in cols) + " |", flush=True)


if __name__ == "__main__":
    main()
