"""Threads of the kernel process never take SIGINT, and the debugger does not see them.

An interrupt (SIGINT to the kernel's process group) is for the main thread, where user code
runs; the kernel routes it there by blocking SIGINT in every other thread. Linux delivers a
process-directed signal to any thread that does not block it, and CPython runs the handler
only on the main thread, when it next checks: a SIGINT taken by the io thread while the main
thread sleeps in `time.sleep(60)` would wait out the minute. A thread inherits the signal
mask of the thread that starts it, so threads are started with SIGINT blocked.

The debugger (debugpy) traces and lists every Python thread unless told otherwise; the
kernel's own threads are marked as its tracer's convention asks, so a user paused at a
breakpoint sees the main thread only.
"""

from __future__ import annotations

import signal
import threading
from typing import TypeVar

T = TypeVar("T", bound=threading.Thread)


def hidden_from_debugger(thread: T) -> T:
    """Mark a thread of the kernel's own as one debugpy neither traces nor lists."""
    thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
    thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
    return thread


def start_without_sigint(thread: threading.Thread) -> None:
    """Start `thread` with SIGINT blocked in it from its first instruction."""
    hidden_from_debugger(thread)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
