"""Worker requests through a real kernel: background RPCs, their cancellation, kernel
requests from a handler, and the object a comm is opened about, on the built-in
`mpkernel.echo` worker. Requests are sent as Positron sends them (no JSON-RPC `id`) and
their replies found by parent header.

Invariants (docs/architecture.md section 2) checked here: I3 (each request's idle after its reply, a
background one included), I4 (replies parented to their own request, in the order the worker answers
them), I5 (nothing on a comm after the frontend closed it, its running request cancelled).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.frontend import DEFAULT_TIMEOUT, describe, kind
from tests.integration.comm_client import (
    ECHO,
    INTERNAL_ERROR,
    IOPubLog,
    assert_bracket,
    assert_parent_is,
    call,
    close_comm,
    comm_id_of,
    execute_ok,
    is_reply,
    msg_type,
    open_comm,
    send_close,
    send_rpc,
    status_of,
    stdout_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]


def journal_until(log: IOPubLog, comm_id: str, match: Any) -> list[dict[str, Any]]:
    """The echo worker's journal, asked again until an entry matches (the entry is written
    by a background thread after the event the test caused); fails after the deadline."""
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while True:
        journal: list[dict[str, Any]] = call(log, comm_id, "journal").result
        if any(match(e) for e in journal) or time.monotonic() > deadline:
            return journal


# --------------------------------------------------------------------------------------------
# background requests


@pytest.mark.invariant("I3", "I4")
def test_echo_sent_after_a_sleep_is_answered_first(log: IOPubLog, echo: str) -> None:
    """`sleep` runs in the background: an `echo` sent after a 2 s sleep on the same comm
    gets its reply and idle first; each reply is parented to its own request and each
    request's idle comes after its reply."""
    sleep, sleep_header = send_rpc(log.kc, echo, "sleep", {"seconds": 2})
    quick, quick_header = send_rpc(log.kc, echo, "echo", {"n": 1})
    log.wait_idle(quick_header["msg_id"], sleep_header["msg_id"], timeout=DEFAULT_TIMEOUT + 2)
    (quick_reply,) = [m for m in log.msgs if is_reply(m, quick, echo)]
    (sleep_reply,) = [m for m in log.msgs if is_reply(m, sleep, echo)]
    assert log.index(quick_reply) < log.index(sleep_reply), describe(log.msgs[-8:])
    assert quick_reply["content"]["data"] == {"jsonrpc": "2.0", "result": {"n": 1}}
    assert sleep_reply["content"]["data"] == {"jsonrpc": "2.0", "result": {"slept": 2.0}}
    for reply, header in ((quick_reply, quick_header), (sleep_reply, sleep_header)):
        assert_parent_is(reply, header)
        inner = assert_bracket(log.msgs, header["msg_id"])
        assert inner == [reply], describe(inner)
    quick_idle = log.parented(quick_header["msg_id"])[-1]
    assert log.index(quick_idle) < log.index(sleep_reply)


@pytest.mark.invariant("I3", "I5")
def test_closing_a_comm_cancels_its_background_request(log: IOPubLog) -> None:
    """The frontend closes a comm while a 60 s sleep runs on it: the sleep's request and
    the close both get their idle at once (the sleep ends early), nothing is published on
    the comm after the close's busy, and the handler saw the cancellation with the close's
    reason; the worker keeps serving its other comm."""
    other = open_comm(log, ECHO)
    comm = open_comm(log, ECHO)
    _, sleep_header = send_rpc(log.kc, comm, "sleep", {"seconds": 60})
    log.wait_for(status_of(sleep_header["msg_id"], "busy"), what="the sleep's busy")
    close = send_close(log.kc, comm)
    log.wait_idle(close["msg_id"], sleep_header["msg_id"])
    assert_bracket(log.msgs, close["msg_id"])
    assert assert_bracket(log.msgs, sleep_header["msg_id"]) == []
    close_busy = log.parented(close["msg_id"])[0]
    late = [m for m in log.msgs[log.index(close_busy) :] if comm_id_of(m) == comm]
    assert not late, describe(late)

    def cancelled(e: dict[str, Any]) -> bool:
        return bool(e["event"] == "cancelled" and e["comm_id"] == comm)

    journal = journal_until(log, other, cancelled)
    assert [e["reason"] for e in journal if cancelled(e)] == ["frontend_closed"], journal
    assert call(log, other, "echo", {"alive": True}).result == {"alive": True}
    close_comm(log, other)


