#!/usr/bin/env bash
# Stage 1a: the uniform T-frame teacher.  DATASET=star NGPU=8 bash run_scripts/vila/train_teacher.sh [key=value ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
DATASET=${DATASET:?set DATASET to nextqa, star, how2qa, tvqa or vlep}
cfg=$(ls projects/vila/train/${DATASET}_teacher_*f.yaml)
exec "${VENV:-.venv}"/bin/torchrun --nproc_per_node="${NGPU:-8}" --master_port="${PORT:-29501}" \
  -m lavis_vila.train --cfg-path "$cfg" ${@:+--options "$@"}
