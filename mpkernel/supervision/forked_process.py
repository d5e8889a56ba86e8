"""A child forked from the kernel's main thread, watched by the supervisor as it watches a
`multiprocess.Process`: the same few members, with a pidfd as its sentinel."""

from __future__ import annotations

import contextlib
import os


class ForkedProcess:
    """A child forked from the kernel (`fork.ForkSite`), seen through the few members of
    `multiprocess.Process` the supervisor uses; its sentinel is a pidfd."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.sentinel = os.pidfd_open(pid)
        self.exitcode: int | None = None  # None also when another reaper took the status
        self._reaped = False

    def join(self, timeout: float | None = None) -> None:
        if self._reaped:
            return
        from multiprocess.connection import wait

        if wait([self.sentinel], timeout=timeout):
            self._reaped = True
            with contextlib.suppress(ChildProcessError):  # the shutdown's sweep reaped it
                _, status = os.waitpid(self.pid, 0)
                self.exitcode = os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        """Once it is reaped and forgotten: its pidfd."""
        os.close(self.sentinel)


class RawFd:
    """A raw file descriptor with the `close()` of a multiprocess Connection."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
