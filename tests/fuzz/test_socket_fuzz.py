"""Fuzzing the kernel's sockets: mutated valid messages and random frames on shell, control
and stdin, through real ZMQ sockets, for a bounded number of examples.

After each example a canary request on the same socket must be answered: the kernel never
dies. A message with a valid signature, a well-formed header, an object as content and a
`*_request` type must get exactly one reply, before the canary's (requests on one socket are
served in order); anything else must get none. The canary is `comm_info_request` on shell
(a `kernel_info_request` may be answered ahead of the request being run:
docs/subshells.md) and `kernel_info_request` on control.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import KERNEL_NAME
from tests.frontend import KernelHandle, start_kernel, stop_kernel
from tests.unit.test_wire_codec import byte_strings  # st.binary() trips python -bb

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DELIM = b"<IDS|MSG>"
REPLY_TIMEOUT_S = 30.0
EXAMPLES = 1000

SHELL_REQUESTS = [
    "execute_request",
    "complete_request",
    "inspect_request",
    "history_request",
    "is_complete_request",
    "comm_info_request",
    "kernel_info_request",
]
CONTROL_REQUESTS = ["kernel_info_request", "interrupt_request", "debug_request"]
OTHER_TYPES = ["comm_open", "comm_msg", "comm_close", "input_reply", "no_such_request"]
# Executed code stays harmless: the fuzz is about the protocol, not about what code does.
CODE = ["pass", "1 + 1", "x = 1", "print('fuzz')", "1/0", "%lsmagic", "def f(:"]

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=20))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
content_keys = st.sampled_from(
    [
        "code",
        "cursor_pos",
        "detail_level",
        "silent",
        "store_history",
        "allow_stdin",
        "user_expressions",
        "hist_access_type",
        "n",
        "target_name",
        "comm_id",
        "data",
        "value",
        "command",
        "seq",
        "arguments",
        "restart",
    ]
)


@st.composite
def contents(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_value)  # not always an object
    content: dict[str, Any] = draw(st.dictionaries(content_keys, json_value, max_size=6))
    if "code" in content and isinstance(content["code"], str):
        content["code"] = draw(st.sampled_from(CODE))
    if "user_expressions" in content:
        content["user_expressions"] = {"e": draw(st.sampled_from(CODE))}
    if draw(st.booleans()):
        content["target_name"] = draw(
            st.sampled_from(["mpkernel.echo", "positron.variables", "nope"])
        )
    return content


@dataclass
class Case:
    channel: str
    msg_type: str
    header_ok: bool
    signed: bool
    content: Any
    frames: list[bytes] | None  # random frames instead of a message

    def expects_reply(self) -> bool:
        return (
            self.frames is None
            and self.signed
            and self.header_ok
            and isinstance(self.content, dict)
            and self.channel != "stdin"
            and self.msg_type.endswith("_request")
        )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    channel = draw(st.sampled_from(["shell", "shell", "control", "stdin"]))
    if draw(st.integers(0, 4)) == 0:
        frames = draw(st.lists(byte_strings(), min_size=1, max_size=7))
        if draw(st.booleans()):
            frames.insert(draw(st.integers(0, len(frames))), DELIM)
        return Case(channel, "", False, False, None, frames)
    known = SHELL_REQUESTS if channel == "shell" else CONTROL_REQUESTS
    msg_type = draw(
        st.one_of(
            st.sampled_from(known),
            st.sampled_from(known),
            st.sampled_from(OTHER_TYPES),
            st.text(max_size=12),
        )
    )
    return Case(
        channel,
        msg_type,
        header_ok=draw(st.integers(0, 5)) > 0,
        signed=draw(st.integers(0, 5)) > 0,
        content=draw(contents()),
        frames=None,
    )


class Peer:
    """A DEALER on one kernel socket, speaking the wire protocol by hand."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], handle: KernelHandle, channel: str):
        info = handle.km.get_connection_info()
        self.key: bytes = handle.km.session.key
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        port = info[f"{channel}_port"]
        self.sock.connect(f"{info['transport']}://{info['ip']}:{port}")
        self.session = uuid.uuid4().hex

    def sign(self, parts: list[bytes]) -> bytes:
        mac = hmac.new(self.key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode()

    def message(self, case: Case) -> tuple[str, list[bytes]]:
        msg_id = uuid.uuid4().hex
        header: dict[str, Any] = {
            "msg_id": msg_id,
            "msg_type": case.msg_type,
            "session": self.session,
            "username": "fuzz",
            "date": "2026-01-01T00:00:00Z",
            "version": "5.4",
        }
        if not case.header_ok:
            header["msg_id"] = 7  # not a string: the header is refused
        parts = [json.dumps(p).encode() for p in (header, {}, {}, case.content)]
        signature = self.sign(parts) if case.signed else b"0" * 64
        return msg_id, [DELIM, signature, *parts]

    def replies_until(self, canary_id: str) -> list[dict[str, Any]]:
        """Everything received up to and including the canary's reply."""
        got: list[dict[str, Any]] = []
        while True:
            assert self.sock.poll(int(REPLY_TIMEOUT_S * 1000)), "the kernel stopped answering"
            frames = self.sock.recv_multipart()
            i = frames.index(DELIM)
            parts = frames[i + 2 : i + 6]
            assert hmac.compare_digest(frames[i + 1], self.sign(parts))
            msg = dict(
                zip(
                    ("header", "parent_header", "metadata", "content"),
                    map(json.loads, parts),
                    strict=True,
                )
            )
            got.append(msg)
            if msg["parent_header"].get("msg_id") == canary_id:
                return got


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[KernelHandle, dict[str, Peer]]]:
    handle = start_kernel(KERNEL_NAME)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        yield handle, {c: Peer(ctx, handle, c) for c in ("shell", "control", "stdin")}
    finally:
        ctx.destroy(linger=0)
        stop_kernel(handle)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_fuzzed_input_never_kills_and_valid_requests_are_answered(
    peers: tuple[KernelHandle, dict[str, Peer]], case: Case
) -> None:
    handle, by_channel = peers
    peer = by_channel[case.channel]
    if case.frames is not None:
        msg_id, frames = "", case.frames
    else:
        msg_id, frames = peer.message(case)
    peer.sock.send_multipart(frames)
    # The canary goes where replies come back from: stdin has none, so ask on shell.
    asker = peer if case.channel != "stdin" else by_channel["shell"]
    canary_type = "kernel_info_request" if case.channel == "control" else "comm_info_request"
    canary = Case(case.channel, canary_type, True, True, {}, None)
    canary_id, canary_frames = asker.message(canary)
    asker.sock.send_multipart(canary_frames)
    got = asker.replies_until(canary_id)
    answers = [m for m in got if msg_id and m["parent_header"].get("msg_id") == msg_id]
    expected = 1 if case.expects_reply() else 0
    event(f"{'answered' if expected else 'refused'} on {case.channel}")
    assert len(answers) == expected, (case, [m["header"]["msg_type"] for m in got])
    assert handle.km.is_alive()
