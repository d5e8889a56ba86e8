"""IPython's history, written to its SQLite file shortly after a cell instead of during it.

IPython as ipykernel runs it writes every cell's input in a transaction of its own (its
`db_cache_size` is 0): measured on `pass`, 0.6 ms of the kernel's CPU per execute (more
than everything else an execute costs) and 0.3 ms of its round trip. The kernel keeps
IPython's own cache instead and asks IPython's saving thread to write it out `DELAY_S`
after the first cell not yet written: a burst of cells (a notebook run top to bottom) is
one transaction, a cell run by hand is on disk a second after it ran. Readers see every
cell anyway (IPython writes its cache out before its tail and search queries), and a
kernel that shuts down writes it out (IPython's exit work); a kernel killed within that
second loses the cells of it from the file.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from mpkernel.threads import start_without_sigint

if TYPE_CHECKING:
    from IPython.core.history import HistoryManager

DELAY_S = 1.0
#: never reached in practice: the timer, not the cache's size, has the cache written
CACHE_CELLS = 1_000_000


class DeferredHistoryWrites:
    """Main thread: `after_cell` once a cell has run; the timer thread sets IPython's
    save flag."""

    def __init__(self, manager: HistoryManager, delay_s: float = DELAY_S) -> None:
        self._manager = manager
        self._delay_s = delay_s
        self._lock = threading.Lock()
        self._due = False
        # Only where IPython has its saving thread (not with history off or in memory).
        self.active = bool(manager.enabled and manager.using_thread)
        if self.active:
            manager.db_cache_size = CACHE_CELLS

    def after_cell(self) -> None:
        if not self.active:
            return
        with self._lock:
            if self._due:
                return
            self._due = True
        timer = threading.Timer(self._delay_s, self._write)
        timer.daemon = True
        start_without_sigint(timer)

    def _write(self) -> None:
        with self._lock:
            # A cell that runs from now on is written by a timer of its own; one that ran
            # before is in the cache the saving thread is about to write.
            self._due = False
        flag = self._manager.save_flag
        if flag is not None:
            flag.set()
