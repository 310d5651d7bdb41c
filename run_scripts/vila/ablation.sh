#!/usr/bin/env bash
# Beyond the paper: which Frame-Prompter (segment, free_form, question_aware) finds the frame a
# question needs, on keyframe_qa's two-event variant, 3 seeds, on this CPU. Sets up .venv if needed.
#   bash run_scripts/vila/ablation.sh [--seed 0 1 2] [--out output/ablation] [--data-dir data/keyframe_qa_two_events]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$root/run_scripts/setup_env.sh"
cd "$root"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONWARNINGS=ignore
exec "${VENV:-.venv}"/bin/python -m lavis_vila.tools.ablation "$@"
