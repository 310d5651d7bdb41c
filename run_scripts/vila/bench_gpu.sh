#!/usr/bin/env bash
# Full-size speed comparison on one GPU with random weights: FLOPs and aten ops on the meta device,
# then interleaved latency of every variant (an estimated 5 minutes on an H100; no GPU has run it yet), then the compiled
# rows (inductor, and CUDA graphs: reduce-overhead) beside the eager ones at batch 1 and 8, with the ms
# each row spends in the tokenizers and, compiled, launching its graphs and entering them, and
# each row but the CUDA-graph ones in library calls and in any GPU kernel (--library-time; six runs
# more per row, one profiled), each run
# bounded by COMPILED_TIMEOUT (600 s), then videos/s of ViLA 8->4 and SeViLA 32->4 at batch 1, 2, 4, ...
# up to THROUGHPUT_UP_TO (256 on a GPU, 4 on a CPU) or the first that runs out of memory (at most
# 10 minutes), so up to about 38 minutes in all.
#   bash run_scripts/vila/bench_gpu.sh                    # flant5xl on cuda
#   MODEL_TYPE=tiny bash run_scripts/vila/bench_gpu.sh    # tiny on CPU (what the tests run)
# Writes $OUT/flops_<type>.json, $OUT/latency_<type>_<device>.json, $OUT/compiled_<type>_<device>_batch<B>.json,
# $OUT/throughput_<type>_<device>.json and the printed tables to $OUT/bench_<type>.md. COMPILED_BATCHES= (empty) skips the compiled runs
# (COMPILE_MODES picks the modes; on a CPU reduce-overhead is the same as default).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
MODEL_TYPE=${MODEL_TYPE:-flant5xl}
DEVICE=${DEVICE:-$([ "$MODEL_TYPE" = tiny ] && echo cpu || echo cuda)}
OUT=${OUT:-output/bench}
PYTHON=${PYTHON:-${VENV:-.venv}/bin/python}
export HF_HUB_OFFLINE=1
mkdir -p "$OUT"
{
  echo "# bench: $MODEL_TYPE on $DEVICE ($(date -u +%Y-%m-%dT%H:%MZ))"
  if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; fi
  timeout 120 "$PYTHON" -m lavis_vila.tools.bench --model-type "$MODEL_TYPE" --flops --out "$OUT/flops_$MODEL_TYPE.json"
  timeout 360 "$PYTHON" -m lavis_vila.tools.bench --model-type "$MODEL_TYPE" --device "$DEVICE" --dtype auto \
    --repeats "${REPEATS:-5}" --warmup 2 --library-time --out "$OUT/latency_${MODEL_TYPE}_$DEVICE.json"
  for batch in ${COMPILED_BATCHES-1 8}; do
    timeout "${COMPILED_TIMEOUT:-600}" "$PYTHON" -m lavis_vila.tools.bench --model-type "$MODEL_TYPE" --device "$DEVICE" \
      --dtype auto --batch-size "$batch" --repeats "${REPEATS:-5}" --warmup 2 --library-time --compile ${COMPILE_MODES:-default reduce-overhead} \
      --out "$OUT/compiled_${MODEL_TYPE}_${DEVICE}_batch$batch.json"
  done
  timeout 600 "$PYTHON" -m lavis_vila.tools.bench --model-type "$MODEL_TYPE" --device "$DEVICE" --dtype auto --repeats 3 \
    --throughput "${THROUGHPUT_UP_TO:-$([ "$DEVICE" = cuda ] && echo 256 || echo 4)}" --out "$OUT/throughput_${MODEL_TYPE}_$DEVICE.json"
} 2>&1 | grep -v -i -E "warn|custom_(fwd|bwd)" | tee "$OUT/bench_$MODEL_TYPE.md"
