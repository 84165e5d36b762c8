"""InfoScore beam search speed on a tiny Qwen2-VL: our pipeline vs a reimplementation of the upstream loop.

    .venv/bin/python benchmarks/bench_beam.py [--anchors 3] [--k 16] [--beam 5] [--shots 2]

Ours: `vlmlab.icl.beam.beam_search` on an HF backend with the vision-feature cache; P(y|S⊕x) reused
from the step that created each beam; the children of all beams in one request stream.
Upstream (Lever-LM `generate_data.py` structure): per beam, P(y|S⊕x) re-scored, then one candidate
batch per beam; vision features recomputed in every forward (cache off).
Both run in the same process on the same anchors and pools; the table also checks they found the
same beams. Prints scored candidates per second and full forward passes per anchor.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image

from vlmlab.data.images import Image
from vlmlab.data.records import VQARecord
from vlmlab.icl.beam import beam_search, extend
from vlmlab.icl.infoscore import ScoreCounter, answer_probabilities
from vlmlab.icl.prompts import score_request


def upstream_beam_search(backend, anchor, pool, beam_size: int, shots: int, batch_size: int):
    """The upstream loop: re-score P(y|S⊕x) per beam, one candidate batch per beam."""
    counter = ScoreCounter()
    seqs: list[list[int]] = [[]]
    scores: list[float] = []
    for _ in range(shots):
        children, child_scores = [], []
        for seq in seqs:
            base = answer_probabilities(backend, [score_request("base", [pool[p] for p in seq], anchor)], batch_size, counter)[0]
            cands = [c for c in range(len(pool)) if c not in seq]
            probs = answer_probabilities(backend, [score_request(f"c{c}", [pool[p] for p in extend(seq, c, "left")], anchor) for c in cands], batch_size, counter)
            for c, p in zip(cands, probs):
                children.append(extend(seq, c, "left"))
                child_scores.append(float(p - base))
        top = np.argsort(-np.array(child_scores), kind="stable")[:beam_size]
        seqs = [children[i] for i in top]
        scores = [child_scores[i] for i in top]
    return seqs, scores, counter.requests


def toy_records(n: int, seed: int = 0) -> list[VQARecord]:
    rng = np.random.default_rng(seed)
    colours = ["red", "green", "blue", "yellow"]
    out = []
    for i in range(n):
        c = colours[i % 4]
        arr = np.zeros((56, 56, 3), np.uint8) + rng.integers(0, 255, size=3, dtype=np.uint8)
        arr[10:40, 10:40] = rng.integers(0, 255, size=3, dtype=np.uint8)
        out.append(VQARecord(question_id=str(i), image_id=str(i), image=Image.from_pil(PIL.Image.fromarray(arr)),
                             question="What colour is it?", answers=[c] * 10, multiple_choice_answer=c))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anchors", type=int, default=3)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--shots", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.manual_seed(0)
    from vlmlab.models.hf import HFBackend
    from vlmlab.models.tiny import tiny_model_path

    path = tiny_model_path("qwen2-vl", Path(tempfile.gettempdir()) / "vlmlab-bench-tiny")
    ours_backend = HFBackend(path, dtype="float32", vision_cache=True, batch_size=args.batch_size)
    up_backend = HFBackend(path, dtype="float32", vision_cache=False, batch_size=args.batch_size)
    records = toy_records(args.anchors + args.k * args.anchors)
    jobs = [(records[a], records[args.anchors + a * args.k: args.anchors + (a + 1) * args.k]) for a in range(args.anchors)]
    # warm-up (lazy init, allocator) on both
    beam_search(ours_backend, jobs[0][0], jobs[0][1][:3], beam_size=1, shots=1)
    upstream_beam_search(up_backend, jobs[0][0], jobs[0][1][:3], 1, 1, args.batch_size)

    rows = []
    same = True
    # alternate per anchor so that load from other processes hits both pipelines alike
    ours, ups, t_ours, t_up = [], [], 0.0, 0.0
    for a, p in jobs:
        t = time.perf_counter()
        ours.append(beam_search(ours_backend, a, p, beam_size=args.beam, shots=args.shots, batch_size=args.batch_size))
        t_ours += time.perf_counter() - t
        t = time.perf_counter()
        ups.append(upstream_beam_search(up_backend, a, p, args.beam, args.shots, args.batch_size))
        t_up += time.perf_counter() - t
    for o, (seqs, scores, _) in zip(ours, ups):
        same &= [b.positions for b in o.beams] == seqs and np.allclose([b.marginal for b in o.beams], scores, atol=1e-5)
    passes_ours = float(np.mean([o.forward_passes for o in ours]))
    passes_up = float(np.mean([u[2] for u in ups]))
    n_scored_ours = sum(o.forward_passes for o in ours)
    n_scored_up = sum(u[2] for u in ups)
    rows.append(("ours (vision cache, one stream, prefix reuse)", n_scored_ours / t_ours, passes_ours, t_ours / len(jobs)))
    rows.append(("upstream loop (re-encode, batch per beam)", n_scored_up / t_up, passes_up, t_up / len(jobs)))
    print(f"tiny qwen2-vl, {args.anchors} anchors, K={args.k}, beam {args.beam}, shots {args.shots}, batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    print(f"{'pipeline':<48} {'scored/s':>10} {'fwd/anchor':>11} {'s/anchor':>9}")
    for name, rate, passes, spa in rows:
        print(f"{name:<48} {rate:>10.1f} {passes:>11.1f} {spa:>9.2f}")
    print(f"speed-up (time per anchor): {t_up / t_ours:.2f}x; forward passes saved: {passes_up - passes_ours:.0f} per anchor; same beams: {same}")


if __name__ == "__main__":
    main()
