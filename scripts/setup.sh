#!/usr/bin/env bash
# Create .venv and install vlmlab with its test dependencies. Idempotent: re-installs only when
# pyproject.toml changed. PyTorch: where no torch is in the venv yet, the CPU build torch==2.13.0
# is tried first (a local wheel on our machines, seconds); if it cannot be found, pip falls back to
# whatever `torch>=2.4` resolves to. A GPU user who made .venv with their own torch keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Java runs pycocoevalcap's PTB tokenizer and METEOR jar.
if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null) \
      || echo "note: could not install Java; caption metrics (PTB tokenizer, METEOR) need it"
  else
    echo "note: java not found; install a Java 17 runtime for caption metrics (PTB tokenizer, METEOR)"
  fi
fi
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
