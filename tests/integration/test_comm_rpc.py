"""Comms served by worker processes, seen from the frontend: RPC replies and their parents,
request brackets, JSON-RPC errors, echo, events, frontend-bound requests, unknown targets.

Invariants (docs/architecture.md section 2) checked here: I3 (request bracket, worker output
included), I4 (RPC parenting), and the comm rules of docs/architecture.md section 3.

Requests go out as Positron sends them, without a JSON-RPC ``id`` (the reply is found by its
parent header); tests about ids run over both shapes (``RPC_SHAPES``): without ``id``, the
reply carries none; with one, the reply echoes it.
"""

from __future__ import annotations

import pytest

from tests.frontend import KernelHandle, describe, kind, parent_id, recv
from tests.integration.comm_client import (
    ECHO,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    RPC_SHAPES,
    IOPubLog,
    assert_bracket,
    assert_parent_is,
    call,
    close_comm,
    comm_id_of,
    execute_ok,
    is_event,
    is_frontend_request,
    is_reply,
    msg_type,
    new_rpc_id,
    open_comm,
    rpc_id_for,
    send_close,
    send_data,
    send_open,
    send_rpc,
    send_shell,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]


# --------------------------------------------------------------------------------------------
# I4


@pytest.mark.invariant("I4")
@pytest.mark.parametrize("shape", RPC_SHAPES)
def test_rpc_reply_parent_is_the_request_header(log: IOPubLog, echo: str, shape: str) -> None:
    """I4 RPC parenting: the reply's parent_header equals the request's full header, and the
    data is exactly the echoed params as result, with the request's id when it sent one and
    no id when it sent none (Positron's shape)."""
    rpc = call(log, echo, "echo", {"x": [1, 2, 3], "s": "é"}, rpc_id=rpc_id_for(shape))
    assert_parent_is(rpc.reply, rpc.header)
    expected = {"jsonrpc": "2.0", "result": {"x": [1, 2, 3], "s": "é"}}
    if shape == "with-id":
        expected["id"] = rpc.rpc_id
    assert rpc.data == expected
    assert comm_id_of(rpc.reply) == echo


@pytest.mark.invariant("I4")
@pytest.mark.parametrize("shape", [*RPC_SHAPES, "mixed"])
def test_pipelined_rpcs_each_parented_to_its_own_request(
    log: IOPubLog, echo: str, shape: str
) -> None:
    """I4 RPC parenting with 50 RPCs in flight (no waiting between sends): each reply carries
    its own request's header, and its own id when it sent one (string ids included), none
    when it sent none; "mixed" alternates requests with and without id."""
    sent = []
    for i in range(50):
        if shape == "no-id" or (shape == "mixed" and i % 2):
            rpc_id = None
        else:
            rpc_id = f"req-{i}" if i % 4 == 1 else new_rpc_id()
        sent.append((i, *send_rpc(log.kc, echo, "echo", {"i": i}, rpc_id=rpc_id)))
    log.wait_idle(*(h["msg_id"] for _, _, h in sent))
    for i, request, header in sent:
        inner = assert_bracket(log.msgs, header["msg_id"])
        assert len(inner) == 1, describe(inner)
        (reply,) = inner
        assert is_reply(reply, request, echo), f"not the reply to {request!r}:\n{describe(inner)}"
        assert reply["content"]["data"]["result"] == {"i": i}
        assert_parent_is(reply, header)


@pytest.mark.invariant("I4")
@pytest.mark.parametrize("shape", RPC_SHAPES)
def test_health_rpc_parented_too(log: IOPubLog, shape: str) -> None:
    """I4 RPC parenting for the kernel-served mpkernel.health target, with and without id
    (``call`` checks the reply's id: echoed, or absent)."""
    comm_id = open_comm(log, "mpkernel.health")
    try:
        rpc = call(log, comm_id, "status", rpc_id=rpc_id_for(shape))
        assert_parent_is(rpc.reply, rpc.header)
        assert isinstance(rpc.result["pid"], int)
        unknown = call(log, comm_id, "no_such_method", rpc_id=rpc_id_for(shape))
        assert unknown.error["code"] == METHOD_NOT_FOUND
    finally:
        close_comm(log, comm_id)


