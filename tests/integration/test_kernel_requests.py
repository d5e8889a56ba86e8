"""Kernel requests from a handler, seen from the frontend: they are served on the main thread
between executions, never in the middle of user code, and one that waited past its deadline
fails cleanly without touching the namespace.

The built-in `mpkernel.echo` forwards them (its `kernel` RPC runs in the background, so the
worker keeps answering meanwhile). Requests go out as Positron sends them, without an `id`.
"""

from __future__ import annotations

import pytest

from tests.frontend import describe, kind, parent_id, recv
from tests.integration.comm_client import (
    INTERNAL_ERROR,
    IOPubLog,
    assert_bracket,
    call,
    execute_ok,
    is_response_to,
    msg_type,
    send_rpc,
    stdout_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]


def start_cell(log: IOPubLog, code: str) -> str:
    """Send an execute and return once its code runs (its execute_input is out)."""
    msg_id: str = log.kc.execute(code)
    log.wait_for(
        lambda m: parent_id(m) == msg_id and msg_type(m) == "execute_input",
        what="the cell's execute_input",
    )
    return msg_id


@pytest.mark.invariant("I3")
def test_kernel_request_waits_for_the_running_cell(log: IOPubLog, echo: str) -> None:
    """A delete asked while a cell runs is served after the cell: the cell's last line (which
    assigns the name) has run, the cell's idle comes before the RPC's reply, and the name is
    gone afterwards."""
    cell = start_cell(log, "import time\ntime.sleep(1.5)\nlate = 'assigned at the end'")
    request, header = send_rpc(
        log.kc, echo, "kernel", {"method": "delete", "params": {"names": ["late"]}}
    )
    log.wait_idle(cell, header["msg_id"])
    recv(log.kc, "shell", lambda m: parent_id(m) == cell, what="the cell's execute_reply")
    inner = assert_bracket(log.msgs, header["msg_id"])
    (reply,) = [m for m in inner if is_response_to(m, request, echo)]
    assert reply["content"]["data"]["result"] == ["late"], describe(inner)
    cell_idle = log.parented(cell)[-1]
    assert log.index(cell_idle) < log.index(reply), describe(log.msgs)
    assert stdout_of(execute_ok(log, "print('late' in dir())")) == "False\n"


def test_kernel_request_past_its_deadline_fails_and_changes_nothing(
    log: IOPubLog, echo: str
) -> None:
    """A delete with a 0.3 s deadline, asked while a cell sleeps 2 s: the RPC fails with an
    error naming the deadline while the cell still runs; when the main thread gets to the
    request it is past its deadline, so the name is not deleted; the kernel carries on."""
    execute_ok(log, "survivor = 42")
    cell = start_cell(log, "import time\ntime.sleep(2)")
    request, header = send_rpc(
        log.kc,
        echo,
        "kernel",
        {"method": "delete", "params": {"names": ["survivor"]}, "timeout_s": 0.3},
    )
    log.wait_idle(header["msg_id"])
    inner = assert_bracket(log.msgs, header["msg_id"])
    (reply,) = [m for m in inner if is_response_to(m, request, echo)]
    error = reply["content"]["data"]["error"]
    assert error["code"] == INTERNAL_ERROR
    assert "0.3" in error["message"] or "deadline" in error["message"], error
    assert cell not in log.idle, "the RPC failed only after the cell ended"
    log.wait_idle(cell)
    recv(log.kc, "shell", lambda m: parent_id(m) == cell, what="the cell's execute_reply")
    assert stdout_of(execute_ok(log, "print(survivor)")) == "42\n"
    assert call(log, echo, "echo", {"still": "serving"}).result == {"still": "serving"}


@pytest.mark.invariant("I3")
def test_kernel_request_clear_empties_the_namespace(log: IOPubLog, echo: str) -> None:
    """`clear` resets the user's namespace (the console shows `%reset -sf` inside the RPC's
    bracket, before its reply); hidden names such as `In` stay unless asked for."""
    execute_ok(log, "to_clear = [1, 2]")
    rpc = call(log, echo, "kernel", {"method": "clear", "params": {}})
    assert rpc.result == {}
    inner = assert_bracket(log.msgs, rpc.header["msg_id"])
    assert [kind(m) for m in inner] == ["execute_input", "comm_msg"], describe(inner)
    assert inner[0]["content"]["code"] == "%reset -sf"
    out = stdout_of(execute_ok(log, "print('to_clear' in dir(), 'In' in dir())"))
    assert out == "False True\n"
