"""Column profile jobs: answered at once, computed later, delivered as events.

Positron's `get_column_profiles` replies `{}` at once and delivers its results as a
`return_column_profiles` event (its RPC times out after a few seconds, and profiles of a
10M-row table take longer). The runtime's `@background` methods reply only when they
return, so profiles run on this one queue thread instead: the loop thread stays free for
`get_data_values`, and jobs run in arrival order (the frontend batches them by column).
Closing the comm cancels what is queued and stops the running job between columns.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Job = Callable[[threading.Event], None]


class ProfileQueue:
    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._started = False
        self._lock = threading.Lock()

    def submit(self, job: Job) -> None:
        with self._lock:
            if not self._started:
                self._thread.start()
                self._started = True
        self._jobs.put(job)

    def close(self) -> None:
        self.cancelled.set()
        self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None or self.cancelled.is_set():
                return
            try:
                job(self.cancelled)
            except Exception:
                log.exception("profile job failed")
