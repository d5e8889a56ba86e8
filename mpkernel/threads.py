"""Threads of the kernel process never take SIGINT.

An interrupt (SIGINT to the kernel's process group) is for the main thread, where user code
runs; the kernel routes it there by blocking SIGINT in every other thread. Linux delivers a
process-directed signal to any thread that does not block it, and CPython runs the handler
only on the main thread, when it next checks: a SIGINT taken by the io thread while the main
thread sleeps in `time.sleep(60)` would wait out the minute. A thread inherits the signal
mask of the thread that starts it, so threads are started with SIGINT blocked.
"""

from __future__ import annotations

import signal
import threading


def start_without_sigint(thread: threading.Thread) -> None:
    """Start `thread` with SIGINT blocked in it from its first instruction."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
