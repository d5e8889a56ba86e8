"""Where `debug_request`s enter on the io thread.

The io thread serves control before IPython has loaded; the debugger's main-thread parts
(the namespace, debugpy's start) exist only once it has. Requests that come earlier wait
here, in order, and are served when the parts arrive. With the debugger off (`[kernel]
debugger = false`, or debugpy not installed) every request gets a DAP error response.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mpkernel.debugger.cells import CellFiles
from mpkernel.debugger.dap import response
from mpkernel.debugger.namespace import NamespaceView
from mpkernel.funnel.items import Publish, Reply
from mpkernel.threads import hidden_from_debugger
from mpkernel.wire import Message

if TYPE_CHECKING:
    from mpkernel.debugger.session import DebugSession, Emit

log = logging.getLogger(__name__)

#: how soon an interrupt deferred by `resume_then` is sent again
INTERRUPT_RETRY_S = 0.02


@dataclass(frozen=True)
class DebuggerParts:
    """What the main thread builds for the debugger once IPython runs."""

    start_debugpy: Callable[[], tuple[str, int]]
    view: NamespaceView
    rich_repr: Callable[[str], tuple[dict[str, Any], dict[str, Any]]]
    kernel_files: list[str]
    cells: CellFiles


class DebuggerDoor:
    def __init__(
        self,
        enabled: bool,
        emit: Emit,
        make_session: Callable[[DebuggerParts], DebugSession],
    ) -> None:
        self.enabled = enabled
        self._emit = emit
        self._make_session = make_session
        self.session: DebugSession | None = None
        self._waiting: list[Message[dict[str, Any]]] = []

    def request(self, msg: Message[dict[str, Any]]) -> None:
        if self.session is not None:
            self.session.handle(msg)
        elif self.enabled:
            self._waiting.append(msg)
        else:
            self._emit(Publish("status", {"execution_state": "busy"}, msg.header))
            why = "the debugger is off ([kernel] debugger = false, or debugpy is not installed)"
            content = response(msg.content, False, message=why)
            self._emit(Reply("control", msg.identities, "debug_reply", content, msg.header))
            self._emit(Publish("status", {"execution_state": "idle"}, msg.header))

    def open(self, parts: DebuggerParts) -> None:
        """The main thread's parts are ready: serve what waited, then every request."""
        session = self.session = self._make_session(parts)
        waiting, self._waiting = self._waiting, []
        for msg in waiting:
            session.handle(msg)

    def resume_then(self, interrupt: Callable[[], None]) -> None:
        """An interrupt came while the main thread was in debugpy's code, where an exception
        would switch debugging off for the thread: let the paused thread run, then
        interrupt it again, shortly, in the user's code."""
        if self.session is not None:
            self.session.resume_all()
        timer = threading.Timer(INTERRUPT_RETRY_S, interrupt)
        hidden_from_debugger(timer).start()

    def on_events(self, events: dict[Any, int]) -> None:
        session = self.session
        if session is not None and session.socket is not None and session.socket in events:
            session.on_readable()

    def close(self) -> None:
        if self.session is not None and self.session.socket is not None:
            self.session.socket.close(linger=0)
