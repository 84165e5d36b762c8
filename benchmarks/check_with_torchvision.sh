#!/usr/bin/env bash
# The with-torchvision half of issue #13 point 3, and Mistral3/Pixtral (whose processor imports
# torchvision). Not part of CI: the venv it needs holds torch 2.14.1 + torchvision 0.29.1 (CUDA
# build, about 5.5 GB), the only pair that installs here; the default venv's torch 2.13 CPU has
# no matching torchvision. Run from the repository root:
#     bash benchmarks/check_with_torchvision.sh            # results in ./torchvision-check-out
# Env: TV_VENV (default /tmp/tvenv, created when missing), PYTHON (the default venv's
# interpreter, default .venv/bin/python), OUT (results folder).
# Checks, each a pytest run (the script stops at the first failure):
#   1. folders written by vlmlab WITHOUT torchvision (default venv) load with stock AutoProcessor +
#      AutoModelForImageTextToText in the torchvision venv (a process that never imports vlmlab);
#   2. the same stock load without torchvision (the default venv itself);
#   3. every family, Mistral3 included, built and stock-loaded inside the torchvision venv;
#   4. the Mistral3 row of the conformance matrix and its tiny-model test, in the torchvision venv.
# About 2-4 minutes on 2 busy cores once the venv exists (installing it: about 5 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
TV_VENV="${TV_VENV:-/tmp/tvenv}"
PY="${PYTHON:-.venv/bin/python}"
OUT="${OUT:-$PWD/torchvision-check-out}"
mkdir -p "$OUT"
TV_PY="$TV_VENV/bin/python"
TRANSFORMERS_VERSION="$("$PY" -c 'import transformers; print(transformers.__version__)')"
if ! "$TV_PY" -c 'import torchvision, transformers, vlmlab' 2>/dev/null; then
  [ -x "$TV_PY" ] || python3 -m venv "$TV_VENV"
  "$TV_PY" -m pip install -q torch==2.14.1 torchvision==0.29.1
  "$TV_PY" -m pip install -q "transformers==$TRANSFORMERS_VERSION" pillow safetensors accelerate num2words sentencepiece
  "$TV_PY" -m pip install -q -e ".[test]"
fi
"$TV_PY" -c 'import torch, torchvision, transformers, vlmlab; print("torchvision venv:", torch.__version__, torchvision.__version__, transformers.__version__, vlmlab.__file__)'
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
PYTEST=(-m pytest -q -x -p no:cacheprovider -n 0)
echo "== 1. written without torchvision, stock-loaded with it"
VLMLAB_STOCK_PYTHON="$TV_PY" VLMLAB_STOCK_RESULTS="$OUT/written_without_loaded_with_torchvision.json" \
  "$PY" "${PYTEST[@]}" tests/models/test_stock_loading.py
echo "== 2. written and stock-loaded without torchvision"
VLMLAB_STOCK_RESULTS="$OUT/without_torchvision.json" "$PY" "${PYTEST[@]}" tests/models/test_stock_loading.py
echo "== 3. written and stock-loaded with torchvision (Mistral3 included)"
VLMLAB_STOCK_RESULTS="$OUT/with_torchvision.json" "$TV_PY" "${PYTEST[@]}" tests/models/test_stock_loading.py
echo "== 4. Mistral3: conformance matrix row and tiny-model test, with torchvision"
VLMLAB_CONFORMANCE_TABLE="$OUT/mistral3_matrix.md" "$TV_PY" "${PYTEST[@]}" -s \
  tests/models/test_conformance_matrix.py tests/models/test_tiny.py -k "mistral3 or print_the_matrix"
"$TV_PY" - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
runs = {"stock load, no torchvision": "without_torchvision.json",
        "written without, stock load with torchvision": "written_without_loaded_with_torchvision.json",
        "written and stock load with torchvision": "with_torchvision.json"}
data = {k: json.loads((out / f).read_text()) for k, f in runs.items()}
families = list(dict.fromkeys(f for d in data.values() for f in d if f not in ("python", "torchvision")))
cell = lambda r: "-" if r is None else ("loads" if r[0] == "ok" else f"fails: {r[1]}: {' '.join(r[2].split())[:90]}")
lines = ["| family | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
lines += [f"| {f} | " + " | ".join(cell(d.get(f)) for d in data.values()) + " |" for f in families]
(out / "stock_loading.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
echo "results in $OUT (stock_loading.md, mistral3_matrix.md)"
