"""fd-level capture (`FdCapture`): text written to fd 1 is queued before anything the main
thread queues after its sync point, even when the io thread is collecting it right then
(I2). Real pipes on the process's fd 1; the outbox is a recording stand-in whose `put` can
be held, to stop the io thread between its read and its put."""

from __future__ import annotations

import os
import threading
from typing import Any

from mpkernel.funnel.capture import FdCapture
from mpkernel.funnel.items import Status, Stream
from mpkernel.wire import Header

HOLD_S = 0.5  # how long the io thread is held inside its collect; never needed to pass


class HeldOutbox:
    """Records items; a `put` from a thread other than the main one waits for `release`."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.in_put = threading.Event()
        self.release = threading.Event()

    def put(self, item: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.in_put.set()
            self.release.wait(10)
        self.items.append(item)


def test_main_thread_sync_point_waits_for_text_the_io_thread_is_queueing() -> None:
    outbox = HeldOutbox()
    capture = FdCapture(outbox)  # type: ignore[arg-type]
    parent = Header("cell-1", "execute_request")
    capture.start()
    try:
        os.write(1, b"from a subprocess\n")
        io_thread = threading.Thread(target=capture.collect, args=(parent,))
        io_thread.start()
        assert outbox.in_put.wait(10), "the io thread read the pipe and is queueing the text"
        # The main thread's sync point: the pipe is empty now (the io thread has read it),
        # but what it read is not queued yet. Without waiting for it, the idle below would
        # overtake it. The timer only ends the hold; the assertion does not depend on it.
        releaser = threading.Timer(HOLD_S, outbox.release.set)
        releaser.start()
        capture.collect(parent)
        outbox.items.append(Status("idle", parent))
        io_thread.join(10)
        releaser.cancel()
    finally:
        outbox.release.set()
        capture.stop()
    assert outbox.items == [
        Stream("stdout", "from a subprocess\n", parent),
        Status("idle", parent),
    ]
