"""Bad input on the wire never kills the kernel, never gets executed, never gets a reply.

A raw zmq DEALER, connected to the kernel's shell (or control) port and holding the real
HMAC key, sends malformed, unsigned, tampered and replayed frames. After each, a valid
kernel_info_request from the same socket must be answered and its reply must be the first
thing that socket receives (so the bad message got no reply), an execute must work, and the
file the bad message's code would have created must not exist.

References: docs/architecture.md section 5, bad input (drop unauthenticated or malformed input
with a log line, no reply; unknown msg_type: busy/idle and a ``*_reply`` with status error for
``*_request``), I3 (request bracket).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.blocking.client import BlockingKernelClient

from tests.frontend import (
    KernelHandle,
    assert_sequence,
    collect_until_idle,
    get_reply,
    run_ok,
    send_request,
)

pytestmark = pytest.mark.integration

DELIM = b"<IDS|MSG>"
REPLY_TIMEOUT = 30.0
FIFTY_MB = 50 * 1024 * 1024


class RawPeer:
    """A DEALER socket speaking the wire protocol by hand (sign, frame, send, verify)."""

    def __init__(
        self, ctx: zmq.Context[zmq.Socket[bytes]], handle: KernelHandle, channel: str
    ) -> None:
        info = handle.km.get_connection_info()
        self.key: bytes = handle.km.session.key
        assert info["signature_scheme"] == "hmac-sha256"
        port = {"shell": info["shell_port"], "control": info["control_port"]}[channel]
        self.session = uuid.uuid4().hex
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(f"{info['transport']}://{info['ip']}:{port}")

    def header(self, msg_type: str) -> dict[str, Any]:
        return {
            "msg_id": uuid.uuid4().hex,
            "session": self.session,
            "username": "raw-test",
            "date": datetime.now(timezone.utc).isoformat(),
            "msg_type": msg_type,
            "version": "5.4",
        }

    def sign(self, parts: list[bytes], key: bytes | None = None) -> bytes:
        mac = hmac.new(self.key if key is None else key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode()

    @staticmethod
    def pack(obj: Any) -> bytes:
        return json.dumps(obj).encode()

    def parts(
        self, msg_type: str, content: dict[str, Any], header: dict[str, Any] | None = None
    ) -> list[bytes]:
        return [
            self.pack(header if header is not None else self.header(msg_type)),
            self.pack({}),
            self.pack({}),
            self.pack(content),
        ]

    def signed(self, parts: list[bytes]) -> list[bytes]:
        return [DELIM, self.sign(parts), *parts]

    def send(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def request(self, msg_type: str, content: dict[str, Any]) -> str:
        header = self.header(msg_type)
        self.send(self.signed(self.parts(msg_type, content, header)))
        msg_id: str = header["msg_id"]
        return msg_id

    def recv(self, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
        assert self.sock.poll(int(timeout * 1000)), (
            f"no message on the raw socket within {timeout}s"
        )
        frames = self.sock.recv_multipart()
        i = frames.index(DELIM)
        sig, parts = frames[i + 1], frames[i + 2 : i + 6]
        assert hmac.compare_digest(sig, self.sign(parts)), "kernel reply has a bad signature"
        header, parent, metadata, content = (json.loads(p) for p in parts)
        return {"header": header, "parent_header": parent, "metadata": metadata, "content": content}


@pytest.fixture
def zmq_ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        yield ctx
    finally:
        ctx.destroy(linger=0)


@pytest.fixture
def shell_peer(zmq_ctx: zmq.Context[zmq.Socket[bytes]], shared_kernel: KernelHandle) -> RawPeer:
    return RawPeer(zmq_ctx, shared_kernel, "shell")


@pytest.fixture
def control_peer(zmq_ctx: zmq.Context[zmq.Socket[bytes]], shared_kernel: KernelHandle) -> RawPeer:
    return RawPeer(zmq_ctx, shared_kernel, "control")


def assert_kernel_alive_and_silent(peer: RawPeer, kc: BlockingKernelClient, canary: Path) -> None:
    """The first thing ``peer`` receives is the reply to a fresh kernel_info_request (so the
    bad input got no reply); the kernel runs an execute; the bad input's code did not run."""
    msg_id = peer.request("kernel_info_request", {})
    reply = peer.recv()
    assert reply["parent_header"].get("msg_id") == msg_id, (
        f"expected the kernel_info_reply, got {reply['header']['msg_type']}: {reply['content']}"
    )
    assert reply["header"]["msg_type"] == "kernel_info_reply"
    assert_sequence(collect_until_idle(kc, msg_id), ["status:busy", "status:idle"])
    ex = run_ok(kc, "print('alive')")
    assert ex.stdout() == "alive\n"
    assert not canary.exists(), "code from a bad message was executed"


