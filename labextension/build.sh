#!/usr/bin/env bash
# Build the JupyterLab extension into labextension/dist (a prebuilt, "federated" extension),
# against the JupyterLab that PYTHON imports (its shared packages and their versions).
# Installs the npm dependencies from package-lock.json first when they are missing or stale.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-../.venv/bin/python}"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
core="$("$PYTHON" -c 'import jupyterlab, pathlib; print(pathlib.Path(jupyterlab.__file__).parent / "staging")')"
rm -rf lib dist tsconfig.tsbuildinfo
node_modules/.bin/tsc
node node_modules/@jupyterlab/builder/lib/build-labextension.js --core-path "$core" . >/dev/null
cp install.json dist/install.json
