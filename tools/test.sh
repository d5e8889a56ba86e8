#!/usr/bin/env bash
# The test command: lint, type-check, then the whole test suite against real kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash tools/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -bb -m pytest "$@"
