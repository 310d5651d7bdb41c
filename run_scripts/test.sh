#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite (slow end-to-end tests included;
# deselect them with: bash run_scripts/test.sh -m "not slow").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/run_scripts/setup_env.sh" --browser
cd "$root"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest tests "$@"
