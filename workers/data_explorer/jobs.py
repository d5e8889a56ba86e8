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
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
from mpkernel_workers.data_explorer import profiles as stats
from mpkernel_workers.data_explorer.protocol import FormatOptions
from mpkernel_workers.data_explorer.tables import Table

log = logging.getLogger(__name__)

Job = Callable[[threading.Event], None]
# (column index, its profile specs) as requested; (profile result, error or None)
ProfileRequest = tuple[int, list[dict[str, Any]]]
ProfileOutcome = tuple[Any, str | None]

# Threads computing one request's column profiles.
PROFILE_THREADS = max(1, min(4, os.cpu_count() or 1))
# The temporaries of one column's statistics (a copy without its missing values, a cast,
# the median's selection) reach about three times the column's 8-byte values; columns run
# in parallel only while their temporaries together stay under this (measured: all ten
# columns of a 100M-row frame, four at a time, passed a worker's 8 GiB).
PROFILE_TEMPORARIES_BYTES = 1 << 30


def profile_threads(num_rows: int) -> int:
    """How many columns' statistics run at once over `num_rows` rows."""
    per_column = max(1, 24 * num_rows)
    return max(1, min(PROFILE_THREADS, PROFILE_TEMPORARIES_BYTES // per_column))


class ProfileQueue:
    """Jobs run one after another on a task that `start` begins when a job arrives and
    that ends when none is left (a handler passes `Comm.start_task`: the runtime owns the
    thread, and no thread waits while the explorer is idle)."""

    def __init__(self, name: str, start: Callable[[Callable[[], None], str], None]) -> None:
        self.name = name
        self.cancelled = threading.Event()
        self._start = start
        self._jobs: deque[Job] = deque()
        self._running = False
        self._lock = threading.Lock()

    def submit(self, job: Job) -> None:
        with self._lock:
            if self.cancelled.is_set():
                return
            self._jobs.append(job)
            if self._running:
                return
            self._running = True
        self._start(self._work, self.name)

    def close(self) -> None:
        with self._lock:
            self.cancelled.set()
            self._jobs.clear()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._running = False
                    return
                job = self._jobs.popleft()
            try:
                job(self.cancelled)
            except Exception:  # one job's bug: the queue's next jobs still run
                log.exception("profile job failed")


def run_profiles(
    table: Table,
    rows: pa.Array | None,
    requests: list[ProfileRequest],
    options: FormatOptions,
    cancelled: threading.Event,
    name: str,
) -> list[ProfileOutcome]:
    """Every requested column's profiles, in request order.

    Columns in parallel: pyarrow's kernels release the GIL, and one column's statistics
    mostly run on one core. The slowest columns start first, so that one of them is not
    left running alone at the end. The numbers of a big table go to one polars query for
    all of them (it spreads them over the cores) while the other columns are worked on.
    """

    def one(request: ProfileRequest, numbers: stats.Known = stats.UNKNOWN) -> ProfileOutcome:
        index, specs = request
        if cancelled.is_set():
            return {}, None
        if not 0 <= index < table.num_columns:
            return {}, f"column_index {index} is out of range"
        try:
            return stats.column_profile(table.columns[index], rows, specs, options, numbers), None
        except stats.ProfileError as e:
            return {}, str(e)

    batch = [
        i
        for i, (index, specs) in enumerate(requests)
        if 0 <= index < table.num_columns
        and any(s.get("profile_type") == "summary_stats" for s in specs)
        and stats.batched(table.columns[index], rows)
    ]
    if len(batch) < 2:
        batch = []
    order = sorted(range(len(requests)), key=lambda i: -_cost(table, requests[i]))
    futures: dict[int, Future[ProfileOutcome]] = {}
    threads = profile_threads(table.num_rows if rows is None else len(rows))
    with ThreadPoolExecutor(threads, f"{name}-column") as pool:
        summaries = (
            pool.submit(
                stats.number_summaries, [table.columns[requests[i][0]] for i in batch], rows
            )
            if batch
            else None
        )
        for i in order:
            if i not in batch:
                futures[i] = pool.submit(one, requests[i])
        if summaries is not None:
            known = summaries.result()
            for k, i in enumerate(batch):
                futures[i] = pool.submit(one, requests[i], known[k] if known else stats.UNKNOWN)
    return [futures[i].result() for i in range(len(requests))]


def _cost(table: Table, request: ProfileRequest) -> int:
    """A rough rank of how long a column's profiles take: hashing strings and counting
    distinct timestamps cost several times a number's statistics."""
    index, _ = request
    if not 0 <= index < table.num_columns:
        return 0
    return 3 if table.columns[index].display in ("string", "datetime", "date", "object") else 1
