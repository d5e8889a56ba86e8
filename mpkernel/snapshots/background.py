"""One daemon thread that finishes snapshot work the main thread had no budget for.

Jobs copy big buffers into segments (`pwrite` releases the GIL) or pickle big pure-Python
values (that part holds the GIL in the interpreter's usual slices). A job reads user objects
while user code may run; what it wrote is fingerprinted as written, so the next check of
that name compares the live value with exactly what the workers got. Results are collected
by the main thread (`SnapshotBuilder`) at its next call. The thread is a daemon: a job in
progress never delays the kernel's exit (the segment directory is removed at shutdown).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mpkernel.threads import start_without_sigint

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    """Work for the background thread; `run` returns what the main thread will read."""

    name: str
    run: Callable[[Job], Any]
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None

    def cancel(self) -> None:
        self.cancelled.set()


class Background:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._finished: collections.deque[Job] = collections.deque()
        self._thread: threading.Thread | None = None

    def submit(self, job: Job) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mpkernel-snapshot", daemon=True)
            start_without_sigint(self._thread)
        self._queue.put(job)

    def finished(self) -> list[Job]:
        """Jobs done since the last call (main thread)."""
        out = []
        while self._finished:
            out.append(self._finished.popleft())
        return out

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                job.result = job.run(job)
            except Exception as e:  # noqa: BLE001 - the job's owner decides; keep serving
                job.error = e
                log.debug("snapshot job %s failed: %r", job.name, e)
            job.done.set()
            self._finished.append(job)
