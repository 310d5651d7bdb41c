#!/usr/bin/env bash
# Create .venv at the repository root and install lavis-vila with its app and test extras.
# Idempotent: a second run only checks that the installed package still matches setup.py.
#   bash run_scripts/setup_env.sh [--browser]
# --browser (test.sh passes it) also installs Debian's chromium and chromium-driver for the app's
# browser test, with apt-get when run as root; elsewhere that test skips and names the command.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.lavis_vila_installed"

# LAVIS 1.0.2 pins transformers<4.27, whose tokenizers<0.14 has wheels for Python 3.8 to 3.11 only;
# a newer Python fails deep inside pip, building tokenizers from Rust. Take PYTHON, else the first
# supported interpreter on PATH.
supported() { "$1" -c 'import sys; sys.exit(not (3, 8) <= sys.version_info[:2] <= (3, 11))' 2>/dev/null; }
python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3 python3.11 python3.10 python3.9 python3.8; do
    if command -v "$candidate" > /dev/null && supported "$candidate"; then python=$candidate; break; fi
  done
fi
if [ ! -x "$venv/bin/python" ] && { [ -z "$python" ] || ! supported "$python"; }; then
  echo "[setup_env] needs Python 3.8 to 3.11 (LAVIS 1.0.2 pins transformers<4.27, whose tokenizers<0.14" \
       "has no wheel for newer Pythons); found ${python:-none}. Install one (for example 'uv python install 3.11'" \
       "or your package manager's python3.11) and rerun, or point PYTHON at it." >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup_env] creating $venv"
  "$python" -m venv "$venv"
fi
if [ "${1:-}" = --browser ] && ! { command -v chromium && command -v chromedriver; } > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "[setup_env] installing chromium and chromium-driver (apt-get) for the browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null \
      || echo "[setup_env] apt-get could not install chromium and chromium-driver; the browser test will skip" >&2
  else
    echo "[setup_env] no chromium/chromedriver and not root with apt-get: the browser test will skip" \
         "(install them with: sudo apt-get install chromium chromium-driver)" >&2
  fi
fi
if [ -f "$stamp" ] && [ "$stamp" -nt "$root/setup.py" ]; then
  exit 0
fi
echo "[setup_env] installing lavis-vila[app,test] into $venv (first run takes several minutes)"
"$venv/bin/python" -m pip install --quiet --upgrade pip wheel "setuptools<81"
"$venv/bin/python" -m pip install --quiet -e "$root[app,test]"
touch "$stamp"
