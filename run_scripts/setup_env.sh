#!/usr/bin/env bash
# Create a virtual environment (default .venv at the repository root) and install lavis-vila with
# its app and test extras, on one of the two supported stacks:
#   pinned   Python 3.9-3.11: salesforce-lavis 1.0.2 with the dependencies it pins (transformers 4.26)
#   current  Python 3.12-3.13 (or 3.11): salesforce-lavis 1.0.2 installed without its dependencies,
#            plus run_scripts/requirements/current.txt (transformers 5, numpy 2); lavis_vila.lavis_compat
#            gives LAVIS what transformers 5 dropped
# The stack follows the interpreter (3.12 and newer: current) unless --stack says. Idempotent: a
# second run only checks that the installed package still matches setup.py and the stack.
#   bash run_scripts/setup_env.sh [--stack pinned|current] [--venv DIR] [--browser]
# PYTHON=... picks the interpreter. --browser (test.sh passes it) also installs Debian's chromium and
# chromium-driver for the app's browser test, with apt-get when run as root; elsewhere that test
# skips and names the command.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$root/.venv}"
stack="${STACK:-}"
browser=
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack=$2; shift 2 ;;
    --venv) venv=$2; shift 2 ;;
    --browser) browser=1; shift ;;
    *) echo "[setup_env] unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$stack" in ""|pinned|current) ;; *) echo "[setup_env] --stack must be pinned or current, not '$stack'" >&2; exit 2 ;; esac
stamp="$venv/.lavis_vila_installed"
stamp_stack() { sed -n 's/^stack=//p' "$stamp" | grep . || echo pinned; }  # stamps before the two stacks: pinned

version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
in_range() { "$1" -c "import sys; sys.exit(not ($2) <= sys.version_info[:2] <= ($3))" 2>/dev/null; }
fits() {  # fits PYTHON STACK
  case "$2" in
    pinned) in_range "$1" "3, 9" "3, 11" ;;
    current) in_range "$1" "3, 11" "3, 13" ;;
    *) in_range "$1" "3, 9" "3, 13" ;;
  esac
}
python="${PYTHON:-}"
if [ -x "$venv/bin/python" ]; then
  python="$venv/bin/python"
elif [ -z "$python" ]; then
  case "$stack" in
    current)  # pyenv's interpreters too, where its shims answer only for the global version
      pyenv_pythons=$(command -v pyenv > /dev/null && ls -d "$(pyenv root)"/versions/3.1[23]*/bin/python3 2>/dev/null || true)
      candidates="python3.12 python3.13 $pyenv_pythons python3 python3.11" ;;
    *) candidates="python3 python3.11 python3.10 python3.9" ;;
  esac
  for candidate in $candidates; do
    if command -v "$candidate" > /dev/null && fits "$candidate" "$stack"; then python=$candidate; break; fi
  done
fi
if [ -z "$python" ] || ! fits "$python" "$stack"; then
  case "$stack" in pinned) needs=3.9-3.11 ;; current) needs=3.11-3.13 ;; *) needs=3.9-3.13 ;; esac
  echo "[setup_env] the ${stack:-pinned or current} stack needs Python $needs" \
       "(LAVIS 1.0.2's own pins, transformers<4.27, have no tokenizers wheel past 3.11); found ${python:-none}" \
       "${python:+($(version_of "$python"))}. Install one and rerun, or point PYTHON at it." >&2
  exit 1
fi
if [ -z "$stack" ] && [ -f "$stamp" ]; then
  stack=$(stamp_stack)  # an existing environment keeps its stack
fi
if [ -z "$stack" ]; then
  if in_range "$python" "3, 12" "3, 99"; then stack=current; else stack=pinned; fi
fi
if [ -f "$stamp" ] && [ "$(stamp_stack)" != "$stack" ]; then
  echo "[setup_env] $venv holds the $(stamp_stack) stack, not $stack: remove it or pass --venv" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup_env] creating $venv with $python ($(version_of "$python"))"
  "$python" -m venv "$venv"
fi
if [ -n "$browser" ] && ! { command -v chromium && command -v chromedriver; } > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "[setup_env] installing chromium and chromium-driver (apt-get) for the browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null \
      || echo "[setup_env] apt-get could not install chromium and chromium-driver; the browser test will skip" >&2
  else
    echo "[setup_env] no chromium/chromedriver and not root with apt-get: the browser test will skip" \
         "(install them with: sudo apt-get install chromium chromium-driver)" >&2
  fi
fi
requirements="$root/run_scripts/requirements/current.txt"
if [ -f "$stamp" ] && [ "$stamp" -nt "$root/setup.py" ] && [ "$stamp" -nt "$requirements" ]; then
  exit 0
fi
pip=("$venv/bin/python" -m pip install --quiet)
echo "[setup_env] installing lavis-vila[app,test] on the $stack stack into $venv (first run takes several minutes)"
"${pip[@]}" --upgrade pip wheel "setuptools<81"
if [ "$stack" = pinned ]; then
  "${pip[@]}" -e "$root[app,test]"
else
  # torch and torchvision in setup.py's range; ones already installed in it are kept.
  torch_range=$("$venv/bin/python" - "$root/setup.py" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print(" ".join(re.findall(r'"((?:torch|torchvision)[<>=!][^"]*)"', text)))
PY
)
  # shellcheck disable=SC2086
  "${pip[@]}" -r "$requirements" $torch_range
  "${pip[@]}" --no-deps salesforce-lavis==1.0.2
  "${pip[@]}" --no-deps -e "$root[app,test]"
fi
printf 'stack=%s\n' "$stack" > "$stamp"
"$venv/bin/python" -c "import transformers, torch, numpy; print('[setup_env] $stack stack: Python', __import__('platform').python_version(), 'torch', torch.__version__, 'transformers', transformers.__version__, 'numpy', numpy.__version__)"
