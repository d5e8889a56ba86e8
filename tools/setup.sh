#!/usr/bin/env bash
# Create .venv (if needed), install mpkernel with its test dependencies into it, and
# install the mpkernel kernelspec into that environment; build the JupyterLab extension
# (labextension/, with the Node.js and npm on PATH) and put it where that environment's
# JupyterLab finds it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,bench]'
.venv/bin/mpkernel install --sys-prefix
bash labextension/build.sh
# An editable install leaves data files out: link the build where a wheel would put it.
mkdir -p .venv/share/jupyter/labextensions
ln -sfn "$PWD/labextension/dist" .venv/share/jupyter/labextensions/mpkernel-panes
