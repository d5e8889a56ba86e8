#!/usr/bin/env bash
# The test command: lint, type-check, then the whole test suite against real kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash tools/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# The end-to-end tests (tests/e2e, marker e2e) take minutes and need Chromium and tmux: a
# developer's run leaves them out unless -m or -k says what to run; CI (CI=true) runs them.
deselect=()
if [ "${CI:-}" != "true" ]; then
  deselect=(-m "not e2e")
  for arg in "$@"; do
    case "$arg" in -m | -m* | -k | -k*) deselect=() ;; esac
  done
fi
.venv/bin/python -bb -m pytest "$@" ${deselect[@]+"${deselect[@]}"}

# With no arguments (the whole suite): the panes' tests again against the table libraries'
# previous major versions (pandas 2, polars 1), in a venv of their own.
if [ "$#" -eq 0 ]; then
  PYTHON="${PYTHON:-python3}"
  [ -x .venv-previous/bin/python ] || "$PYTHON" -m venv .venv-previous
  .venv-previous/bin/python -m pip install --quiet --upgrade pip
  .venv-previous/bin/python -m pip install --quiet -e '.[test]' 'pandas<3' 'polars<2'
  .venv-previous/bin/mpkernel install --sys-prefix > /dev/null
  .venv-previous/bin/python -c 'import pandas, polars; print("previous majors: pandas", pandas.__version__, "polars", polars.__version__)'
  .venv-previous/bin/python -bb -m pytest -p no:cacheprovider \
    tests/unit/test_data_explorer_*.py tests/unit/test_variables_*.py tests/unit/test_snapshot_*.py \
    tests/integration/test_data_explorer.py tests/integration/test_variables.py \
    tests/integration/test_view.py tests/integration/test_snapshots.py
fi
