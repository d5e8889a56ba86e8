#!/usr/bin/env bash
# The newcomer's first command: set up .venv with mpkernel and its kernelspec, then run
# the example notebook against mpkernel, printing its outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
.venv/bin/python examples/run_notebook.py examples/tour.ipynb --kernel mpkernel
