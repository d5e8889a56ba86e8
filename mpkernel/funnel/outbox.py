"""The outbox: a multi-producer queue of funnel items with a pollable wakeup fd.

Producers are any thread (the main thread running user code, the io thread itself,
background threads of user code). The single consumer is the io thread, which polls
`fileno()` together with its sockets. FIFO holds per producer because `deque.append` is
atomic under the GIL and the consumer pops from the other end (I1).

The wakeup pipe carries at most one pending byte: a producer writes only when it is the
first to put an item since the consumer last started draining, so a burst of prints costs
one syscall per drain, not one per print.
"""

from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING

from mpkernel.funnel.items import Stream
from mpkernel.wakeup import WakeupPipe

if TYPE_CHECKING:
    from mpkernel.funnel.items import FunnelItem


class Outbox:
    """Queue of `FunnelItem`s consumed by the io thread."""

    def __init__(self) -> None:
        self._items: deque[FunnelItem] = deque()
        self._wakeup = WakeupPipe()
        self._write_fd = self._wakeup.write_fd
        self._wake_pending = False
        # Set by the io thread while its stream buffer holds text (so it wakes on its
        # flush timer anyway); see `IOLoop` for the order that keeps this race-free.
        self.stream_timer_armed = False

    def fileno(self) -> int:
        return self._wakeup.read_fd

    def put(self, item: FunnelItem) -> None:
        self._items.append(item)
        if self.stream_timer_armed and type(item) is Stream:
            # The funnel's stream timer will drain the queue within its interval: a
            # burst of prints costs no wakeups (and no GIL hand-offs) at all.
            return
        if not self._wake_pending:
            self._wake_pending = True
            # No Python-level call between setting the flag and the write: a signal
            # handler (KeyboardInterrupt) cannot run in between and lose the wakeup.
            try:  # noqa: SIM105 - contextlib.suppress is a Python call: see above
                os.write(self._write_fd, b"\0")
            except BlockingIOError:
                pass

    def drain(self) -> list[FunnelItem]:
        """Take every queued item (consumer side).

        Order matters: read the wakeup byte, then clear the flag, then pop. An item
        appended after the flag is cleared either gets popped below or writes a new
        wakeup byte that this call has not consumed.
        """
        self._wakeup.clear()
        self._wake_pending = False
        items = self._items
        out: list[FunnelItem] = []
        while items:
            out.append(items.popleft())
        return out

    def empty(self) -> bool:
        return not self._items

    def close(self) -> None:
        self._wakeup.close()
