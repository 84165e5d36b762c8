"""Caption study pieces that scale with the dataset: ERP->cubemap projection and the human row.

    .venv/bin/python benchmarks/bench_caption.py [--erp 2048] [--size 256] [--quic /work/shared/fixtures/quic360/test.tsv]

1. Projection: a 2:1 ERP of width `--erp` to 4 (and 6) perspective views of `--size` pixels (numpy,
   bilinear, one thread of work) — seconds per panorama, i.e. what preparing 5,349 test rows costs once.
2. Human leave-one-out row on the full QuIC-360 test split in both modes (BLEU, ROUGE-L, CIDEr; the
   published per-row figures are CIDEr ~0.17 and BLEU-4 ~0.022).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import PIL.Image

from vlmlab.caption.panorama import cubemap_views
from vlmlab.caption.scoring import human_scores
from vlmlab.data.captions import read_caption_table


def bench_projection(erp_width: int, size: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(0)
    pano = PIL.Image.fromarray(rng.integers(0, 256, (erp_width // 2, erp_width, 3), dtype=np.uint8))
    rows = []
    for views in (4, 6):
        cubemap_views(pano, size=size, views=views)  # warm up
        t0 = time.perf_counter()
        repeats = 3
        for _ in range(repeats):
            cubemap_views(pano, size=size, views=views)
        rows.append((f"cubemap {views} views of {size}px from {erp_width}x{erp_width // 2}", f"{(time.perf_counter() - t0) / repeats:.3f} s / panorama"))
    return rows


def bench_human(path: Path) -> list[tuple[str, str]]:
    pairs = read_caption_table(path)
    refs = {p.id: p.references for p in pairs}
    rows = [("QuIC-360 test pairs / references", f"{len(pairs)} / {sum(len(r) for r in refs.values())}")]
    for mode in ("per-row", "grouped"):
        t0 = time.perf_counter()
        result = human_scores(refs, mode=mode, metrics=["BLEU", "ROUGE-L", "CIDEr"])
        s = result.scores
        rows.append((f"human row, {mode} (n={result.n})",
                     f"CIDEr {s['CIDEr']:.4f}  BLEU-4 {s['BLEU-4']:.4f}  ROUGE-L {s['ROUGE-L']:.4f}  ({time.perf_counter() - t0:.1f} s)"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--erp", type=int, default=2048)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--quic", type=Path, default=Path("/work/shared/fixtures/quic360/test.tsv"))
    args = parser.parse_args()
    rows = bench_projection(args.erp, args.size)
    if args.quic.is_file():
        rows += bench_human(args.quic)
    width = max(len(r[0]) for r in rows)
    print(f"{'what'.ljust(width)}  result")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
