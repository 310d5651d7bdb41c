#!/usr/bin/env bash
# Evaluate a trained ViLA checkpoint.  DATASET=star NGPU=8 bash run_scripts/vila/evaluate_vila.sh model.finetuned=CKPT
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
DATASET=${DATASET:?set DATASET to nextqa, star, how2qa, tvqa or vlep}
cfg=$(ls projects/vila/eval/${DATASET}_vila_*to4_eval.yaml)
exec "${VENV:-.venv}"/bin/torchrun --nproc_per_node="${NGPU:-8}" --master_port="${PORT:-29504}" \
  -m lavis_vila.evaluate --cfg-path "$cfg" ${@:+--options "$@"}