# --------------------------------------------------------------------------------------------
# I3


@pytest.mark.invariant("I3")
def test_comm_open_bracket(log: IOPubLog) -> None:
    """I3 request bracket: a frontend comm_open on a worker target gets busy, idle (the idle
    after the worker has handled the open) and nothing else parented to it."""
    comm_id, header = send_open(log.kc, ECHO, {"hello": 1})
    log.wait_idle(header["msg_id"])
    assert assert_bracket(log.msgs, header["msg_id"]) == []
    # The worker has the comm: an RPC on it is served.
    assert call(log, comm_id, "echo", {"ok": True}).result == {"ok": True}
    close_comm(log, comm_id)


@pytest.mark.invariant("I3", "I4")
def test_comm_msg_echo_bracket(log: IOPubLog, echo: str) -> None:
    """I3 + I4: a non-RPC comm_msg is echoed back as a comm_msg parented to the request,
    inside the request's busy/idle."""
    header = send_data(log.kc, echo, {"plain": "data", "n": 3})
    log.wait_idle(header["msg_id"])
    inner = assert_bracket(log.msgs, header["msg_id"])
    assert [msg_type(m) for m in inner] == ["comm_msg"], describe(inner)
    assert inner[0]["content"] == {"comm_id": echo, "data": {"plain": "data", "n": 3}}
    assert_parent_is(inner[0], header)


@pytest.mark.invariant("I3")
def test_rpc_bracket(log: IOPubLog, echo: str) -> None:
    """I3 request bracket: an RPC gets busy, reply, idle."""
    rpc = call(log, echo, "pid")
    assert [kind(m) for m in rpc.bracket] == ["status:busy", "comm_msg", "status:idle"]
    assert isinstance(rpc.result, int)


@pytest.mark.invariant("I3", "I1")
def test_emit_events_before_reply_and_idle(log: IOPubLog, echo: str) -> None:
    """I3 + I1: emit(300) sends 300 parentless events, in index order, all before the RPC's
    reply, and the reply before the request's idle (idle waits for the worker's Done)."""
    request, header = send_rpc(log.kc, echo, "emit", {"count": 300})
    start = len(log.msgs)
    log.wait_idle(header["msg_id"])
    inner = assert_bracket(log.msgs, header["msg_id"])
    window = log.msgs[start:]
    events = [m for m in window if is_event(m, echo)]
    assert [e["content"]["data"]["params"]["index"] for e in events] == list(range(300))
    assert all(parent_id(e) is None for e in events)
    assert all(e["content"]["data"]["method"] == "emitted" for e in events)
    (reply,) = [m for m in window if is_reply(m, request, echo)]
    assert reply["content"]["data"]["result"] == {"count": 300}
    assert reply in inner
    idle = log.parented(header["msg_id"])[-1]
    assert window.index(events[-1]) < window.index(reply) < window.index(idle)


@pytest.mark.invariant("I3", "I5", "I2")
def test_backend_open_idle_after_comm_open(log: IOPubLog) -> None:
    """I3 + I5 + I2: an execute that calls mpkernel.comms.open publishes the comm_open
    (parented to the execute, target and data as given) between the prints around it,
    and the execute's idle comes after it; the worker serves the comm afterwards."""
    code = (
        "import mpkernel.comms\n"
        "print('before')\n"
        "cid = mpkernel.comms.open('mpkernel.echo', {'a': 1})\n"
        "print('after')\n"
    )
    msgs = execute_ok(log, code)
    labels = [kind(m) for m in msgs]
    assert labels == [
        "status:busy",
        "execute_input",
        "stream:stdout",
        "comm_open",
        "stream:stdout",
        "status:idle",
    ], describe(msgs)
    opened = msgs[3]
    assert opened["content"]["target_name"] == ECHO
    assert opened["content"]["data"] == {"a": 1}
    comm_id = opened["content"]["comm_id"]
    cid = execute_ok(log, "print(cid)")
    assert comm_id in "".join(m["content"].get("text", "") for m in cid)
    assert call(log, comm_id, "echo", {"b": 2}).result == {"b": 2}
    close_comm(log, comm_id)


