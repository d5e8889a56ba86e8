#!/usr/bin/env bash
# Create .venv (if needed), install mpkernel with its test dependencies into it, and
# install the mpkernel kernelspec into that environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,bench]'
.venv/bin/mpkernel install --sys-prefix
