"""The debugger: JupyterLab's debugger panel on mpkernel (the Jupyter debug protocol, JEP 47).

`debug_request`s arrive on control and are served by the io thread (`session`), so stack,
scopes and variables are answered while user code is paused at a breakpoint on the main
thread. debugpy is the engine: its adapter process speaks DAP over TCP (`dap` frames it),
its tracer runs in this process. Cells are compiled under file names derived from their
source (`cells`), as JupyterLab computes them, so a breakpoint set in a cell matches the
code that runs. What needs the interpreter while nothing is paused (variables of the
namespace, rich reprs) runs on the main thread between requests (`namespace`).
"""

from __future__ import annotations

import importlib.util


def debugpy_installed() -> bool:
    """Whether debugpy can be imported here (without importing it)."""
    return importlib.util.find_spec("debugpy") is not None
