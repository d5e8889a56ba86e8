"""The kernel's own `continue` to debugpy's adapter (`DebugSession.resume_all`), against a
stand-in adapter on a real TCP connection (the session's real ZMQ STREAM socket and DAP
framing).

An interrupt that arrives while the main thread is paused is retried until it lands in the
user's code, and every retry asks the session to resume the paused threads. debugpy's
adapter never answers a `continue` for a thread that already runs, and then answers nothing
at all: so a thread gets one `continue` until that one is answered, however many retries
come first, and a new one once it has stopped again.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from mpkernel.debugger.cells import CellFiles
from mpkernel.debugger.dap import DapReader, frame
from mpkernel.debugger.namespace import NamespaceView
from mpkernel.debugger.session import DebugSession
from mpkernel.wire import Header, Message

TIMEOUT_S = 5.0


class Adapter:
    """One accepted connection from the session; reads and writes DAP messages."""

    def __init__(self, listener: socket.socket) -> None:
        listener.settimeout(TIMEOUT_S)
        self.conn, _ = listener.accept()
        self.conn.settimeout(TIMEOUT_S)
        self._reader = DapReader()
        self._seq = 1000

    def send(self, message: dict[str, Any]) -> None:
        self._seq += 1
        self.conn.sendall(frame({"seq": self._seq, **message}))

    def until(self, command: str) -> list[dict[str, Any]]:
        """Every request the session sent, up to and including the next `command`."""
        out: list[dict[str, Any]] = []
        while True:
            data = self.conn.recv(65536)
            assert data, "the session closed the connection"
            for message in self._reader.feed(data):
                out.append(message)
                if message.get("command") == command:
                    return out

    def wait_for(self, command: str) -> dict[str, Any]:
        return self.until(command)[-1]


class Rig:
    def __init__(self, session: DebugSession, poller: zmq.Poller, adapter: Adapter) -> None:
        self.session = session
        self.poller = poller
        self.adapter = adapter

    def pump_until(self, done: Any) -> None:
        """Let the session read what the adapter sent until `done()` holds."""
        while not done():
            events = dict(self.poller.poll(int(TIMEOUT_S * 1000)))
            assert events, "the session received nothing"
            self.session.on_readable()


def request(seq: int, command: str, arguments: dict[str, Any] | None = None) -> Message[Any]:
    header = Header(f"m{seq}", "debug_request", "s", "u", "2026-01-01T00:00:00Z", "5.4")
    content = {"type": "request", "seq": seq, "command": command, "arguments": arguments or {}}
    return Message(header, None, {}, content, identities=(b"peer",))


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    poller = zmq.Poller()
    emitted: list[Any] = []

    def run_on_main(fn: Any, then: Any) -> None:
        then(fn(), None)

    session = DebugSession(
        ctx,
        poller,
        emitted.append,
        run_on_main,
        lambda: None,
        lambda: ("127.0.0.1", port),
        NamespaceView({}, {}),
        lambda name: ({}, {}),
        [],
        CellFiles(tmp_path),
    )
    session.handle(request(1, "initialize", {"adapterID": "python"}))
    adapter = Adapter(listener)
    r = Rig(session, poller, adapter)
    # The request waits in the session until its socket reports the connection.
    assert poller.poll(int(TIMEOUT_S * 1000)), "no connection notice"
    session.on_readable()
    init = adapter.wait_for("initialize")
    adapter.send(
        {
            "type": "response",
            "request_seq": init["seq"],
            "success": True,
            "command": "initialize",
            "body": {},
        }
    )
    r.pump_until(lambda: any(getattr(e, "msg_type", "") == "debug_reply" for e in emitted))
    try:
        yield r
    finally:
        if session.socket is not None:
            session.socket.close(linger=0)
        adapter.conn.close()
        listener.close()
        ctx.term()


def stop_thread(r: Rig, thread: int) -> None:
    r.adapter.send(
        {"type": "event", "event": "stopped", "body": {"reason": "breakpoint", "threadId": thread}}
    )
    r.pump_until(lambda: thread in r.session.stopped_threads)


def sent_before_a_marker(r: Rig) -> list[str]:
    """The commands the session sent since the last look: a frontend's `threads` request,
    forwarded behind them on the same connection, marks the end."""
    r.session.handle(request(99, "threads"))
    return [m["command"] for m in r.adapter.until("threads")][:-1]


def test_one_continue_per_stop_however_often_resumed(rig: Rig) -> None:
    stop_thread(rig, 1)
    for _ in range(5):  # the interrupt retried while the thread is still in debugpy's code
        rig.session.resume_all()
    first = rig.adapter.wait_for("continue")
    assert first["arguments"] == {"threadId": 1}
    assert sent_before_a_marker(rig) == [], "one continue, not five"

    rig.adapter.send(
        {
            "type": "response",
            "request_seq": first["seq"],
            "success": True,
            "command": "continue",
            "body": {"allThreadsContinued": True},
        }
    )
    rig.pump_until(lambda: not rig.session.stopped_threads)
    rig.session.resume_all()  # nothing is paused: nothing to continue
    assert sent_before_a_marker(rig) == []

    stop_thread(rig, 1)  # paused again: it gets a continue of its own
    rig.session.resume_all()
    rig.session.resume_all()
    assert sent_before_a_marker(rig) == ["continue"]
