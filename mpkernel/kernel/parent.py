"""The kernel ends when the process that started it is gone.

A frontend that dies without a shutdown_request (a killed terminal, a crashed server)
would leave the kernel, its workers and the user's memory behind for good. The process
that launched the kernel is its parent; when the kernel is re-parented (to init or a
subreaper), that parent has died, and the kernel shuts down as if asked to.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from mpkernel.threads import hidden_from_debugger

log = logging.getLogger(__name__)

#: how often the parent is looked at (a dead frontend's kernel goes within about this long)
CHECK_EVERY_S = 1.0


class ParentWatch(threading.Thread):
    def __init__(self, on_gone: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name="mpkernel-parent", daemon=True)
        hidden_from_debugger(self)
        self._on_gone = on_gone
        self._stop_event = stop
        self._parent = os.getppid()

    def run(self) -> None:
        while not self._stop_event.wait(CHECK_EVERY_S):
            if os.getppid() != self._parent:
                log.warning(
                    "the process that started the kernel (pid %d) is gone: shutting down",
                    self._parent,
                )
                self._on_gone()
                return
