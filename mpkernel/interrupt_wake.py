"""An interrupt wakes the main thread whichever thread of the kernel's process takes it.

The kernel's own threads block SIGINT (`mpkernel.threads`), but a thread that user code or a
library starts from the main thread (a `threading.Thread` in a cell, numpy's OpenBLAS pool)
inherits the main thread's mask, so Linux may hand it a process-directed SIGINT. CPython
then runs the handler on the main thread only when that thread next checks, and a main
thread blocked in `time.sleep(60)` or a lock wait would wait it out.

CPython's C-level handler writes each signal's number to the wakeup fd, whatever thread
takes the signal. A thread of the kernel's reads it and, for SIGINT, sends the main thread
`NUDGE`, a thread-directed signal whose handler does nothing: its arrival ends the
blocking call with EINTR, and CPython runs the pending SIGINT handler before it would retry.
SIGINT's handler still runs once per interrupt: the nudge only wakes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import FrameType

from mpkernel.threads import start_without_sigint

# A real-time signal: nothing in Python or the table libraries uses one, and unlike SIGUSR1
# or SIGUSR2 user code is unlikely to install a handler of its own for it.
NUDGE = signal.SIGRTMIN + 4


def _wake_only(signum: int, frame: FrameType | None) -> None:
    """NUDGE's handler: a Python-level one, since an ignored signal interrupts no call."""


class InterruptWake:
    """The wakeup fd and the thread that nudges the main thread (built on the main thread)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # the C handler must never block on a full pipe
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._relay, name="mpkernel-wake", daemon=True)

    def install(self) -> None:
        """Take the wakeup fd and start relaying (main thread, once)."""
        signal.signal(NUDGE, _wake_only)
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        start_without_sigint(self._thread)

    def ensure(self, *_: object) -> None:
        """Take the wakeup fd back if user code released it (asyncio sets -1 when its last
        signal handler is removed); one another library holds is left to it. Main thread
        only: called before each cell (IPython's pre_execute)."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        if previous not in (-1, self._write):
            signal.set_wakeup_fd(previous)

    def _relay(self) -> None:
        main = self._main
        assert main is not None, "built on a running main thread"
        while True:
            taken = os.read(self._read, 512)
            if not taken:
                return
            if signal.SIGINT in taken:
                with contextlib.suppress(ProcessLookupError):  # the kernel is exiting
                    signal.pthread_kill(main, NUDGE)
