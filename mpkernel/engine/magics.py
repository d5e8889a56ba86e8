"""mpkernel's line magics. Main thread.

- `%view EXPR`: open the data explorer on what EXPR evaluates to, titled with EXPR (and
  following the variable, when EXPR is one).
- The magics a kernel adds to IPython's for frontends that cannot run a terminal, as
  ipykernel has them: `%clear`, `%less`/`%more` and `%man` (through the pager, which a
  frontend shows), `%connect_info`, `%qtconsole`, `%autosave`; and the `%store` extension
  ipykernel loads.
- `%subshell`: which subshell runs the cell, and the kernel's subshells, as ipykernel
  prints them.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core import page
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import Javascript, clear_output, display
from IPython.utils import openpy

from mpkernel.comms import api

if TYPE_CHECKING:
    from mpkernel.kernel.subshells import SubshellRegistry


def register_magics(shell: InteractiveShell) -> None:
    def view(line: str) -> None:
        expression = line.strip()
        if not expression:
            raise UsageError("%view needs an expression, e.g. %view df")
        value: Any = shell.ev(expression)
        api.view(value, expression)

    def clear(line: str) -> None:
        """Clear the cell's output so far (a frontend has no terminal to clear)."""
        clear_output()

    def less(line: str) -> None:
        """Show a file in the pager (syntax-highlighted when it is Python)."""
        name = line.strip()
        if not name:
            raise UsageError("%less needs a file name")
        if name.endswith(".py"):
            text = shell.pycolorize(openpy.read_py_file(name, skip_encoding_cookie=False))
        else:
            text = Path(name).read_text(encoding="utf-8", errors="replace")
        page.page(text)

    def man(line: str) -> None:
        """Show a man page in the pager."""
        page.page(shell.getoutput(f"man {line} | col -b", split=False))

    def connect_info(line: str) -> None:
        """Print how to connect another client (console, qtconsole) to this kernel."""
        path = _connection_file(shell)
        info = json.loads(Path(path).read_text(encoding="utf-8"))
        sys.stdout.write(
            json.dumps(info, indent=2) + "\n\n"
            "Connect another client to this kernel with:\n"
            f"    $> jupyter <app> --existing {shlex.quote(path)}\n"
            "(or just --existing, if this is the newest kernel you started).\n"
        )

    def qtconsole(line: str) -> None:
        """Open a Qt console connected to this kernel (needs the qtconsole package)."""
        command = [sys.executable, "-m", "qtconsole", "--existing", _connection_file(shell)]
        try:
            subprocess.Popen([*command, *shlex.split(line)], start_new_session=True)
        except OSError as exc:
            raise UsageError(f"could not start qtconsole: {exc}") from exc

    def autosave(line: str) -> None:
        """Set the classic notebook's autosave interval, in seconds (0: off)."""
        try:
            seconds = int(line)
        except ValueError as exc:
            raise UsageError(f"%autosave needs a whole number of seconds, not {line!r}") from exc
        script = f"IPython.notebook.set_autosave_interval({seconds * 1000})"
        display(Javascript(script), include=["application/javascript"])
        sys.stdout.write(
            f"Autosaving every {seconds} seconds\n" if seconds else "Autosave disabled\n"
        )

    for function in (view, clear, less, man, connect_info, qtconsole, autosave):
        name = function.__name__
        shell.magics_manager.register_function(function, magic_kind="line", magic_name=name)
    shell.magics_manager.register_function(less, magic_kind="line", magic_name="more")
    view.__doc__ = "Open the data explorer on what the expression evaluates to."
    if shell.extension_manager is not None:
        shell.extension_manager.load_extension("storemagic")


def _connection_file(shell: InteractiveShell) -> str:
    path = shell.config.get("IPKernelApp", {}).get("connection_file")
    if not path:
        raise UsageError("this kernel was started without a connection file")
    return str(path)


def register_subshell_magic(shell: InteractiveShell, subshells: SubshellRegistry) -> None:
    def subshell(line: str) -> None:
        """Which subshell runs this cell, and every subshell of the kernel."""
        ident = threading.get_ident()
        if ident == threading.main_thread().ident:
            subshell_id: str | None = None
        else:
            subshell_id = subshells.thread_ids().get(ident, "unknown")
        lines = [
            f"subshell id: {subshell_id}",
            f"thread id: {ident}",
            f"main thread id: {threading.main_thread().ident}",
            f"pid: {os.getpid()}",
            f"thread count: {threading.active_count()}",
            f"subshell list: {subshells.ids()}",
        ]
        sys.stdout.write("\n".join(lines) + "\n")

    shell.magics_manager.register_function(subshell, magic_kind="line", magic_name="subshell")