@pytest.mark.invariant("I3")
def test_rpc_answered_while_a_cell_runs(log: IOPubLog, echo: str) -> None:
    """I3 + architecture section 3 (comm requests do not wait for user code): an RPC sent while a
    cell runs time.sleep(3) is answered (reply and idle) before that cell's idle."""
    exec_id: str = log.kc.execute("import time; time.sleep(3); print('slept')")
    # Wait until the cell is running (its execute_input is out), then send the RPC.
    log.wait_for(
        lambda m: parent_id(m) == exec_id and msg_type(m) == "execute_input",
        what="the cell's execute_input",
    )
    request, header = send_rpc(log.kc, echo, "echo", {"during": "sleep"})
    log.wait_idle(exec_id, header["msg_id"])
    assert_bracket(log.msgs, header["msg_id"])
    exec_msgs = assert_bracket(log.msgs, exec_id)
    (reply,) = [m for m in log.msgs if is_reply(m, request, echo)]
    rpc_idle = log.parented(header["msg_id"])[-1]
    exec_idle = log.parented(exec_id)[-1]
    assert log.index(reply) < log.index(rpc_idle) < log.index(exec_idle), describe(log.msgs)
    assert "slept" in "".join(m["content"].get("text", "") for m in exec_msgs)
    recv(log.kc, "shell", lambda m: parent_id(m) == exec_id, what="execute_reply")


# --------------------------------------------------------------------------------------------
# JSON-RPC errors (architecture section 3: Positron's codes; the comm stays open)


@pytest.mark.invariant("I4")
@pytest.mark.parametrize("shape", RPC_SHAPES)
def test_unknown_method(log: IOPubLog, echo: str, shape: str) -> None:
    """I4 + architecture section 3: an unknown method is answered with -32601, parented to the
    request, with the request's id or, for a request without id, none."""
    rpc = call(log, echo, "no_such_method", {}, rpc_id=rpc_id_for(shape))
    assert rpc.error["code"] == METHOD_NOT_FOUND
    assert "no_such_method" in rpc.error["message"]


@pytest.mark.parametrize(
    "params", [{"seconds": 1, "extra": 2}, {"nope": 1}, "not-an-object"], ids=str
)
@pytest.mark.invariant("I4")
def test_bad_params(log: IOPubLog, echo: str, params: object) -> None:
    """I4 + architecture section 3: params that do not fit the method are answered with -32602."""
    rpc = call(log, echo, "sleep", params)
    assert rpc.error["code"] == INVALID_PARAMS, rpc.data


def test_handler_raising_keeps_the_comm(log: IOPubLog, echo: str) -> None:
    """I6 / architecture section 3: crash(how='raise') is answered with -32603 naming the exception,
    and the comm and its worker keep working (same pid before and after)."""
    pid = call(log, echo, "pid").result
    rpc = call(log, echo, "crash", {"how": "raise"})
    assert rpc.error["code"] == INTERNAL_ERROR
    assert "RuntimeError" in rpc.error["message"]
    assert call(log, echo, "pid").result == pid
    assert call(log, echo, "echo", {"still": "open"}).result == {"still": "open"}


@pytest.mark.invariant("I3")
def test_unknown_target_refused_inside_bracket(log: IOPubLog) -> None:
    """architecture section 3 + I3: comm_open on an unknown target gets comm_close (reason
    unknown_target) for that comm id, inside the request's busy/idle."""
    comm_id, header = send_open(log.kc, "no.such.target")
    log.wait_idle(header["msg_id"])
    inner = assert_bracket(log.msgs, header["msg_id"])
    assert [msg_type(m) for m in inner] == ["comm_close"], describe(inner)
    assert comm_id_of(inner[0]) == comm_id
    assert inner[0]["content"]["data"]["reason"] == "unknown_target"


