#!/usr/bin/env bash
# Set up the virtual environment if needed, then run the whole test suite (slow end-to-end tests
# included; deselect them with: bash run_scripts/test.sh -m "not slow").
# STACK=pinned|current and VENV=DIR choose the stack and the environment (run_scripts/setup_env.sh);
# by default .venv, on the stack the interpreter supports.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VENV="${VENV:-$root/.venv}"
venv=$VENV
VENV="$venv" bash "$root/run_scripts/setup_env.sh" --browser
cd "$root"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$venv/bin/python" -m pytest tests "$@"
