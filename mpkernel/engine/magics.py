"""mpkernel's own line magics. `%view EXPR`: open the data explorer on what EXPR evaluates
to, titled with EXPR (and following the variable, when EXPR is one). Main thread."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from mpkernel.comms import api


def register_magics(shell: InteractiveShell) -> None:
    def view(line: str) -> None:
        expression = line.strip()
        if not expression:
            raise UsageError("%view needs an expression, e.g. %view df")
        value: Any = shell.ev(expression)
        api.view(value, expression)

    view.__doc__ = __doc__
    shell.magics_manager.register_function(view, magic_kind="line", magic_name="view")
