#!/usr/bin/env bash
# Wheels for the bare, offline GPU machine (Python 3.12 with its own torch 2.11, transformers 5.x,
# numpy 2): what `import lavis` and lavis_vila need there and it lacks, into .whl/ (git-ignored,
# at most 60 MiB; the device tool carries at most 64 MiB with the repository). Versions are the
# ones .venv runs here. Not carried, on purpose:
#   - opencv-python-headless 4.5.5 (built for numpy 1): the machine's own opencv matches its numpy;
#   - spacy (~60 MB with its deps) and pycocoevalcap (~100 MB of Java jars): LAVIS imports them
#     for tasks this project never runs, so gpu_check.sh writes stubs for them there;
#   - tokenizers 0.13 (no cp312 wheel): gpu_check.sh writes a version record that satisfies
#     transformers 4.26's import-time check; the project only uses slow tokenizers.
# STACK=current (the default) carries no transformers, huggingface-hub or timm: the machine's own
# (transformers 5, timm 1) run LAVIS through lavis_vila.lavis_compat, so no version record is
# needed. STACK=pinned carries transformers 4.26.1 with its hub and timm 0.4.12, as before.
# Usage: bash run_scripts/vila/gpu_wheels.sh [DIR]   (default .whl; PYTHON_VERSION=3.11 for a rehearsal here)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=${1:-.whl}
python=$([ -x "${VENV:-.venv}/bin/python" ] && echo "${VENV:-.venv}/bin/python" || echo python3)
rm -rf "$out"
mkdir -p "$out"
version=${PYTHON_VERSION:-3.12}
cp=cp${version/./}
target=(--python-version "$version" --implementation cp --abi "$cp" --abi abi3 --abi none
       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform any)
pinned=()
[ "${STACK:-current}" = pinned ] && pinned=(transformers==4.26.1 huggingface-hub==0.36.2 timm==0.4.12)
"$python" -m pip download --quiet --no-deps --only-binary=:all: "${target[@]}" --dest "$out" \
  salesforce-lavis==1.0.2 "${pinned[@]}" decord==0.6.0 \
  omegaconf==2.4.0 webdataset==1.0.2 braceexpand==0.1.7 ftfy==6.3.1 wcwidth==0.9.4 \
  pycocotools==2.0.11 requests==2.34.2 urllib3==2.8.0 idna==3.20 charset-normalizer==3.5.3 certifi
# sdist-only packages: pure-Python wheels built here
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$out" fairscale==0.4.4 contexttimer==0.3.3 iopath==0.1.10
size_kib=$(du -sk "$out" | cut -f1)
echo "[gpu_wheels] $(ls "$out" | wc -l) wheels, $((size_kib / 1024)) MiB in $out"
if [ "$size_kib" -gt $((60 * 1024)) ]; then
  echo "[gpu_wheels] over the 60 MiB budget" >&2
  exit 1
fi
