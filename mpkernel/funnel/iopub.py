"""The IOPub funnel: the one place where outgoing messages get their order.

Owned by the io thread. Nothing here touches a socket: the funnel turns the ordered
stream of `FunnelItem`s into calls on a `FunnelSink`, which the io thread implements
with real sockets and the unit tests implement with a list.

    main thread ──┐                         ┌─> sink.publish  (XPUB)
    user threads ─┼─> Outbox ─> IOPubFunnel ┼─> sink.reply    (shell / control ROUTER)
    io thread ────┘   (FIFO)   (one stream  └─> sink.request_input (stdin ROUTER)
    fd 1/2 pipes ─┘            buffer)

Invariants kept here:
- I1: items are handled in the order they are given; nothing is reordered.
- I2: there is one stream buffer (one stream name, one parent). A different name or
  parent flushes it first; any non-stream item flushes it first; `flush_due()` flushes
  it at most `STREAM_FLUSH_S` after its first text.
- I3: busy/idle are forwarded in order, and idle is a non-stream item, so everything
  the request printed is out before it.
- I8: an input request is a non-stream item too: earlier output is out before it.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from mpkernel.funnel.items import (
    Barrier,
    CommInfo,
    CommItem,
    DrainShell,
    Flush,
    FunnelItem,
    InputRequest,
    IoCall,
    KernelAnswerItem,
    OpenBackendComm,
    Publish,
    PublishRaw,
    RegisterComm,
    ReplaceViewer,
    Reply,
    SnapshotReady,
    Status,
    Stop,
    Stream,
    UnregisterComm,
)
from mpkernel.wire import Header

STREAM_FLUSH_S = 0.05
# A very chatty cell should still produce messages of a sane size.
STREAM_MAX_BUFFER = 1 << 20


class FunnelSink(Protocol):
    """Where the funnel's decisions go; implemented by the io thread."""

    def publish(self, item: Publish) -> None: ...

    def reply(self, item: Reply) -> None: ...

    def publish_raw(self, item: PublishRaw) -> None: ...

    def request_input(self, item: InputRequest) -> None: ...

    def comm_item(self, item: CommItem) -> None: ...

    def idle_may_go(self, parent: Header | None) -> bool:
        """False keeps an idle back (workers still owe Done for that request, I3);
        whoever said False publishes it later."""

    def drain_shell(self, item: DrainShell) -> None: ...

    def stop(self) -> None: ...


class IOPubFunnel:
    """Single consumer of funnel items; see the module docstring for its invariants."""

    def __init__(self, sink: FunnelSink, clock: Any = time.monotonic) -> None:
        self._sink = sink
        self._clock = clock
        self._name: str | None = None
        self._parent: Header | None = None
        self._chunks: list[str] = []
        self._size = 0
        self._deadline: float | None = None

    # -- stream buffer -------------------------------------------------------------
    def _buffer(self, name: str, text: str, parent: Header | None) -> None:
        if self._chunks and (name != self._name or parent is not self._parent):
            self.flush()
        if not self._chunks:
            self._name = name
            self._parent = parent
            self._deadline = self._clock() + STREAM_FLUSH_S
        self._chunks.append(text)
        self._size += len(text)
        if self._size >= STREAM_MAX_BUFFER:
            self.flush()

    def flush(self) -> None:
        if not self._chunks:
            return
        text = "".join(self._chunks)
        name, parent = self._name, self._parent
        self._chunks = []
        self._size = 0
        self._deadline = None
        self._sink.publish(Publish("stream", {"name": name, "text": text}, parent))

    def flush_due(self) -> None:
        """Flush if the buffer's timer has run out (called by the io loop)."""
        if self._deadline is not None and self._clock() >= self._deadline:
            self.flush()

    def timeout_ms(self) -> int | None:
        """How long the io loop may sleep before `flush_due` must run (None: forever)."""
        if self._deadline is None:
            return None
        return max(0, int((self._deadline - self._clock()) * 1000) + 1)

    # -- items ---------------------------------------------------------------------
    def handle(self, item: FunnelItem) -> None:
        if type(item) is Stream:
            self._buffer(item.name, item.text, item.parent)
            return
        self.flush()
        match item:
            case Status(state=state, parent=parent):
                if state == "idle" and not self._sink.idle_may_go(parent):
                    return
                self._sink.publish(Publish("status", {"execution_state": state}, parent))
            case PublishRaw():
                self._sink.publish_raw(item)
            case Publish():
                self._sink.publish(item)
            case Reply():
                self._sink.reply(item)
            case Flush():
                pass
            case Barrier(done=done):
                done.set()
            case InputRequest():
                self._sink.request_input(item)
            case DrainShell():
                self._sink.drain_shell(item)
            case IoCall(fn=fn):
                fn()
            case Stop():
                self._sink.stop()
            case (
                CommInfo()
                | RegisterComm()
                | UnregisterComm()
                | OpenBackendComm()
                | ReplaceViewer()
                | SnapshotReady()
                | KernelAnswerItem()
            ):
                self._sink.comm_item(item)
            case _:
                raise TypeError(f"not a funnel item: {item!r}")
