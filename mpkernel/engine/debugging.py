"""The main thread's part of the debugger: cells compiled under their debugger file names,
and what the io thread's debug session needs from the interpreter (`DebuggerParts`)."""

from __future__ import annotations

import sys
from typing import Any

from IPython.core.compilerop import CachingCompiler
from IPython.core.inputtransformer2 import leading_empty_lines

from mpkernel.debugger.cells import CellFiles
from mpkernel.debugger.door import DebuggerParts
from mpkernel.debugger.namespace import NamespaceView, rich_repr, start_debugpy


def cell_compiler(cells: CellFiles) -> type[CachingCompiler]:
    """IPython's compiler, naming each cell as JupyterLab's debugger names it, so that a
    breakpoint in a cell (or in a function an earlier cell defined) matches its code."""

    class CellCompiler(CachingCompiler):
        def get_code_name(self, raw_code: str, transformed_code: str, number: int) -> str:
            return cells.name(raw_code)

    return CellCompiler


def debugger_parts(shell: Any, cells: CellFiles) -> DebuggerParts:
    # What is loaded now is the kernel; what the user imports later is theirs to step into.
    kernel_files = sorted(
        {
            f
            for m in list(sys.modules.values())
            if isinstance(f := getattr(m, "__file__", None), str)
        }
    )

    def start() -> tuple[str, int]:
        endpoint = start_debugpy()
        # Line numbers must be the cell's own for breakpoints to match.
        transforms = shell.input_transformer_manager.cleanup_transforms
        if leading_empty_lines in transforms:
            transforms.remove(leading_empty_lines)
        return endpoint

    return DebuggerParts(
        start_debugpy=start,
        view=NamespaceView(shell.user_ns, shell.user_ns_hidden),
        rich_repr=lambda name: rich_repr(shell, name),
        kernel_files=kernel_files,
        cells=cells,
    )
