"""What the debugger asks of the interpreter: start debugpy, and present the namespace.

Main thread only (between requests), except `NamespaceView.variables` while the main thread
is paused at a breakpoint, when the io thread may read the namespace that nobody changes.
Variables are presented the way debugpy presents a paused frame's (pydevd's own variable
tracking), so the panel looks the same paused or not, nested expansion included.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

_GENERATED = re.compile(r"^_(i{1,3}|i\d+|\d+)?$")  # IPython's _, _i, _ii, _12, _i12 ...


def shown_name(name: str, hidden: Iterable[str] = ()) -> bool:
    """Does the variables panel show this name? Not IPython's own or generated ones."""
    return not (name.startswith("__") or _GENERATED.match(name) or name in hidden)


def in_debugger(frame: FrameType | None) -> bool:
    """Is the main thread, whose current frame is `frame`, inside debugpy's code (its
    tracer, or the loop a paused thread waits in, down to the standard library calls that
    loop makes)?"""
    module = sys.modules.get("debugpy")
    if module is None or module.__file__ is None:
        return False
    # debugpy's tracer is compiled: while it runs, the frame a signal handler sees can be
    # the user's own, or a standard library function the tracer called, with no frame of
    # debugpy's above it. An exception raised there switches debugging off for the thread.
    # The tracer counts on the thread object how deep in it the thread is.
    info = getattr(threading.current_thread(), "additional_info", None)
    if getattr(info, "is_tracing", 0):
        return True
    root = str(Path(module.__file__).parent)
    while frame is not None:
        if frame.f_code.co_filename.startswith(root):
            return True
        frame = frame.f_back
    return False


def start_debugpy() -> tuple[str, int]:
    """Start debugpy's adapter (a child process) listening on a free local port."""
    # pydevd warns on stderr (the user's cell output) that frozen stdlib modules may miss
    # breakpoints; that is about the standard library, not cells, and not the user's to fix.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    import debugpy

    # Workers are separate processes with their own lives; debugging them is opt-in.
    debugpy.configure(subProcess=False)
    host, port = debugpy.listen(("127.0.0.1", 0))
    return str(host), int(port)


class _Code:
    def __init__(self, filename: str) -> None:
        self.co_filename = filename
        self.co_name = "<module>"


class _NamespaceFrame:
    """What pydevd's frame tracker needs of a frame: the namespace as its globals."""

    f_back = None

    def __init__(self, namespace: dict[str, Any], filename: str) -> None:
        self.f_code = _Code(filename)
        self.f_globals = namespace
        self.f_locals = namespace
        self.f_lineno = 0


class NamespaceView:
    """The user namespace as DAP variables, with references for nested expansion."""

    def __init__(self, namespace: dict[str, Any], hidden: Mapping[str, Any]) -> None:
        self._namespace = namespace
        self._hidden = hidden
        self._manager: Any = None
        self._frame: _NamespaceFrame | None = None

    def _track(self) -> None:
        # debugpy's server module must be imported first: it sets up pydevd's imports.
        from _pydevd_bundle import pydevd_frame_utils  # type: ignore[import-not-found]
        from _pydevd_bundle.pydevd_api import PyDevdAPI  # type: ignore[import-not-found]
        from _pydevd_bundle.pydevd_suspended_frames import (  # type: ignore[import-not-found]
            SuspendedFramesManager,
            _FramesTracker,
        )
        from debugpy.server import api  # noqa: F401

        class _PyDB:
            variable_presentation = PyDevdAPI.VariablePresentation()

        manager = SuspendedFramesManager()
        frame = _NamespaceFrame(self._namespace, "<namespace>")
        tracker = _FramesTracker(manager, _PyDB())
        tracker.track("namespace", pydevd_frame_utils.create_frames_list_from_frame(frame))
        self._manager, self._frame = manager, frame

    def inspect(self) -> list[dict[str, Any]]:
        """The namespace's variables, fresh (references of an earlier call expire)."""
        self._track()
        return self.variables(id(self._frame))

    def variables(self, reference: int) -> list[dict[str, Any]]:
        """The children of a reference that `inspect` handed out."""
        if self._manager is None:
            return []
        try:
            variable = self._manager.get_variable(reference)
        except KeyError:
            return []
        children = [child.get_var_data() for child in variable.get_children_variables()]
        if reference == id(self._frame):
            children = [c for c in children if shown_name(str(c.get("name")), self._hidden)]
        return children


def rich_repr(shell: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The MIME bundle and metadata of the variable `name`, as the display formatter makes it."""
    if name not in shell.user_ns:
        raise KeyError(name)
    data, metadata = shell.display_formatter.format(shell.user_ns[name])
    return dict(data), {k: v for k, v in (metadata or {}).items() if k in data}


Runner = Callable[[Callable[[], Any], Callable[[Any, BaseException | None], None]], None]
