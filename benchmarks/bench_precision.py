"""Load time, generate time, peak memory and weight bytes of one tiny family at fp32 / bf16 /
int8 / int4 (torchao weight-only), each in a fresh process so peak memory is its own.

    .venv/bin/python benchmarks/bench_precision.py [--family qwen2-vl] [--hidden 512] [--threads 1]

The tiny model is built offline (a wider text model than the tests' default, so the weights
dominate memory). Prints one Markdown table row per precision, plus the max |logprob| difference
of scored targets against fp32.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np, PIL.Image, torch
torch.set_num_threads(int(sys.argv[3]))
from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, ScoreRequest, Turn
from vlmlab.models.hf import HFBackend
path, precision = sys.argv[1], sys.argv[2]
options = {"fp32": {"dtype": "float32"}, "bf16": {"dtype": "bfloat16"}, "int8": {"quantization": "int8"}, "int4": {"quantization": "int4"}}[precision]
images = [Image.from_pil(PIL.Image.new("RGB", (56, 56), c)) for c in [(220, 30, 30), (30, 200, 40), (40, 60, 230), (240, 220, 20)]]
t0 = time.perf_counter(); b = HFBackend(path, batch_size=8, **options); load = time.perf_counter() - t0
reqs = [GenerationRequest(id=str(i), conversation=[Turn("user", [images[i % 4], "What colour is it?"])], max_new_tokens=16) for i in range(8)]
b.generate(reqs[:1])
t1 = time.perf_counter(); b.generate(reqs); gen = time.perf_counter() - t1
scores = b.score([ScoreRequest(id=str(i), conversation=r.conversation, target="red") for i, r in enumerate(reqs[:4])])
wbytes = 0
for p in b.model.parameters():
    if hasattr(p, "__tensor_flatten__") and type(p) is not torch.nn.Parameter:
        names, _ = p.__tensor_flatten__(); wbytes += sum(getattr(p, n).numel() * getattr(p, n).element_size() for n in names)
    else:
        wbytes += p.numel() * p.element_size()
print(json.dumps({"load_s": load, "generate_s": gen, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "weight_mb": wbytes / 2**20, "logprobs": np.concatenate([s.token_logprobs for s in scores]).tolist()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="qwen2-vl")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from vlmlab.models.tiny import tiny_model_path

    with tempfile.TemporaryDirectory() as tmp:
        path = tiny_model_path(args.family, Path(tmp), hidden_size=args.hidden, intermediate_size=2 * args.hidden)
        rows = {}
        for precision in ("fp32", "bf16", "int8", "int4"):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), precision, str(args.threads)],
                                 capture_output=True, text=True, check=True)
            rows[precision] = json.loads(out.stdout.strip().splitlines()[-1])
    ref = rows["fp32"]["logprobs"]
    print(f"tiny {args.family}, text hidden {args.hidden}, {args.threads} thread(s); generate = 8 prompts x 16 new tokens, batch 8")
    print("| precision | load s | generate s | peak RSS MB | weights MB | max abs logprob diff vs fp32 |")
    print("|---|---|---|---|---|---|")
    for precision, r in rows.items():
        diff = max(abs(a - b) for a, b in zip(r["logprobs"], ref))
        print(f"| {precision} | {r['load_s']:.2f} | {r['generate_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['weight_mb']:.1f} | {diff:.4f} |")
    json.dump(rows, sys.stderr)


if __name__ == "__main__":
    main()
