#!/usr/bin/env bash
# Set up .venv (scripts/setup.sh) and run the main job: `vlmlab demo` on the built-in toy world.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/vlmlab demo "$@"