def canary_code(path: Path) -> dict[str, Any]:
    return {
        "code": f"_ = open({str(path)!r}, 'a').write('x')",
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


BadFrames = Callable[[RawPeer, Path], list[bytes]]


def _execute_parts(peer: RawPeer, canary: Path) -> list[bytes]:
    return peer.parts("execute_request", canary_code(canary))


def wrong_signature(peer: RawPeer, canary: Path) -> list[bytes]:
    parts = _execute_parts(peer, canary)
    return [DELIM, peer.sign(parts, key=b"not-the-key"), *parts]


def missing_signature(peer: RawPeer, canary: Path) -> list[bytes]:
    return [DELIM, b"", *_execute_parts(peer, canary)]


def signature_of_another_message(peer: RawPeer, canary: Path) -> list[bytes]:
    other = peer.parts("kernel_info_request", {})
    return [DELIM, peer.sign(other), *_execute_parts(peer, canary)]


def tampered_after_signing(peer: RawPeer, canary: Path) -> list[bytes]:
    parts = peer.parts("execute_request", {**canary_code(canary), "code": "pass"})
    sig = peer.sign(parts)
    parts[3] = peer.pack(canary_code(canary))
    return [DELIM, sig, *parts]


def garbage_single_frame(peer: RawPeer, canary: Path) -> list[bytes]:
    return [b"garbage"]


def garbage_binary_frames(peer: RawPeer, canary: Path) -> list[bytes]:
    return [os.urandom(64), b"\xff\xfe\x00", os.urandom(7)]


def delimiter_only(peer: RawPeer, canary: Path) -> list[bytes]:
    return [DELIM]


def missing_delimiter(peer: RawPeer, canary: Path) -> list[bytes]:
    parts = _execute_parts(peer, canary)
    return [peer.sign(parts), *parts]


def too_few_parts(peer: RawPeer, canary: Path) -> list[bytes]:
    parts = _execute_parts(peer, canary)[:2]
    return [DELIM, peer.sign(parts), *parts]


def invalid_json_content(peer: RawPeer, canary: Path) -> list[bytes]:
    parts = _execute_parts(peer, canary)
    parts[3] = parts[3][:-5] + b"{,,"
    return peer.signed(parts)


def invalid_json_header(peer: RawPeer, canary: Path) -> list[bytes]:
    parts = _execute_parts(peer, canary)
    parts[0] = b'{"msg_type": "execute_request", '
    return peer.signed(parts)


def invalid_utf8_header(peer: RawPeer, canary: Path) -> list[bytes]:
    parts = _execute_parts(peer, canary)
    parts[0] = b'{"msg_type": "\xff\xfe"}'
    return peer.signed(parts)


def header_without_msg_type(peer: RawPeer, canary: Path) -> list[bytes]:
    header = peer.header("execute_request")
    del header["msg_type"]
    return peer.signed(peer.parts("execute_request", canary_code(canary), header))


def header_without_msg_id(peer: RawPeer, canary: Path) -> list[bytes]:
    header = peer.header("execute_request")
    del header["msg_id"]
    return peer.signed(peer.parts("execute_request", canary_code(canary), header))


def header_not_an_object(peer: RawPeer, canary: Path) -> list[bytes]:
    parts = _execute_parts(peer, canary)
    parts[0] = peer.pack(["execute_request"])
    return peer.signed(parts)


def fifty_megabyte_frame(peer: RawPeer, canary: Path) -> list[bytes]:
    parts = _execute_parts(peer, canary)
    return [DELIM, peer.sign(parts, key=b"wrong"), b"x" * FIFTY_MB, *parts[1:]]


BAD_INPUTS: list[BadFrames] = [
    wrong_signature,
    missing_signature,
    signature_of_another_message,
    tampered_after_signing,
    garbage_single_frame,
    garbage_binary_frames,
    delimiter_only,
    missing_delimiter,
    too_few_parts,
    invalid_json_content,
    invalid_json_header,
    invalid_utf8_header,
    header_without_msg_type,
    header_without_msg_id,
    header_not_an_object,
    fifty_megabyte_frame,
]


@pytest.mark.parametrize("make_frames", BAD_INPUTS, ids=lambda f: f.__name__)
def test_bad_frames_on_shell(
    shell_peer: RawPeer, kc: BlockingKernelClient, tmp_path: Path, make_frames: BadFrames
) -> None:
    """Malformed or unauthenticated frames on shell: dropped without reply, busy/idle or
    execution; the kernel keeps answering (architecture section 5)."""
    canary = tmp_path / "executed"
    shell_peer.send(make_frames(shell_peer, canary))
    assert_kernel_alive_and_silent(shell_peer, kc, canary)


@pytest.mark.parametrize(
    "make_frames",
    [wrong_signature, garbage_single_frame, missing_delimiter, invalid_json_content],
    ids=lambda f: f.__name__,
)
def test_bad_frames_on_control(
    control_peer: RawPeer, kc: BlockingKernelClient, tmp_path: Path, make_frames: BadFrames
) -> None:
    """The control socket drops bad frames the same way and keeps answering."""
    canary = tmp_path / "executed"
    control_peer.send(make_frames(control_peer, canary))
    assert_kernel_alive_and_silent(control_peer, kc, canary)


def test_many_bad_messages_in_a_row(
    shell_peer: RawPeer, kc: BlockingKernelClient, tmp_path: Path
) -> None:
    """A burst of every kind of bad input (except the 50 MB one) is survived as a whole."""
    canary = tmp_path / "executed"
    for make_frames in BAD_INPUTS:
        if make_frames is not fifty_megabyte_frame:
            for _ in range(20):
                shell_peer.send(make_frames(shell_peer, canary))
    assert_kernel_alive_and_silent(shell_peer, kc, canary)


def test_replayed_message_is_ignored(
    shell_peer: RawPeer, kc: BlockingKernelClient, tmp_path: Path
) -> None:
    """The same signed frames sent twice: the first is executed and answered, the replay is
    dropped (no second reply, the code ran once)."""
    canary = tmp_path / "ran"
    header = shell_peer.header("execute_request")
    frames = shell_peer.signed(shell_peer.parts("execute_request", canary_code(canary), header))
    shell_peer.send(frames)
    shell_peer.send(frames)

    reply = shell_peer.recv()
    assert reply["parent_header"]["msg_id"] == header["msg_id"]
    assert reply["header"]["msg_type"] == "execute_reply"
    assert reply["content"]["status"] == "ok"
    assert_sequence(
        collect_until_idle(kc, header["msg_id"]), ["status:busy", "execute_input", "status:idle"]
    )
    probe = shell_peer.request("kernel_info_request", {})
    reply = shell_peer.recv()
    assert reply["parent_header"]["msg_id"] == probe, "the replayed message got a reply"
    collect_until_idle(kc, probe)
    assert canary.read_text() == "x", "the replayed message was executed"


@pytest.mark.invariant("I3")
@pytest.mark.mpkernel_only
def test_unknown_request_gets_error_reply(kc: BlockingKernelClient) -> None:
    """Unknown ``foo_request``: busy, ``foo_reply`` with status error, idle (architecture section 5,
    I3)."""
    msg_id = send_request(kc, "foo_request", {"anything": 1})
    reply = get_reply(kc, msg_id)
    assert reply["header"]["msg_type"] == "foo_reply"
    assert reply["content"]["status"] == "error"
    assert_sequence(collect_until_idle(kc, msg_id), ["status:busy", "status:idle"])
    run_ok(kc, "pass")


@pytest.mark.invariant("I3")
def test_unknown_non_request_gets_only_busy_idle(kc: BlockingKernelClient) -> None:
    """An unknown message type that is not a request: busy/idle and no reply (the next shell
    message is the reply to the following kernel_info)."""
    msg_id = send_request(kc, "foo_notice", {"anything": 1})
    assert_sequence(collect_until_idle(kc, msg_id), ["status:busy", "status:idle"])
    probe = send_request(kc, "kernel_info_request")
    reply = get_reply(kc, probe)
    assert reply["header"]["msg_type"] == "kernel_info_reply"
    collect_until_idle(kc, probe)
    run_ok(kc, "pass")
