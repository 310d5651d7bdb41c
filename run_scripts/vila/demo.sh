#!/usr/bin/env bash
# The main job: set up .venv if needed, then run the whole ViLA recipe on the synthetic
# keyframe_qa benchmark on this CPU (teacher, student init, merge, ViLA, baselines, 3 seeds).
#   bash run_scripts/vila/demo.sh [--seed 0 1 2] [--out output/demo] [--data-dir data/keyframe_qa]
#                                 [--num-train N --num-val N --frames T --size PX ...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$root/run_scripts/setup_env.sh"
cd "$root"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONWARNINGS=ignore
exec "${VENV:-.venv}"/bin/python -m lavis_vila.tools.demo "$@"
