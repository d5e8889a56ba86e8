"""Output capture: Python-level stdout/stderr writers and fd 1/2 pipes.

Two paths, one destination (the funnel):
- `FunnelWriter` replaces `sys.stdout`/`sys.stderr`. Each write is stream text in the
  outbox, tagged with the writer's current parent (I1: one sender, one order).
  It is written by any thread; it never blocks on I/O. A subshell thread's text is
  parented to its own request (`set_thread_parent`); every other thread's to the main
  shell's.
- `FdCapture` points fd 1 and 2 at pipes so that writes from C code and subprocesses
  (e.g. `os.system`) are seen too. Their text is moved into the outbox by `collect`:
  on the main thread at its sync points (before anything that is not stream text, on
  flush, and on the first write after a flush), so it lands in program order with what
  user code queued around it, parented to the request that wrote it; and by the io
  thread when a pipe becomes readable (text from subprocesses that outlive a request).
  A lock makes the order of reads the order of the queue. fd-level text has no thread, so
  subshell threads never collect it (`ignore_thread`): it goes to the main shell's
  request, or the io thread's `fd_parent`.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from threading import get_ident
from typing import TYPE_CHECKING

from mpkernel.funnel.items import Flush, Stream, StreamName

if TYPE_CHECKING:
    from mpkernel.funnel.outbox import Outbox
    from mpkernel.wire import Header


class FunnelWriter(io.TextIOBase):
    """A text stream whose writes go to the IOPub funnel."""

    def __init__(self, name: StreamName, outbox: Outbox, fd: int, capture: FdCapture) -> None:
        super().__init__()
        self._name: StreamName = name
        self._outbox = outbox
        self._put_text = outbox.put_text
        self._fd = fd
        self._capture = capture
        self._main_ident = threading.main_thread().ident
        #: the main shell's request (and that of any thread that is not a subshell)
        self.parent: Header | None = None
        # Subshell threads' requests, by thread id; replaced, never mutated (under the lock:
        # subshell threads change their parents at the same time), so a write reads it
        # without a lock.
        self._thread_parents: dict[int, Header | None] = {}
        self._parents_lock = threading.Lock()
        #: called with each write's text while set (the shell's output history)
        self.tee: Callable[[str], None] | None = None

    @property
    def name(self) -> str:
        return f"<{self._name}>"

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "UTF-8"  # spelled as ipykernel's streams spell it

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "strict"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # Code that asks for a real fd (subprocess, faulthandler) gets the captured one,
        # whose output reaches the frontend through FdCapture.
        return self._fd

    def set_thread_parent(self, ident: int, parent: Header | None) -> None:
        """Text written by thread `ident` (a subshell) belongs to `parent` from now on."""
        with self._parents_lock:
            self._thread_parents = {**self._thread_parents, ident: parent}

    def forget_thread(self, ident: int) -> None:
        with self._parents_lock:
            self._thread_parents = {k: v for k, v in self._thread_parents.items() if k != ident}

    def _parent_here(self) -> Header | None:
        thread_parents = self._thread_parents
        if thread_parents:
            ident = get_ident()
            if ident in thread_parents:
                return thread_parents[ident]
        return self.parent

    def write(self, text: str) -> int:
        if text.__class__ is not str and not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if get_ident() == self._main_ident and self._capture.pending():
            # Main thread: C code or a subprocess wrote to fd 1/2 since the last print;
            # that text comes first (I1).
            self._capture.collect(self.parent)
        if text:
            if self._thread_parents:
                self._put_text(self._name, text, self._parent_here())
                if self.tee is not None and get_ident() not in self._thread_parents:
                    self.tee(text)
                return len(text)
            self._put_text(self._name, text, self.parent)
            if self.tee is not None:
                self.tee(text)
        return len(text)

    def flush(self) -> None:
        self._capture.collect(self._parent_here())
        self._outbox.put(Flush())


@dataclass(slots=True)
class CapturedFd:
    name: StreamName
    fd: int
    read_fd: int
    saved_fd: int
    decoder: codecs.IncrementalDecoder

    def read_text(self) -> str:
        """Read what is available without blocking ("" when nothing or closed)."""
        chunks: list[str] = []
        while True:
            try:
                data = os.read(self.read_fd, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(self.decoder.decode(data))
            if len(data) < 65536:
                break
        return "".join(chunks)


class FdCapture:
    """Redirects fd 1 and 2 into non-blocking pipes; `collect` moves their text into the
    outbox (main thread and io thread)."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._lock = threading.Lock()
        self.captured: list[CapturedFd] = []
        # Used by the main thread only: a poll object must not be polled concurrently.
        self._main_poll = select.poll()
        self._main_ident = threading.main_thread().ident
        # Threads whose `collect` does nothing (subshells: see the module docstring).
        self._ignored: frozenset[int] = frozenset()

    def ignore_thread(self, ident: int, ignored: bool = True) -> None:
        with self._lock:
            self._ignored = self._ignored | {ident} if ignored else self._ignored - {ident}

    def pending(self) -> bool:
        """Is there fd-level text to collect? (main thread only)"""
        return bool(self._main_poll.poll(0))

    @property
    def read_fds(self) -> list[int]:
        return [cap.read_fd for cap in self.captured]

    def collect(self, parent: Header | None) -> None:
        """Queue what was written to fd 1/2 so far as stream text for `parent`."""
        # Under the lock even when nothing is pending: text the io thread has read but not
        # queued yet is in the outbox once the lock is ours, so nothing queued after this
        # call (an idle) can overtake it (I2).
        if self._ignored and get_ident() in self._ignored:
            return
        with self._lock:
            if get_ident() == self._main_ident and not self.pending():
                # The usual case at a sync point: one poll instead of a failing read per
                # pipe (each raises BlockingIOError).
                return
            for cap in self.captured:
                text = cap.read_text()
                if text:
                    self._outbox.put(Stream(cap.name, text, parent))

    def start(self) -> None:
        for name, fd in (("stdout", 1), ("stderr", 2)):
            saved = os.dup(fd)
            read_fd, write_fd = os.pipe()
            os.dup2(write_fd, fd)
            os.close(write_fd)
            os.set_blocking(read_fd, False)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            self._main_poll.register(read_fd, select.POLLIN)
            self.captured.append(CapturedFd(name, fd, read_fd, saved, decoder))  # type: ignore[arg-type]

    def stop(self) -> None:
        for cap in self.captured:
            with contextlib.suppress(OSError):
                os.dup2(cap.saved_fd, cap.fd)
                os.close(cap.saved_fd)
                os.close(cap.read_fd)
        self.captured = []
        self._main_poll = select.poll()
