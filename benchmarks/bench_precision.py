"""Load time, generate time, memory and weight bytes of one tiny family at fp32 / bf16 / int8 /
int4 (torchao weight-only), each in a fresh process so its memory is its own; medians of repeats.

    .venv/bin/python benchmarks/bench_precision.py [--family qwen2-vl] [--hidden 512] [--repeats 3] [--out FILE.md]

The tiny model is built offline with a wider text model than the tests' default (hidden 512, so
the weights dominate memory). Precisions run interleaved (fp32, bf16, int8, int4, fp32, ...) so a
change in machine load hits them alike. Per run:

- load seconds (wall: processor and family facts, then the weights), generate seconds (wall), and
  CPU seconds of the whole child (imports included);
- weights MB: bytes the parameters hold (torchao tensors: their int8 data and scales);
- +anon after load MB: anonymous (heap) memory the process holds once loaded, minus what it held
  just before (every child has imported torch, transformers, torchao and the model's modules and
  built the processor by then): the model's own footprint;
- +anon peak in load MB: the same, at its highest while loading (sampled every 2 ms);
- +file pages after load MB: resident pages of mapped files added by the load (the safetensors
  checkpoint is memory-mapped; clean pages the kernel can drop, but counted in RSS);
- peak RSS MB: the kernel's high-water mark (VmHWM): imports (torchao's alone add the MB printed
  under the table), anon and file pages together;
- max |logprob| difference of scored targets against fp32.

transformers 5 quantizes with torchao while loading, weight by weight, on a model created on the
meta device; these columns show what that saves and what it does not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRECISIONS = ("fp32", "bf16", "int8", "int4")

CHILD = r"""
import json, sys, threading, time
t_start = time.process_time()
import numpy as np, PIL.Image, torch
torch.set_num_threads(int(sys.argv[3]))
from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, ScoreRequest, Turn
from vlmlab.models.hf import HFBackend
from vlmlab.models.checkpoint import model_class, open_checkpoint
path, precision = sys.argv[1], sys.argv[2]

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

rss_plain = status("VmRSS")
import torchao, transformers.integrations.torchao  # noqa: F401,E401 - in every child, so the baselines below compare
torchao_mb = status("VmRSS") - rss_plain
t_open = time.perf_counter()
processor, spec = open_checkpoint(__import__("pathlib").Path(path))  # processor, tokenizer and the model's modules imported
model_class(__import__("pathlib").Path(path))
open_s = time.perf_counter() - t_open

options = {"fp32": {"dtype": "float32"}, "bf16": {"dtype": "bfloat16"}, "int8": {"quantization": "int8"},
           "int4": {"quantization": "int4"}}[precision]
images = [Image.from_pil(PIL.Image.new("RGB", (56, 56), c)) for c in [(220, 30, 30), (30, 200, 40), (40, 60, 230), (240, 220, 20)]]
anon0, file0, rss0 = status("RssAnon"), status("RssFile"), status("VmRSS")
peak = {"anon": anon0}
done = threading.Event()
def sample():
    while not done.wait(0.002):
        peak["anon"] = max(peak["anon"], status("RssAnon"))
sampler = threading.Thread(target=sample, daemon=True); sampler.start()
t0 = time.perf_counter(); b = HFBackend(path, batch_size=8, spec=spec, processor=processor, **options); load = time.perf_counter() - t0
done.set(); sampler.join()
anon_loaded, file_loaded = status("RssAnon"), status("RssFile")
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
print(json.dumps({"load_s": open_s + load, "weights_load_s": load, "generate_s": gen, "cpu_s": time.process_time() - t_start, "weight_mb": wbytes / 2**20,
                  "imports_rss_mb": rss0, "torchao_import_mb": torchao_mb, "anon_loaded_mb": anon_loaded - anon0,
                  "anon_peak_load_mb": peak["anon"] - anon0, "file_loaded_mb": file_loaded - file0,
                  "peak_rss_mb": status("VmHWM"), "logprobs": np.concatenate([s.token_logprobs for s in scores]).tolist()}))
"""

COLUMNS = [("load_s", "load s", 2), ("weights_load_s", "of it weights s", 2), ("generate_s", "generate s", 2), ("cpu_s", "CPU s", 1), ("weight_mb", "weights MB", 1),
           ("anon_loaded_mb", "+anon after load MB", 0), ("anon_peak_load_mb", "+anon peak in load MB", 0),
           ("file_loaded_mb", "+file pages after load MB", 0), ("peak_rss_mb", "peak RSS MB", 0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="qwen2-vl")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args()
    from vlmlab.models.tiny import tiny_model_path

    runs: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
    load_before = os.getloadavg()
    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = tiny_model_path(args.family, Path(tmp), hidden_size=args.hidden, intermediate_size=2 * args.hidden)
        checkpoint_mb = sum(f.stat().st_size for f in path.glob("*.safetensors")) / 2**20
        for _ in range(args.repeats):
            for precision in PRECISIONS:
                out = subprocess.run([sys.executable, "-c", CHILD, str(path), precision, str(args.threads)],
                                     capture_output=True, text=True, check=True)
                runs[precision].append(json.loads(out.stdout.strip().splitlines()[-1]))
    load_after = os.getloadavg()
    ref = runs["fp32"][0]["logprobs"]
    lines = [
        f"tiny {args.family}, text hidden {args.hidden} (checkpoint {checkpoint_mb:.0f} MB fp32), {args.threads} torch thread(s); "
        f"generate = 8 prompts x 16 new tokens, batch 8; median of {args.repeats} interleaved runs per precision, "
        f"{time.perf_counter() - wall0:.0f} s in all; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after",
        "",
        "| precision | " + " | ".join(label for _, label, _ in COLUMNS) + " | max abs logprob diff vs fp32 |",
        "|---" * (len(COLUMNS) + 2) + "|",
    ]
    for precision, rs in runs.items():
        cells = [f"{statistics.median(r[key] for r in rs):.{digits}f}" for key, _, digits in COLUMNS]
        diff = max(abs(a - b) for r in rs for a, b in zip(r["logprobs"], ref))
        lines.append(f"| {precision} | " + " | ".join(cells) + f" | {diff:.4f} |")
    lines.append("")
    lines.append(f"importing torchao adds {statistics.median(r['torchao_import_mb'] for rs in runs.values() for r in rs):.0f} MB of RSS "
                 f"(every child imports it, to compare like with like; an fp32 or bf16 run without it holds that much less)")
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    json.dump(runs, sys.stderr)


if __name__ == "__main__":
    main()
