"""A wakeup pipe: a file descriptor a poller watches, which other threads make readable.

Used wherever one thread polls sockets and others hand it work (the io thread's outbox,
the supervisor's spawner threads, a worker's background pool). Both ends are non-blocking:
a full pipe already means "wake up", and an empty one means nothing to clear.
"""

from __future__ import annotations

import contextlib
import os


class WakeupPipe:
    __slots__ = ("read_fd", "write_fd")

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)

    def fileno(self) -> int:
        return self.read_fd

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self.write_fd, b"\0")

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.read_fd, 4096)

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
