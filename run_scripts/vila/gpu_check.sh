#!/usr/bin/env bash
# The prepared check for one bare, offline GPU machine, at most 8 minutes on one H100:
# full-size ViLA 32->4 (flant5xl architecture, random weights) trained with run.amp under torchrun
# with runner_base and with vila_runner, evaluated, and benchmarked in bf16 at batch 1 and 8.
# Writes OUT/gpu_check.json and OUT/gpu_check.md (see lavis_vila/experiments/gpu_check.py).
#   bash run_scripts/vila/gpu_wheels.sh               # here, once: .whl/
#   bash run_scripts/vila/gpu_check.sh OUT [ARGS]     # there (the device tool, carrying .whl); ARGS go to tools.gpu_check
#   bash run_scripts/vila/gpu_check.sh --dry-run OUT  # here: the same steps, tiny, on the CPU, in .venv
#   PYTHON=... WHEELS=... bash run_scripts/vila/gpu_check.sh --rehearse OUT
#       # here: the carried-wheels set-up of the GPU machine around PYTHON (a venv that mimics
#       # it), then the tiny steps on the CPU
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
mode=
case "${1:-}" in --dry-run|--rehearse) mode=$1; shift ;; esac
out=${1:?usage: gpu_check.sh [--dry-run|--rehearse] OUT [ARGS]}; shift
tiny=()
[ -n "$mode" ] && tiny=(--dry-run)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if [ "$mode" = --dry-run ]; then
  bash run_scripts/setup_env.sh
  python="${VENV:-.venv}/bin/python"
else
  python=${PYTHON:-python3}
  site="$(mktemp -d)/site"
  "$python" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --target "$site" "${WHEELS:-.whl}"/*.whl
  # Stand-ins that exist only in this throw-away environment. `import lavis` imports spacy
  # (img2prompt) and pycocoevalcap (captioning and dialogue tasks) at module level; this check
  # never calls them, and the real packages are too big to carry (see gpu_wheels.sh).
  mkdir -p "$site/spacy" "$site/pycocoevalcap"
  cat > "$site/spacy/__init__.py" <<'PY'
def load(*args, **kwargs):
    raise RuntimeError("spacy is a stub on the GPU check machine (run_scripts/vila/gpu_check.sh)")
PY
  touch "$site/pycocoevalcap/__init__.py"
  cat > "$site/pycocoevalcap/eval.py" <<'PY'
class COCOEvalCap:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("pycocoevalcap is a stub on the GPU check machine (run_scripts/vila/gpu_check.sh)")
PY
  # transformers 4.26 checks at import that tokenizers is <0.14, and 0.13 has no cp312 wheel. The
  # project uses only slow tokenizers, so a version record satisfies the check; it comes first on
  # PYTHONPATH, so importlib.metadata finds it before the machine's tokenizers.
  # Only with the pinned stack's wheels (STACK=pinned gpu_wheels.sh); the current stack uses the
  # machine's own transformers and needs no record.
  if ls "${WHEELS:-.whl}"/transformers-4.26* > /dev/null 2>&1; then
    mkdir -p "$site/tokenizers-0.13.3.dist-info"
    printf 'Metadata-Version: 2.1\nName: tokenizers\nVersion: 0.13.3\n' > "$site/tokenizers-0.13.3.dist-info/METADATA"
  fi
  export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  # lavis_vila first: nothing installs lavis_vila_autoload.pth here, and importing lavis_vila puts its
  # hook in place, which gives LAVIS what a current transformers dropped before LAVIS imports.
  "$python" -c "import lavis_vila, lavis, transformers, torch; print('transformers', transformers.__version__, 'torch', torch.__version__)"
  if command -v nvidia-smi > /dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
fi
exec "$python" -m lavis_vila.tools.gpu_check --out "$out" "${tiny[@]}" "$@"