# --------------------------------------------------------------------------------------------
# kernel requests


@pytest.mark.invariant("I3")
def test_kernel_request_delete_from_a_handler(log: IOPubLog, echo: str) -> None:
    """A handler deletes a name through a kernel request: the RPC returns what was deleted,
    the `del` shows as an execute_input inside the RPC's busy/idle, before its reply; the
    name is gone from the user's namespace, the others stay."""
    execute_ok(log, "doomed = 1\nkept = 2")
    rpc = call(log, echo, "kernel", {"method": "delete", "params": {"names": ["doomed", "nope"]}})
    assert rpc.result == ["doomed"]
    inner = assert_bracket(log.msgs, rpc.header["msg_id"])
    assert [kind(m) for m in inner] == ["execute_input", "comm_msg"], describe(inner)
    assert inner[0]["content"]["code"] == "del doomed"
    out = stdout_of(execute_ok(log, "print('doomed' in dir(), kept)"))
    assert out == "False 2\n"


def test_kernel_request_snapshot_and_unknown_method(log: IOPubLog, echo: str) -> None:
    """`snapshot` answers with the version it built (a new one each time); an unknown
    kernel method is a -32603 error naming it."""
    first = call(log, echo, "kernel", {"method": "snapshot"}).result
    second = call(log, echo, "kernel", {"method": "snapshot"}).result
    assert isinstance(first["version"], int)
    assert second["version"] > first["version"]
    error = call(log, echo, "kernel", {"method": "no_such_thing"}).error
    assert error["code"] == INTERNAL_ERROR
    assert "no_such_thing" in error["message"]


@pytest.mark.invariant("I3", "I5")
def test_kernel_request_view_opens_a_comm_about_an_object(log: IOPubLog, echo: str) -> None:
    """`view` opens a backend comm on a worker about an object of the namespace: its
    comm_open is published inside the RPC's busy/idle, before the reply that names it; the
    new comm's handler has the object as its subject."""
    execute_ok(log, "table = {'rows': [1, 2, 3]}")
    rpc = call(
        log,
        echo,
        "kernel",
        {
            "method": "view",
            "params": {"path": ["table", "rows"], "target": ECHO, "data": {"title": "rows"}},
        },
    )
    new_comm = rpc.result["comm_id"]
    inner = assert_bracket(log.msgs, rpc.header["msg_id"])
    opens = [m for m in inner if msg_type(m) == "comm_open"]
    assert [comm_id_of(m) for m in opens] == [new_comm], describe(inner)
    assert opens[0]["content"]["data"] == {"title": "rows"}
    assert log.index(opens[0]) < log.index(rpc.reply)
    assert call(log, new_comm, "subject").result == {"type": "list", "repr": "[1, 2, 3]"}
    close_comm(log, new_comm)


# --------------------------------------------------------------------------------------------
# the object a comm is opened about


@pytest.mark.invariant("I5")
def test_comm_opened_from_user_code_about_an_object(log: IOPubLog, echo: str) -> None:
    """`mpkernel.comms.open(target, subject=obj)` from user code: the comm_open is
    published in the cell's busy/idle, and the handler sees the object; a comm opened
    without one has no subject."""
    msgs = execute_ok(
        log,
        "import mpkernel.comms\n"
        "print(mpkernel.comms.open('mpkernel.echo', {'k': 1}, subject=b'abc' * 2), end='')",
    )
    comm_id = stdout_of(msgs)
    opens = [m for m in msgs if msg_type(m) == "comm_open"]
    assert [comm_id_of(m) for m in opens] == [comm_id], describe(msgs)
    assert call(log, comm_id, "subject").result == {"type": "bytes", "repr": "b'abcabc'"}
    assert call(log, echo, "subject").result is None
    close_comm(log, comm_id)
