"""The io thread before the kernel is assembled (`mpkernel.kernel.io_thread`), on real
sockets bound as the kernel binds them, with jupyter_client's Session as the client.

While the main thread still builds the kernel, kernel_info is answered on shell and on
control (busy, reply, idle; `iopub_welcome` and `starting` first), every other request is
kept in arrival order for the loop that takes over, a shell kernel_info behind a kept shell
request waits its turn, and a message with a bad signature is dropped and logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import zmq
from jupyter_client.session import Session

from mpkernel.kernel.connection import ConnectionInfo
from mpkernel.kernel.frontend import FrontendSender
from mpkernel.kernel.io_thread import IoThread, Kept
from mpkernel.kernel.sockets import bind_sockets, close_sockets
from mpkernel.wire import Signer, decode

KEY = b"io-thread-test-key"
TIMEOUT_MS = 5000
KERNEL_INFO = {"status": "ok", "implementation": "mpkernel", "protocol_version": "5.5"}


@dataclass
class Rig:
    session: Session
    shell: zmq.Socket[bytes]
    control: zmq.Socket[bytes]
    iopub: zmq.Socket[bytes]
    thread: IoThread
    kernel_shell: zmq.Socket[bytes]
    kernel_control: zmq.Socket[bytes]
    thread_signer: Signer
    kept: list[Kept]
    served: threading.Event

    def send(self, channel: str, msg_type: str, content: dict[str, Any] | None = None) -> str:
        sock = self.shell if channel == "shell" else self.control
        msg = self.session.msg(msg_type, content or {})
        self.session.send(sock, msg)
        return str(msg["header"]["msg_id"])

    def recv(self, channel: str) -> dict[str, Any]:
        sock = {"shell": self.shell, "control": self.control, "iopub": self.iopub}[channel]
        assert sock.poll(TIMEOUT_MS), f"nothing on {channel} within {TIMEOUT_MS} ms"
        _, frames = self.session.feed_identities(sock.recv_multipart())
        return dict(self.session.deserialize(frames))

    def hand_over(self, expected: int = 0) -> list[Kept]:
        """Hand the io thread a stand-in loop that records what it is given: the kept
        requests, then (read on the io thread, which owns the sockets) what is still on
        their way, until `expected` requests were seen in all."""
        signer = self.thread_signer

        def serve(kept: list[Kept]) -> None:
            self.kept.extend(kept)
            poller = zmq.Poller()
            for sock in (self.kernel_shell, self.kernel_control):
                poller.register(sock, zmq.POLLIN)
            while len(self.kept) < expected:
                events = dict(poller.poll(TIMEOUT_MS))
                if not events:
                    break
                for channel, sock in (
                    ("control", self.kernel_control),
                    ("shell", self.kernel_shell),
                ):
                    if sock in events:
                        msg = decode(sock.recv_multipart(), signer)
                        self.kept.append((channel, msg))
            self.served.set()

        self.thread.hand_over(serve)
        assert self.served.wait(2 * TIMEOUT_MS / 1000), "the io thread did not take the hand-over"
        return self.kept


@pytest.fixture
def rig() -> Iterator[Rig]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    info = ConnectionInfo("tcp", "127.0.0.1", 0, 0, 0, 0, 0, KEY, "hmac-sha256")
    sockets, info = bind_sockets(ctx, info)
    signer = Signer(KEY, "hmac-sha256")
    sender = FrontendSender(sockets.shell, sockets.control, sockets.iopub, signer, "kernel-s")
    thread = IoThread(sockets.shell, sockets.control, sockets.iopub, sender, signer, KERNEL_INFO)
    client = Session(key=KEY, signature_scheme="hmac-sha256")
    shell = ctx.socket(zmq.DEALER)
    control = ctx.socket(zmq.DEALER)
    iopub = ctx.socket(zmq.SUB)
    iopub.setsockopt(zmq.SUBSCRIBE, b"")
    for sock, port in ((shell, info.shell_port), (control, info.control_port)):
        sock.connect(info.address(port))
    iopub.connect(info.address(info.iopub_port))
    r = Rig(
        client,
        shell,
        control,
        iopub,
        thread,
        sockets.shell,
        sockets.control,
        signer,
        [],
        threading.Event(),
    )
    thread.start()
    try:
        yield r
    finally:
        if not r.served.is_set():
            r.hand_over()
        thread.join(TIMEOUT_MS / 1000)
        for sock in (shell, control, iopub):
            sock.close(linger=0)
        close_sockets(sockets, linger_ms=0)
        sockets.hb.close(linger=0)
        ctx.term()


def test_kernel_info_answered_with_welcome_starting_busy_idle(rig: Rig) -> None:
    # The first message on IOPub is the welcome to this subscription: it proves the
    # subscription arrived, so nothing published after it can be missed.
    assert rig.recv("iopub")["msg_type"] == "iopub_welcome"
    assert rig.recv("iopub")["content"] == {"execution_state": "starting"}
    for channel in ("shell", "control"):
        msg_id = rig.send(channel, "kernel_info_request")
        reply = rig.recv(channel)
        assert reply["msg_type"] == "kernel_info_reply"
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"] == KERNEL_INFO
        states = [rig.recv("iopub") for _ in range(2)]
        assert [m["content"]["execution_state"] for m in states] == ["busy", "idle"]
        assert {m["parent_header"]["msg_id"] for m in states} == {msg_id}
    assert rig.hand_over() == []


def test_other_requests_are_kept_in_order_and_shell_order_holds(rig: Rig) -> None:
    sent = [
        ("shell", rig.send("shell", "execute_request", {"code": "1", "silent": False})),
        # Behind a kept shell request, kernel_info on shell waits its turn.
        ("shell", rig.send("shell", "kernel_info_request")),
    ]
    # Control is a channel of its own: answered while shell requests wait.
    probe = rig.send("control", "kernel_info_request")
    assert rig.recv("control")["parent_header"]["msg_id"] == probe
    sent += [
        ("control", rig.send("control", "shutdown_request", {"restart": False})),
        # The same on control, behind the shutdown.
        ("control", rig.send("control", "kernel_info_request")),
    ]
    received = rig.hand_over(expected=len(sent))
    for channel in ("shell", "control"):
        assert [m.msg_id for c, m in received if c == channel] == [
            msg_id for c, msg_id in sent if c == channel
        ]
    assert not rig.shell.poll(0), "nothing was answered on shell"
    assert not rig.control.poll(0), "nothing more was answered on control"


def test_bad_signature_is_dropped_and_logged(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    forger = Session(key=b"not-the-key", signature_scheme="hmac-sha256")
    with caplog.at_level(logging.WARNING, logger="mpkernel.kernel.frontend"):
        forger.send(rig.shell, forger.msg("kernel_info_request", {}))
        msg_id = rig.send("shell", "kernel_info_request")
        reply = rig.recv("shell")
    assert reply["parent_header"]["msg_id"] == msg_id
    assert not rig.shell.poll(100), "the forged request got no answer"
    assert any("BadSignature" in r.getMessage() for r in caplog.records)
    assert rig.hand_over() == []
