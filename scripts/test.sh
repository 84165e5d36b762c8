#!/usr/bin/env bash
# Set up .venv (scripts/setup.sh), install headless Chromium for the report browser tests when
# missing (Debian's package; needs root), and run the whole test suite, slow tests included (CI).
# `--fast` runs every test not marked `slow` (pyproject.toml says what slow means): under 3 minutes
# on a quiet 2-core machine. Other arguments go to pytest, e.g. `--fast tests/icl`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "note: could not install chromium; the browser test will fail in CI"
  else
    echo "note: chromium not found; install Debian's 'chromium' package for the browser test"
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Two workers (one torch thread each, see tests/conftest.py); the toy models are built once per run
# in a cache both workers share (a file lock makes the second wait for the first).
args=()
for arg in "$@"; do
  if [ "$arg" = --fast ]; then args+=(-m "not slow"); else args+=("$arg"); fi
done
exec .venv/bin/python -m pytest -n 2 --dist loadfile ${args[@]+"${args[@]}"}
