#!/usr/bin/env bash
# Create .venv and install vlmlab with its test dependencies. Idempotent: re-installs only when
# pyproject.toml changed. PyTorch: where no torch is in the venv yet, the CPU build torch==2.13.0
# is tried first (a local wheel on our machines, seconds); if it cannot be found, pip falls back to
# whatever `torch>=2.4` resolves to. A GPU user who made .venv with their own torch keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.vlmlab-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/pip install -q "torch==2.13.0" || echo "note: torch==2.13.0 not available; pip will pick a torch build"
  fi
  .venv/bin/pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi
