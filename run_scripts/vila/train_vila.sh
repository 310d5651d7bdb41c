#!/usr/bin/env bash
# Stage 2: ViLA T->K from the merged stage-1 checkpoint (see the config's header).
#   DATASET=star NGPU=8 bash run_scripts/vila/train_vila.sh [key=value ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
DATASET=${DATASET:?set DATASET to nextqa, star, how2qa, tvqa or vlep}
cfg=$(ls projects/vila/train/${DATASET}_vila_*to4.yaml)
exec "${VENV:-.venv}"/bin/torchrun --nproc_per_node="${NGPU:-8}" --master_port="${PORT:-29503}" \
  -m lavis_vila.train --cfg-path "$cfg" ${@:+--options "$@"}