def test_duplicate_comm_id_refused(log: IOPubLog, echo: str) -> None:
    """architecture section 3: a comm_open reusing an open comm's id is refused with comm_close, and
    the existing comm keeps working."""
    _, header = send_open(log.kc, ECHO, comm_id=echo)
    log.wait_idle(header["msg_id"])
    inner = assert_bracket(log.msgs, header["msg_id"])
    assert [msg_type(m) for m in inner] == ["comm_close"], describe(inner)
    assert call(log, echo, "echo", {"k": 1}).result == {"k": 1}


# --------------------------------------------------------------------------------------------
# frontend-bound requests (architecture section 3)


@pytest.mark.invariant("I4", "I3")
def test_ask_frontend_round_trip(log: IOPubLog, echo: str) -> None:
    """architecture section 3 + I4 + I3: a handler's request to the frontend arrives as a comm_msg
    with method and id; the frontend's answer goes back to the handler; the original RPC is then
    answered with the frontend's result, parented to it, and only then idles."""
    request, header = send_rpc(
        log.kc, echo, "ask_frontend", {"method": "show_question", "params": {"q": "why?"}}
    )
    asked = log.wait_for(lambda m: is_frontend_request(m, echo), what="the frontend request")
    data = asked["content"]["data"]
    assert data["method"] == "show_question"
    assert data["params"] == {"q": "why?"}
    assert header["msg_id"] not in log.idle, "the RPC idled before the frontend answered"
    answer = log.comms().answer(echo, data["id"], {"answer": 42})
    log.wait_idle(header["msg_id"], answer["msg_id"])
    inner = assert_bracket(log.msgs, header["msg_id"])
    assert_bracket(log.msgs, answer["msg_id"])
    (reply,) = [m for m in inner if is_reply(m, request, echo)]
    assert reply["content"]["data"]["result"] == {"answer": 42}
    assert_parent_is(reply, header)


def test_ask_frontend_error_answer(log: IOPubLog, echo: str) -> None:
    """architecture section 3: a frontend error answer ends the handler's request with that error:
    the RPC is answered with the frontend's code and message."""
    request, header = send_rpc(log.kc, echo, "ask_frontend", {"method": "m", "params": {}})
    asked = log.wait_for(lambda m: is_frontend_request(m, echo), what="the frontend request")
    answer = log.comms().answer(
        echo, asked["content"]["data"]["id"], error={"code": -32000, "message": "user said no"}
    )
    log.wait_idle(header["msg_id"], answer["msg_id"])
    (reply,) = [m for m in log.msgs if is_reply(m, request, echo)]
    assert reply["content"]["data"]["error"] == {"code": -32000, "message": "user said no"}


@pytest.mark.invariant("I3")
def test_frontend_close_ends_pending_frontend_request(log: IOPubLog) -> None:
    """architecture section 3 ("never by waiting forever") + I3: the frontend closes a comm whose
    handler waits on a frontend-bound request. The close request and the RPC both get their idle,
    and the shared echo worker keeps serving other comms."""
    echo = open_comm(log, ECHO)
    other = open_comm(log, ECHO)
    _, header = send_rpc(log.kc, echo, "ask_frontend", {"method": "m", "params": {}})
    log.wait_for(lambda m: is_frontend_request(m, echo), what="the frontend request")
    close = send_close(log.kc, echo)
    log.wait_idle(close["msg_id"], header["msg_id"], timeout=10)
    assert_bracket(log.msgs, close["msg_id"])
    assert_bracket(log.msgs, header["msg_id"])
    assert call(log, other, "echo", {"alive": 1}, timeout=10).result == {"alive": 1}
    close_comm(log, other)


@pytest.mark.invariant("I3")
def test_unmatched_frontend_answer_is_ignored(log: IOPubLog, echo: str) -> None:
    """I3: an answer to no pending frontend request still gets busy/idle and nothing else;
    the comm keeps working."""
    header = log.comms().answer(echo, "nobody-asked", 1)
    log.wait_idle(header["msg_id"])
    assert assert_bracket(log.msgs, header["msg_id"]) == []
    assert call(log, echo, "echo", {}).result == {}


