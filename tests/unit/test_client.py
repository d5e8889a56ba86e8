"""The frontend client's pure parts: the mailbox, message matching, the IOPub log and the
RPC shapes, driven by scripted sources and a fake clock (no sockets, no kernel)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterable
from queue import Empty
from typing import Any

import pytest

from mpkernel.client import IOPubLog, Mailbox, MessageTimeout, UnexpectedMessages, bracket
from mpkernel.client.frontend import channel_reader
from mpkernel.client.messages import Channel, Msg, coalesce_streams, kinds, parented_to, status_of
from mpkernel.client.rpc import (
    RpcRequest,
    id_echoed,
    is_event,
    is_frontend_request,
    is_reply,
    is_response_to,
    response_data,
    rpc_data,
)


def msg(msg_type: str, parent: str | None = None, **content: Any) -> Msg:
    return {
        "header": {"msg_type": msg_type, "msg_id": f"m-{msg_type}-{id(content)}"},
        "msg_type": msg_type,
        "parent_header": {"msg_id": parent} if parent else {},
        "content": content,
    }


def status(state: str, parent: str | None) -> Msg:
    return msg("status", parent, execution_state=state)


def stream(text: str, parent: str | None, name: str = "stdout") -> Msg:
    return msg("stream", parent, name=name, text=text)


class Script:
    """A source that hands out scripted messages per channel, one per read, and a clock
    that a read without a message advances by its whole timeout."""

    def __init__(self, **channels: Iterable[Msg]) -> None:
        self.queues: dict[str, list[Msg]] = {c: list(ms) for c, ms in channels.items()}
        self.now = 0.0
        self.reads = 0

    def clock(self) -> float:
        return self.now

    def __call__(self, channel: Channel, timeout: float) -> Msg | None:
        self.reads += 1
        queue = self.queues.get(channel, [])
        if queue:
            return queue.pop(0)
        self.now += timeout
        return None


def mailbox(script: Script, seen: list[Msg] | None = None) -> Mailbox:
    def on_read(channel: Channel, m: Msg) -> None:
        if seen is not None:
            seen.append(m)

    return Mailbox(script, clock=script.clock, on_read=on_read)


def test_receive_keeps_the_messages_it_passes_over_in_arrival_order() -> None:
    a1, b1, a2 = stream("a1", "A"), stream("b1", "B"), stream("a2", "A")
    box = mailbox(Script(iopub=[a1, b1, a2]))
    assert box.receive("iopub", parented_to("B"), timeout=1) is b1
    assert box.pending("iopub") == [a1]
    assert box.receive("iopub", parented_to("A"), timeout=1) is a1
    assert box.receive("iopub", parented_to("A"), timeout=1) is a2
    assert box.pending("iopub") == []


def test_receive_looks_in_the_mailbox_before_reading() -> None:
    early, late = stream("x", "A"), stream("y", "A")
    script = Script(iopub=[early, late])
    box = mailbox(script)
    box.receive("iopub", lambda m: m is late, timeout=1)
    reads = script.reads
    assert box.receive("iopub", timeout=1) is early
    assert script.reads == reads


def test_channels_have_separate_mailboxes() -> None:
    reply, busy = msg("execute_reply", "A"), status("busy", "A")
    box = mailbox(Script(shell=[reply], iopub=[busy]))
    with pytest.raises(MessageTimeout):
        box.receive("shell", lambda m: False, timeout=1)
    assert box.pending("shell") == [reply]
    assert box.pending("iopub") == []
    assert box.receive("iopub", timeout=1) is busy


def test_timeout_names_what_was_awaited_and_what_came() -> None:
    box = mailbox(Script(iopub=[stream("noise", "A")]))
    with pytest.raises(MessageTimeout) as caught:
        box.receive("iopub", parented_to("Z"), timeout=2, what="the idle of Z")
    text = str(caught.value)
    assert "the idle of Z" in text
    assert "stream:stdout parent=A" in text


def test_every_message_is_seen_once_as_it_is_read() -> None:
    m1, m2 = stream("1", "A"), stream("2", "A")
    seen: list[Msg] = []
    box = mailbox(Script(iopub=[m1, m2]), seen)
    box.receive("iopub", lambda m: m is m2, timeout=1)
    box.receive("iopub", timeout=1)
    assert seen == [m1, m2]


def test_claim_takes_only_the_matching_messages() -> None:
    a, b = stream("a", "A"), stream("b", "B")
    box = mailbox(Script())
    box.keep("iopub", a)
    box.keep("iopub", b)
    assert box.claim("iopub", parented_to("A")) == [a]
    assert box.pending("iopub") == [b]


def test_consume_until_drops_what_it_is_shown() -> None:
    kept, new1, idle = stream("old", "A"), stream("new", "B"), status("idle", "B")
    box = mailbox(Script(iopub=[new1, idle]))
    box.keep("iopub", kept)
    shown: list[Msg] = []

    def until(m: Msg) -> bool:
        shown.append(m)
        return status_of("B", "idle")(m)

    assert box.consume_until("iopub", until, timeout=1) is idle
    assert shown == [kept, new1, idle]
    assert box.pending("iopub") == []


def test_consume_until_times_out() -> None:
    box = mailbox(Script(iopub=[stream("x", "A")]))
    with pytest.raises(MessageTimeout, match="the welcome"):
        box.consume_until("iopub", lambda m: False, timeout=1, what="the welcome")


def test_log_records_arrival_order_across_parents_and_idles() -> None:
    script = Script(
        iopub=[status("busy", "A"), status("busy", "B"), status("idle", "B"), status("idle", "A")]
    )
    log = IOPubLog(mailbox(script))
    log.wait_idle("A", timeout=1)
    assert [m["parent_header"]["msg_id"] for m in log.msgs] == ["A", "B", "B", "A"]
    assert log.idle == {"A", "B"}
    assert len(log.parented("B")) == 2


def test_log_reads_what_another_wait_put_aside_first() -> None:
    aside, after = stream("aside", "A"), status("idle", "A")
    box = mailbox(Script(iopub=[after]))
    box.keep("iopub", aside)
    log = IOPubLog(box)
    log.wait_idle("A", timeout=1)
    assert log.msgs == [aside, after]


def test_log_wait_for_finds_an_already_logged_message() -> None:
    event = msg("comm_msg", None, comm_id="c", data={"method": "update"})
    log = IOPubLog(mailbox(Script(iopub=[event, status("idle", "A")])))
    log.wait_idle("A", timeout=1)
    assert log.wait_for(lambda m: is_event(m, "c"), timeout=1, what="the event") is event
    assert log.on_comm("c") == [event]
    assert log.index(event) == 0


def test_log_timeout_shows_the_tail() -> None:
    log = IOPubLog(mailbox(Script(iopub=[stream("last words", "A")])))
    with pytest.raises(MessageTimeout, match="last words"):
        log.wait_idle("A", timeout=1)


def test_a_log_without_a_mailbox_only_checks() -> None:
    log = IOPubLog(None, [status("busy", "A"), status("idle", "A")])
    log.wait_idle("A", timeout=1)
    with pytest.raises(MessageTimeout):
        log.wait_idle("B", timeout=1)


def test_bracket_accepts_one_busy_first_and_one_idle_last() -> None:
    inner = stream("x", "A")
    msgs = [status("busy", "A"), stream("other", "B"), inner, status("idle", "A")]
    assert bracket(msgs, "A") == [inner]


@pytest.mark.parametrize(
    "states",
    [["busy", "busy", "idle"], ["busy"], ["idle", "busy"], ["busy", "idle", "idle"]],
)
def test_bracket_refuses_a_broken_one(states: list[str]) -> None:
    with pytest.raises(UnexpectedMessages):
        bracket([status(s, "A") for s in states], "A")


def test_neighbouring_streams_of_one_name_count_once() -> None:
    msgs = [stream("a", "A"), stream("b", "A"), stream("e", "A", "stderr"), stream("c", "A")]
    assert kinds(msgs) == ["stream:stdout", "stream:stderr", "stream:stdout"]
    assert coalesce_streams(msgs)[0]["content"]["text"] == "ab"
    assert msgs[0]["content"]["text"] == "a"


def test_rpc_without_id_is_positrons_shape() -> None:
    assert rpc_data("list") == {"jsonrpc": "2.0", "method": "list"}
    assert rpc_data("get", {"k": 1}, 7) == {
        "jsonrpc": "2.0",
        "method": "get",
        "id": 7,
        "params": {"k": 1},
    }


def reply_msg(parent: str, data: dict[str, Any], comm_id: str = "c") -> Msg:
    return msg("comm_msg", parent, comm_id=comm_id, data=data)


def test_a_reply_is_found_by_its_parent_and_echoes_the_id() -> None:
    no_id = RpcRequest({"msg_id": "R"})
    with_id = RpcRequest({"msg_id": "R"}, rpc_id=3)
    plain = reply_msg("R", {"jsonrpc": "2.0", "result": 1})
    echoed = reply_msg("R", {"jsonrpc": "2.0", "result": 1, "id": 3})
    assert is_reply(plain, no_id)
    assert not is_reply(echoed, no_id)
    assert is_reply(echoed, with_id)
    assert not is_reply(plain, with_id)
    assert is_response_to(plain, with_id)
    assert not id_echoed(plain["content"]["data"], with_id)
    assert not is_reply(reply_msg("other", {"result": 1}), no_id)
    assert not is_reply(plain, no_id, comm_id="elsewhere")


def test_events_and_frontend_requests_are_told_apart() -> None:
    event = reply_msg("", {"jsonrpc": "2.0", "method": "update"})
    request = reply_msg("", {"jsonrpc": "2.0", "method": "ask", "id": "q1"})
    assert is_event(event)
    assert not is_frontend_request(event)
    assert is_frontend_request(request)
    assert not is_event(request)
    assert not is_response_to(request, RpcRequest({"msg_id": ""}))


def test_answers_to_a_frontend_request() -> None:
    assert response_data("q1", 5) == {"jsonrpc": "2.0", "id": "q1", "result": 5}
    error = {"code": -32603, "message": "no"}
    assert response_data("q1", error=error) == {"jsonrpc": "2.0", "id": "q1", "error": error}


class _Channel:
    def __init__(self, msgs: list[Msg]) -> None:
        self.msgs = msgs

    def get_msg(self, timeout: float) -> Msg:
        if not self.msgs:
            raise Empty
        return self.msgs.pop(0)


class _FakeClient:
    def __init__(self, msgs: list[Msg]) -> None:
        self.iopub_channel = _Channel(msgs)


def test_a_channel_reader_holds_its_client_weakly() -> None:
    first = stream("x", "A")
    client = _FakeClient([first])
    read = channel_reader(client)  # type: ignore[arg-type]
    assert read("iopub", 0.0) is first
    assert read("iopub", 0.0) is None
    alive = weakref.ref(client)
    del client
    gc.collect()
    assert alive() is None, "the reader kept its client alive"
    with pytest.raises(MessageTimeout, match="gone"):
        read("iopub", 0.0)
