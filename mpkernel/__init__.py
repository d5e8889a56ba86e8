"""mpkernel: a Jupyter kernel for Python with comm handlers in worker processes."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def view(obj: Any, title: str | None = None, *, target: str = "positron.dataExplorer") -> str:
    """Open a viewer comm (the data explorer by default) on `obj` from user code; returns
    the comm id. The object reaches the viewer's worker through shared memory."""
    from mpkernel.comms.api import view as _view

    return _view(obj, title, target=target)
