#!/usr/bin/env bash
# The newcomer's first command: set up .venv with mpkernel and its kernelspec, then run
# the example notebooks against mpkernel, printing their outputs (and, for the second, what
# a second frontend acting as Positron's panes was told).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
# The kernels' logs go to a file: the demo shows what the notebooks show.
log="${TMPDIR:-/tmp}/mpkernel-demo.log"
: > "$log"
.venv/bin/python examples/run_notebook.py examples/tour.ipynb --kernel mpkernel --kernel-log "$log"
echo
# What mpkernel is for: Positron's panes served by workers, and a worker crash the kernel survives.
.venv/bin/python examples/run_notebook.py examples/panes.ipynb --kernel mpkernel --panes \
  --kernel-log "$log"
echo
echo "the kernels' log: $log"
