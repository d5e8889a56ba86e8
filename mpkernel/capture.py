"""Output capture: Python-level stdout/stderr writers and fd 1/2 pipes.

Two paths, one destination (the funnel):
- `FunnelWriter` replaces `sys.stdout`/`sys.stderr`. Each write becomes a `Stream` item
  in the outbox, tagged with the writer's current parent (I1: one sender, one order).
  It is written by any thread; it never blocks on I/O.
- `FdCapture` points fd 1 and 2 at pipes so that writes from C code and subprocesses
  (e.g. `os.system`) are seen too. The io thread polls the read ends and hands the text
  to the funnel with the parent of the request in progress.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mpkernel.items import Flush, Stream, StreamName

if TYPE_CHECKING:
    from mpkernel.outbox import Outbox
    from mpkernel.wire import Header


class FunnelWriter(io.TextIOBase):
    """A text stream whose writes go to the IOPub funnel."""

    def __init__(self, name: StreamName, outbox: Outbox, fd: int) -> None:
        super().__init__()
        self._name: StreamName = name
        self._outbox = outbox
        self._fd = fd
        self.parent: Header | None = None

    @property
    def name(self) -> str:
        return f"<{self._name}>"

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

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

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._outbox.put(Stream(self._name, text, self.parent))
        return len(text)

    def flush(self) -> None:
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
    """Redirects fd 1 and 2 into non-blocking pipes read by the io thread."""

    def __init__(self) -> None:
        self.captured: list[CapturedFd] = []

    def start(self) -> None:
        for name, fd in (("stdout", 1), ("stderr", 2)):
            saved = os.dup(fd)
            read_fd, write_fd = os.pipe()
            os.dup2(write_fd, fd)
            os.close(write_fd)
            os.set_blocking(read_fd, False)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            self.captured.append(CapturedFd(name, fd, read_fd, saved, decoder))  # type: ignore[arg-type]

    def stop(self) -> None:
        for cap in self.captured:
            with contextlib.suppress(OSError):
                os.dup2(cap.saved_fd, cap.fd)
                os.close(cap.saved_fd)
                os.close(cap.read_fd)
        self.captured = []
