#!/usr/bin/env bash
# GPU conformance check of the tiny-model matrix (prepared for the lead; not run by CI):
#   OUT=/some/folder bash benchmarks/gpu_matrix.sh
# Per family: load, greedy generate, batched == unbatched generate, score, at CUDA bf16 and at
# bitsandbytes 4-bit (when bitsandbytes is importable) and torchao int8; writes $OUT/gpu_matrix.md.
# About 2-4 minutes on one GPU (tiny models; the time is mostly imports and builds).
set -euo pipefail
OUT="${OUT:-$PWD/gpu-matrix-out}"
mkdir -p "$OUT"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export HF_HUB_OFFLINE=1 VLMLAB_HOME="$OUT/vlmlab-home"
"$PY" - "$OUT" <<'PYEOF'
import importlib.util, json, sys, time, traceback
from pathlib import Path
import PIL.Image, torch
from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, ScoreRequest, Turn
from vlmlab.models.hf import HFBackend
from vlmlab.models.tiny import TINY_FAMILIES, tiny_model_path

out = Path(sys.argv[1])
assert torch.cuda.is_available(), "no CUDA device"
variants = {"cuda-bf16": {"dtype": "bfloat16", "device_map": "cuda"}, "cuda-int8-torchao": {"quantization": "int8", "device_map": "cuda"}}
if importlib.util.find_spec("bitsandbytes"):
    variants["cuda-bnb-4bit"] = {"quantization": "4bit", "device_map": "cuda"}
ims = [Image.from_pil(PIL.Image.new("RGB", (56, 56), c)) for c in [(220, 30, 30), (30, 200, 40), (40, 60, 230)]]
convs = [[Turn("user", [ims[i], "What is the colour" + " of it" * i + "?"])] for i in range(3)]
rows = {}
for family, recipe in TINY_FAMILIES.items():
    if recipe.missing():
        rows[family] = {v: f"needs {','.join(recipe.missing())}" for v in variants}
        continue
    path = tiny_model_path(family, out / "tiny")
    rows[family] = {}
    for name, options in variants.items():
        try:
            t0 = time.perf_counter()
            b = HFBackend(path, batch_size=3, **options)
            greqs = [GenerationRequest(id=str(i), conversation=c, max_new_tokens=6) for i, c in enumerate(convs)]
            batched = b.generate(greqs)
            b.batch_size = 1
            single = b.generate(greqs)
            scores = b.score([ScoreRequest(id=str(i), conversation=c, target="red") for i, c in enumerate(convs)])
            assert all(r.status != "error" for r in batched + single), [r.error for r in batched + single]
            assert all(s.status == "ok" for s in scores), [s.error for s in scores]
            same = [r.text for r in batched] == [r.text for r in single]
            rows[family][name] = f"ok{'' if same else ' (batched!=unbatched)'} {time.perf_counter() - t0:.1f}s"
        except Exception as exc:
            rows[family][name] = f"FAIL {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
            traceback.print_exc()
lines = ["| family | " + " | ".join(variants) + " |", "|---" * (len(variants) + 1) + "|"]
lines += [f"| {f} | " + " | ".join(r.get(v, "-") for v in variants) + " |" for f, r in rows.items()]
(out / "gpu_matrix.md").write_text("\n".join(lines) + "\n")
(out / "gpu_matrix.json").write_text(json.dumps(rows, indent=1))
print("\n".join(lines))
PYEOF
