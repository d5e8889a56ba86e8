#!/usr/bin/env bash
# The newcomer's first command: set up, install the kernelspec into .venv, and run the
# example notebook against mpkernel, printing its outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
.venv/bin/mpkernel install --sys-prefix
.venv/bin/python examples/run_notebook.py examples/tour.ipynb --kernel mpkernel
