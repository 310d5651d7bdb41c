#!/usr/bin/env bash
# Create .venv at the repository root and install lavis-vila with its test extras.
# Idempotent: a second run only checks that the installed package still matches setup.py.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.lavis_vila_installed"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup_env] creating $venv"
  "$python" -m venv "$venv"
fi
if [ -f "$stamp" ] && [ "$stamp" -nt "$root/setup.py" ]; then
  exit 0
fi
echo "[setup_env] installing lavis-vila[test] into $venv (first run takes several minutes)"
"$venv/bin/python" -m pip install --quiet --upgrade pip wheel "setuptools<81"
"$venv/bin/python" -m pip install --quiet -e "$root[test]"
touch "$stamp"