def test_request_without_method_is_invalid(log: IOPubLog, echo: str) -> None:
    """architecture section 3: a comm_msg whose `method` is not a string is answered with -32600
    (the router's unit tests cover the same without an id)."""
    request, header = send_rpc(log.kc, echo, None, rpc_id="no-method")  # type: ignore[arg-type]
    log.wait_idle(header["msg_id"])
    (reply,) = assert_bracket(log.msgs, header["msg_id"])
    assert is_reply(reply, request, echo), describe([reply])
    assert reply["content"]["data"]["error"]["code"] == -32600


@pytest.mark.invariant("I4")
def test_comm_msg_buffers_echoed(log: IOPubLog, echo: str) -> None:
    """I4 + architecture section 3: binary buffers on a frontend comm_msg reach the handler and come
    back on its reply, byte for byte, parented to the request."""
    buffers = [b"abc", bytes(range(256)), b""]
    header = send_shell(
        log.kc, "comm_msg", {"comm_id": echo, "data": {"with": "buffers"}}, buffers=buffers
    )
    log.wait_idle(header["msg_id"])
    (echoed,) = assert_bracket(log.msgs, header["msg_id"])
    assert echoed["content"]["data"] == {"with": "buffers"}
    assert [bytes(b) for b in echoed["buffers"]] == buffers
    assert_parent_is(echoed, header)


@pytest.mark.invariant("I1", "I3", "I4", "I5")
def test_pipelined_open_and_rpcs_on_a_cold_worker(fresh_kernel: KernelHandle) -> None:
    """I3 + I4 + I1 on a worker that is not started yet: comm_open and three RPCs (one an
    emit) sent back to back. Every request gets busy/idle; each RPC its reply, parented to
    it (found by parent header, no id since none was sent), in request order; the events in
    order before the emit's reply. Then a pipelined emit + comm_close: nothing on the comm
    after the close's busy."""
    log = IOPubLog(fresh_kernel.kc)
    comm_id, open_header = send_open(log.kc, ECHO, {"cold": True})
    calls = [
        send_rpc(log.kc, comm_id, "pid"),
        send_rpc(log.kc, comm_id, "emit", {"count": 100}),
        send_rpc(log.kc, comm_id, "echo", {"last": 1}),
    ]
    ids = [open_header["msg_id"], *(h["msg_id"] for _, h in calls)]
    log.wait_idle(*ids)
    for msg_id in ids:
        assert_bracket(log.msgs, msg_id)
    on_comm = log.on_comm(comm_id)
    replies = [m for m in on_comm if not is_event(m)]
    assert [parent_id(m) for m in replies] == [h["msg_id"] for _, h in calls], describe(on_comm)
    for (request, header), reply in zip(calls, replies, strict=True):
        assert is_reply(reply, request, comm_id), describe([reply])
        assert_parent_is(reply, header)
        assert "result" in reply["content"]["data"], reply["content"]
    events = [m["content"]["data"]["params"]["index"] for m in on_comm if is_event(m)]
    assert events == list(range(100))
    assert log.index(replies[0]) < log.index(on_comm[1]) < log.index(replies[1])

    _, emit = send_rpc(log.kc, comm_id, "emit", {"count": 1000})
    close = send_close(log.kc, comm_id)
    log.wait_idle(emit["msg_id"], close["msg_id"])
    close_busy = log.index(log.parented(close["msg_id"])[0])
    late = [m for m in log.on_comm(comm_id) if log.index(m) > close_busy]
    assert not late, describe(late[:3])


@pytest.mark.invariant("I4", "I7")
def test_large_payload_round_trip(log: IOPubLog, echo: str) -> None:
    """I4 + I7 for a big RPC: 8 MiB of params go to the worker and come back whole,
    parented to the request."""
    blob = "x" * (8 << 20)
    rpc = call(log, echo, "echo", {"blob": blob, "tail": "é"})
    assert rpc.result["tail"] == "é"
    assert rpc.result["blob"] == blob
