#!/usr/bin/env bash
# Stage 1b: the uniform K-frame student init.  DATASET=star NGPU=8 bash run_scripts/vila/train_student.sh [key=value ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
DATASET=${DATASET:?set DATASET to nextqa, star, how2qa, tvqa or vlep}
exec "${VENV:-.venv}"/bin/torchrun --nproc_per_node="${NGPU:-8}" --master_port="${PORT:-29502}" \
  -m lavis_vila.train --cfg-path "projects/vila/train/${DATASET}_student_4f.yaml" ${@:+--options "$@"}
