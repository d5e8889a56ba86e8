"""The outbox: a multi-producer queue of funnel items with a pollable wakeup fd.

Producers are any thread (the main thread running user code, the io thread itself,
background threads of user code). The single consumer is the io thread, which polls
`fileno()` together with its sockets. FIFO holds per producer because `deque.append` is
atomic under the GIL and the consumer pops from the other end (I1).

The wakeup pipe carries at most one pending byte: a producer writes only when it is the
first to put an item since the consumer last started draining, so a burst of prints costs
one syscall per drain, not one per print.

Stream text from `put_text` joins the text run at the tail of the queue when it has the
same stream name and parent, so a burst of prints is one item for the consumer, not one
per `write()` (100,000 prints: about 200,000 items fewer to build, queue and buffer).
Anything else put behind a run closes it, so later text cannot overtake it (I1). A
re-entrant lock guards the tail: a signal handler on the main thread may put while the
interrupted code holds it.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import TYPE_CHECKING

from mpkernel.funnel.items import Stream
from mpkernel.wakeup import WakeupPipe

if TYPE_CHECKING:
    from mpkernel.funnel.items import FunnelItem, StreamName
    from mpkernel.wire import Header


class _TextRun:
    """Consecutive stream text of one name and parent, still open for more."""

    __slots__ = ("chunks", "name", "parent")

    def __init__(self, name: StreamName, text: str, parent: Header | None) -> None:
        self.name = name
        self.parent = parent
        self.chunks = [text]


class Outbox:
    """Queue of `FunnelItem`s consumed by the io thread."""

    def __init__(self) -> None:
        self._items: deque[FunnelItem | _TextRun] = deque()
        self._lock = threading.RLock()
        self._run: _TextRun | None = None
        self._wakeup = WakeupPipe()
        self._write_fd = self._wakeup.write_fd
        self._wake_pending = False
        # Set by the io thread while its stream buffer holds text (so it wakes on its
        # flush timer anyway); see `IOLoop` for the order that keeps this race-free.
        self.stream_timer_armed = False

    def fileno(self) -> int:
        return self._wakeup.read_fd

    def put_text(self, name: StreamName, text: str, parent: Header | None) -> None:
        """Stream text: joins the open run when name and parent match (see the module
        docstring), else starts one."""
        with self._lock:
            run = self._run
            if run is not None and run.parent is parent and run.name == name:
                # Queued after the last drain: its wakeup is pending or the timer armed.
                run.chunks.append(text)
                return
            # In this order: a KeyboardInterrupt raised between two of these lines never
            # leaves an open run that is not in the queue (its later text would be lost).
            self._run = None
            run = _TextRun(name, text, parent)
            self._items.append(run)
            self._run = run
        if not self.stream_timer_armed:
            self._wake()

    def put(self, item: FunnelItem) -> None:
        with self._lock:
            self._run = None
            self._items.append(item)
        if self.stream_timer_armed and type(item) is Stream:
            # The funnel's stream timer will drain the queue within its interval: a
            # burst of prints costs no wakeups (and no GIL hand-offs) at all.
            return
        self._wake()

    def _wake(self) -> None:
        """Write the wakeup byte unless one is pending since the last drain."""
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
        taken: list[FunnelItem | _TextRun] = []
        with self._lock:
            self._run = None  # closed: producers start a new run from here on
            while items:
                taken.append(items.popleft())
        return [
            Stream(item.name, "".join(item.chunks), item.parent) if type(item) is _TextRun else item  # type: ignore[misc]
            for item in taken
        ]

    def empty(self) -> bool:
        return not self._items

    def close(self) -> None:
        self._wakeup.close()
