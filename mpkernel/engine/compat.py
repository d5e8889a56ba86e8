"""What libraries written for ipykernel look for, provided truthfully.

Many libraries decide how to render by looking for ipykernel's pieces rather than asking the
frontend: the shell's class name (`ZMQInteractiveShell`, see `execute`), `get_ipython().kernel`
(see `kernel_object`), `IPKernelApp` in the IPython config, environment variables, and
modules that are loaded. Each piece here is a fact about this process, not a disguise:

- `IPKernelApp` in the config holds what ipykernel's holds when started by a frontend: the
  connection file it was started with (polars and tqdm read the section's presence).
- `IPYKERNEL_ENVIRONMENT`: what ipykernel sets for child processes (colour on, no pager),
  because their output reaches a frontend that renders ANSI colour and cannot page.
- Two import hooks for libraries whose check cannot be met otherwise:
  - tqdm's `autonotebook` looks for `ipykernel.zmqshell` in `sys.modules`; when ipykernel is
    installed, that module (ipykernel's real one: it defines classes, starts nothing) is
    imported just before tqdm looks, and only then, so start-up does not pay for it.
  - plotly picks its notebook renderer only when the shell's class comes from an
    `ipykernel.` module, and otherwise adds its `notebook` renderer, which embeds plotly.js
    in the notebook. Right after `plotly.io._renderers` runs, its default becomes what it
    picks under ipykernel, unless the user chose one (`PLOTLY_RENDERER`).

docs/drop_in.md lists what is provided and what is not.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import itertools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

#: ipykernel's environment for the kernel and its child processes (zmqshell.init_environment)
IPYKERNEL_ENVIRONMENT = {
    "TERM": "xterm-color",
    "CLICOLOR": "1",
    "FORCE_COLOR": "1",
    "CLICOLOR_FORCE": "1",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
}

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1]) + os.sep


def configure_environment() -> None:
    """Set what ipykernel sets in `os.environ` (it overrides the values inherited)."""
    os.environ.update(IPYKERNEL_ENVIRONMENT)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")


def mark_kernel_app(config: Any, connection_file: Path | None) -> None:
    """Give the IPython config the `IPKernelApp` section a kernel started by a frontend has."""
    section = config.IPKernelApp  # traitlets creates the section on first access
    if connection_file is not None:
        section.connection_file = str(connection_file)


def without_kernel_frames(tb: TracebackType | None) -> TracebackType | None:
    """`tb` without mpkernel's own frames: a traceback shows the user's frames only.

    An interrupt raises from the kernel's signal handler and an error in `%view` passes
    through the magic; those frames say nothing about the user's code.
    """
    kept: list[TracebackType] = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            kept.append(tb)
        tb = tb.tb_next
    for outer, inner in itertools.pairwise(kept):
        outer.tb_next = inner
    if kept:
        kept[-1].tb_next = None
        return kept[0]
    return None


def _import_ipykernel_shell() -> None:
    try:
        importlib.import_module("ipykernel.zmqshell")
    except ImportError:
        log.debug("ipykernel is not installed: tqdm.autonotebook falls back to text")


def _plotly_renderer_as_under_ipykernel(module: ModuleType) -> None:
    renderers = getattr(module, "renderers", None)
    if renderers is None or os.environ.get("PLOTLY_RENDERER"):
        return
    if renderers.default == "plotly_mimetype+notebook":
        renderers.default = "plotly_mimetype"


class ImportHooks(importlib.abc.MetaPathFinder):
    """Runs a function before a named module is first imported, or after it has run."""

    def __init__(
        self,
        before: dict[str, Callable[[], None]],
        after: dict[str, Callable[[ModuleType], None]],
    ) -> None:
        self._before = dict(before)
        self._after = dict(after)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        before = self._before.pop(fullname, None)
        if before is not None:
            before()
        after = self._after.pop(fullname, None)
        if after is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_module = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            try:
                after(module)
            except Exception:  # a library changed shape: it keeps its own behaviour
                log.exception("compatibility hook after importing %s failed", fullname)

        # This loader instance serves this one import only.
        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def use_interruptible_pdb() -> None:
    """`pdb.set_trace()` and `breakpoint()` open IPython's debugger, which an interrupt
    leaves cleanly (the standard one, stopped in its prompt, leaves the cell stuck), as
    under ipykernel."""
    import pdb

    from IPython.core import debugger

    interruptible = getattr(debugger, "InterruptiblePdb", None)
    if interruptible is not None:
        debugger.Pdb = interruptible  # type: ignore[misc]
        pdb.Pdb = interruptible  # type: ignore[misc]
        pdb.set_trace = debugger.set_trace


def install_import_hooks() -> ImportHooks:
    hooks = ImportHooks(
        before={"tqdm.autonotebook": _import_ipykernel_shell},
        after={"plotly.io._renderers": _plotly_renderer_as_under_ipykernel},
    )
    sys.meta_path.insert(0, hooks)
    return hooks
