"""The comm router's rules, driven through a recording sink (no sockets, no processes).

Each test feeds the router what the io thread would (frontend comm messages, items from
the main thread, worker messages and exits) and checks what it decided: funnel items in
order, messages to workers, kernel requests for the main thread.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from mpkernel.comms import jsonrpc
from mpkernel.comms.registry import CommEntry
from mpkernel.comms.router import HEALTH_TARGET, CommRouter
from mpkernel.config.model import WorkerConfig, default_config
from mpkernel.funnel.items import (
    FunnelItem,
    KernelAnswerItem,
    OpenBackendComm,
    Publish,
    PublishRaw,
    SnapshotReady,
)
from mpkernel.kernel.work import KernelWork
from mpkernel.snapshots.dispatch import SnapshotDispatcher
from mpkernel.supervision import ipc
from mpkernel.supervision.errors import WorkerUnavailable
from mpkernel.supervision.policy import ExitKind, WorkerExit
from mpkernel.wire import Header, Message, json_bytes

ECHO = "mpkernel.echo"


@dataclass
class FakeWorker:
    key: str
    wid: str
    config: WorkerConfig


@dataclass
class RecordingSink:
    emitted: list[FunnelItem] = field(default_factory=list)
    sent: list[tuple[str, ipc.ToWorker]] = field(default_factory=list)
    kernel_work: list[KernelWork] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    dead: set[str] = field(default_factory=set)
    unavailable: str | None = None
    snapshot_requests: int = 0

    def emit(self, item: FunnelItem) -> None:
        self.emitted.append(item)

    def send(self, worker_key: str, msg: ipc.ToWorker) -> None:
        self.sent.append((worker_key, msg))

    def acquire(self, config: WorkerConfig, comm_id: str, forked: object = None) -> str:
        if self.unavailable is not None:
            raise WorkerUnavailable(self.unavailable)
        return config.name

    def live(self, worker_key: str) -> bool:
        return worker_key not in self.dead

    def stop(self, worker_key: str, reason: str) -> None:
        self.stopped.append(worker_key)

    def kernel_request(self, work: KernelWork) -> None:
        self.kernel_work.append(work)

    def request_snapshot(self) -> None:
        self.snapshot_requests += 1

    # -- views -------------------------------------------------------------------------------
    def published(self) -> list[tuple[str, Any, str | None]]:
        """(msg_type, content or data, parent msg_id) of every IOPub item, in order."""
        out: list[tuple[str, Any, str | None]] = []
        for item in self.emitted:
            if isinstance(item, Publish):
                content = item.content
                body: Any = content.get("execution_state", content.get("data", content))
                out.append((item.msg_type, body, item.parent.msg_id if item.parent else None))
            elif isinstance(item, PublishRaw):
                content = json.loads(item.content_json)
                body = content.get("data")
                out.append((item.msg_type, body, item.parent.msg_id if item.parent else None))
        return out

    def to_worker(self, kind: type) -> list[Any]:
        return [m for _, m in self.sent if isinstance(m, kind)]


class Frontend:
    """Builds the shell messages a frontend sends."""

    def __init__(self) -> None:
        self.n = 0

    def msg(self, msg_type: str, content: dict[str, Any]) -> Message[dict[str, Any]]:
        self.n += 1
        header = Header(f"req-{self.n}", msg_type, "sess", "user", "2026-12-03T00:00:00Z")
        return Message(header, None, {}, content, (), (b"ident",))


def failed(reason: str) -> WorkerExit:
    return WorkerExit(ExitKind.FAILED, reason)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def router(sink: RecordingSink) -> CommRouter:
    return CommRouter(default_config(), sink, SnapshotDispatcher(), dict, lambda: True)


@pytest.fixture
def fe() -> Frontend:
    return Frontend()


def echo_worker(router: CommRouter) -> FakeWorker:
    cfg = router.config.worker_for_target(ECHO)
    assert cfg is not None
    return FakeWorker(cfg.name, f"{cfg.name}-1", cfg)


def open_echo(router: CommRouter, sink: RecordingSink, fe: Frontend, comm_id: str = "c1") -> str:
    """Open an echo comm and let the worker acknowledge it; returns the worker key."""
    msg = fe.msg("comm_open", {"comm_id": comm_id, "target_name": ECHO, "data": {}})
    assert router.route_shell(msg, 0.0)
    worker = echo_worker(router)
    router.on_worker_message(worker, ipc.Done(msg.msg_id), 0.0)
    sink.emitted.clear()
    sink.sent.clear()
    return worker.key


def comm_msg(fe: Frontend, comm_id: str, data: Any) -> Message[dict[str, Any]]:
    return fe.msg("comm_msg", {"comm_id": comm_id, "data": data})


# -- I3: one busy first, one idle last, after every worker's Done ---------------------------
@pytest.mark.invariant("I3")
def test_i3_idle_of_a_comm_request_waits_for_the_workers_done(
    router: CommRouter, sink: RecordingSink, fe: Frontend
) -> None:
    msg = fe.msg("comm_open", {"comm_id": "c1", "target_name": ECHO, "data": {"a": 1}})
    assert router.route_shell(msg, 0.0)
    assert sink.published() == [("status", "busy", msg.msg_id)]
    (open_comm,) = sink.to_worker(ipc.OpenComm)
    assert open_comm.request_id == msg.msg_id
    worker = echo_worker(router)
    router.on_worker_message(
        worker, ipc.CommSend("c1", b'{"hello":1}', json_bytes(msg.header.as_dict())), 0.0
    )
    router.on_worker_message(worker, ipc.Done(msg.msg_id), 0.0)
    assert sink.published() == [
        ("status", "busy", msg.msg_id),
        ("comm_msg", {"hello": 1}, msg.msg_id),
        ("status", "idle", msg.msg_id),
    ]


@pytest.mark.invariant("I3")
def test_i3_main_thread_idle_waits_for_a_backend_open(
    router: CommRouter, sink: RecordingSink
) -> None:
    """An execute request that opens a worker comm: its idle (queued by the main thread)
    is held until the worker has handled the open."""
    parent = Header("exec-1", "execute_request", "sess", "user", "")
    router.comm_item(OpenBackendComm("c9", ECHO, b"{}", parent), 0.0)
    assert router.idle_may_go(parent) is False
    router.on_worker_message(echo_worker(router), ipc.Done("exec-1"), 0.0)
    assert sink.published()[-1] == ("status", "idle", "exec-1")
    assert router.idle_may_go(parent) is True


@pytest.mark.invariant("I3")
def test_i3_a_done_for_another_request_settles_nothing(
    router: CommRouter, sink: RecordingSink, fe: Frontend
) -> None:
    key = open_echo(router, sink, fe)
    msg = comm_msg(fe, "c1", {"method": "echo", "params": {}})
    router.route_shell(msg, 0.0)
    router.on_worker_message(echo_worker(router), ipc.Done("someone-else"), 0.0)
    assert ("status", "idle", msg.msg_id) not in sink.published()
    assert key == "echo"


# -- I4: a string method makes a request; the header travels and comes back -----------------
@pytest.mark.invariant("I4")
@pytest.mark.parametrize("with_id", [False, True], ids=["no-id", "with-id"])
def test_i4_a_string_method_makes_a_request(
    router: CommRouter, sink: RecordingSink, fe: Frontend, with_id: bool
) -> None:
    open_echo(router, sink, fe)
    data: dict[str, Any] = {"jsonrpc": "2.0", "method": "echo", "params": {"a": 2}}
    if with_id:
        data["id"] = 7
    msg = comm_msg(fe, "c1", data)
    router.route_shell(msg, 0.0)
    (request,) = sink.to_worker(ipc.RpcRequest)
    assert json.loads(request.data_json) == data
    assert Header.from_dict(json.loads(request.parent_json)) == msg.header
    assert not sink.to_worker(ipc.CommData)
    # The reply comes back with the header it carried: no table is consulted.
    reply = jsonrpc.result_reply("7" if with_id else None, {"a": 2})
    router.on_worker_message(
        echo_worker(router), ipc.RpcReply("c1", "", reply, request.parent_json), 0.0
    )
    router.on_worker_message(echo_worker(router), ipc.Done(msg.msg_id), 0.0)
    published = sink.published()
    assert published[1] == ("comm_msg", json.loads(reply), msg.msg_id)
    assert published[-1] == ("status", "idle", msg.msg_id)


@pytest.mark.invariant("I4")
@pytest.mark.parametrize(
    "data",
    [{"x": 1}, {"id": 1, "result": 5}, [1, 2], "text", None],
    ids=["object", "answer-nobody-asked-for", "array", "string", "null"],
)
def test_i4_data_without_a_string_method_is_plain_data(
    router: CommRouter, sink: RecordingSink, fe: Frontend, data: Any
) -> None:
    open_echo(router, sink, fe)
    router.route_shell(comm_msg(fe, "c1", data), 0.0)
    assert not sink.to_worker(ipc.RpcRequest)
    if isinstance(data, dict) and "result" in data:
        assert not sink.sent  # an answer to a request nobody sent is dropped
        return
    (plain,) = sink.to_worker(ipc.CommData)
    assert json.loads(plain.data_json) == data


@pytest.mark.invariant("I4")
@pytest.mark.parametrize("with_id", [False, True], ids=["no-id", "with-id"])
def test_i4_a_method_that_is_not_a_string_is_an_invalid_request(
    router: CommRouter, sink: RecordingSink, fe: Frontend, with_id: bool
) -> None:
    open_echo(router, sink, fe)
    data: dict[str, Any] = {"jsonrpc": "2.0", "method": None}
    if with_id:
        data["id"] = "m"
    msg = comm_msg(fe, "c1", data)
    router.route_shell(msg, 0.0)
    assert not sink.sent
    (error,) = [body for t, body, p in sink.published() if t == "comm_msg"]
    assert error["error"]["code"] == jsonrpc.INVALID_REQUEST
    assert error.get("id") == ("m" if with_id else None)
    assert ("id" in error) is with_id
    assert sink.published()[-1] == ("status", "idle", msg.msg_id)


@pytest.mark.invariant("I4")
def test_i4_an_answer_goes_back_to_the_asking_worker_once(
    router: CommRouter, sink: RecordingSink, fe: Frontend
) -> None:
    open_echo(router, sink, fe)
    worker = echo_worker(router)
    ask = {"jsonrpc": "2.0", "id": "q1", "method": "show", "params": {}}
    router.on_worker_message(worker, ipc.FrontendRequest("c1", '"q1"', json_bytes(ask)), 0.0)
    assert sink.published() == [("comm_msg", ask, None)]
    answer = {"jsonrpc": "2.0", "id": "q1", "result": 3}
    router.route_shell(comm_msg(fe, "c1", answer), 0.0)
    router.route_shell(comm_msg(fe, "c1", answer), 0.0)
    (forwarded,) = sink.to_worker(ipc.FrontendAnswer)
    assert (forwarded.rpc_id, json.loads(forwarded.data_json)) == ('"q1"', answer)


@pytest.mark.invariant("I4")
@pytest.mark.parametrize("with_id", [False, True], ids=["no-id", "with-id"])
def test_i4_health_answers_both_shapes(
    router: CommRouter, sink: RecordingSink, fe: Frontend, with_id: bool
) -> None:
    router.route_shell(fe.msg("comm_open", {"comm_id": "h", "target_name": HEALTH_TARGET}), 0.0)
    data: dict[str, Any] = {"jsonrpc": "2.0", "method": "status"}
    if with_id:
        data["id"] = "s"
    msg = comm_msg(fe, "h", data)
    router.route_shell(msg, 0.0)
    reply = [body for t, body, p in sink.published() if t == "comm_msg" and p == msg.msg_id]
    assert len(reply) == 1
    assert ("id" in reply[0]) is with_id
    assert reply[0]["result"]["comms"] == {
        "h": {"target_name": HEALTH_TARGET, "host": "health", "worker": None}
    }


# -- I5: comm_open and comm_close come from the kernel; nothing after a close ----------------
@pytest.mark.invariant("I5")
def test_i5_backend_comm_open_is_published_before_the_worker_is_asked(
    router: CommRouter, sink: RecordingSink
) -> None:
    router.comm_item(OpenBackendComm("c2", ECHO, b'{"title":"t"}', None, b"obj"), 0.0)
    assert sink.published() == [("comm_open", {"title": "t"}, None)]
    raw = sink.emitted[0]
    assert isinstance(raw, PublishRaw)
    assert json.loads(raw.content_json)["target_name"] == ECHO
    (open_comm,) = sink.to_worker(ipc.OpenComm)
    assert (open_comm.comm_id, open_comm.payload) == ("c2", b"obj")


@pytest.mark.invariant("I5")
def test_i5_nothing_is_published_on_a_comm_after_its_close(
    router: CommRouter, sink: RecordingSink, fe: Frontend
) -> None:
    open_echo(router, sink, fe)
    rpc = comm_msg(fe, "c1", {"method": "sleep", "params": {"seconds": 5}})
    router.route_shell(rpc, 0.0)
    close = fe.msg("comm_close", {"comm_id": "c1", "data": {}})
    router.route_shell(close, 0.0)
    assert sink.to_worker(ipc.CloseComm)[0].comm_id == "c1"
    worker = echo_worker(router)
    parent = json_bytes(rpc.header.as_dict())
    router.on_worker_message(worker, ipc.CommSend("c1", b"{}", parent), 0.0)
    router.on_worker_message(worker, ipc.RpcReply("c1", "", b"{}", parent), 0.0)
    assert not [t for t, _, _ in sink.published() if t == "comm_msg"]
    # And a crash later has no RPC of this comm left to fail.
    sink.emitted.clear()
    router.on_worker_exit(worker, failed("killed by SIGKILL"), restarting=False)
    assert not [t for t, _, _ in sink.published() if t == "comm_msg"]


@pytest.mark.invariant("I5")
def test_i5_unavailable_worker_closes_the_comm_inside_the_bracket(
    router: CommRouter, sink: RecordingSink, fe: Frontend
) -> None:
    sink.unavailable = "crashed 6 times"
    msg = fe.msg("comm_open", {"comm_id": "c3", "target_name": ECHO, "data": {}})
    router.route_shell(msg, 0.0)
    assert sink.published() == [
        ("status", "busy", msg.msg_id),
        ("comm_close", {"reason": "worker_unavailable", "message": "crashed 6 times"}, msg.msg_id),
        ("status", "idle", msg.msg_id),
    ]
    assert "c3" not in router.registry


# -- I6: errors for pending RPCs, then comm_close, then the idles owed ------------------------
@pytest.mark.invariant("I6")
def test_i6_crash_fails_pending_rpcs_then_closes_then_idles(
    router: CommRouter, sink: RecordingSink, fe: Frontend
) -> None:
    open_echo(router, sink, fe)
    no_id = comm_msg(fe, "c1", {"method": "sleep", "params": {"seconds": 9}})
    with_id = comm_msg(fe, "c1", {"id": 4, "method": "sleep", "params": {"seconds": 9}})
    router.route_shell(no_id, 0.0)
    router.route_shell(with_id, 0.0)
    sink.emitted.clear()
    router.on_worker_exit(echo_worker(router), failed("killed by SIGKILL"), restarting=False)
    published = sink.published()
    assert [(t, p) for t, _, p in published] == [
        ("comm_msg", no_id.msg_id),
        ("comm_msg", with_id.msg_id),
        ("comm_close", None),
        ("status", no_id.msg_id),
        ("status", with_id.msg_id),
    ]
    first, second = published[0][1], published[1][1]
    assert "id" not in first
    assert second["id"] == 4
    for error in (first, second):
        assert error["error"]["code"] == jsonrpc.INTERNAL_ERROR
        assert "killed by SIGKILL" in error["error"]["message"]
    assert published[2][1]["reason"] == "worker_crashed"
    assert "c1" not in router.registry


@pytest.mark.invariant("I6")
def test_i6_persistent_comm_is_kept_and_reopened_on_restart(
    router: CommRouter, sink: RecordingSink, fe: Frontend
) -> None:
    open_echo(router, sink, fe)
    worker = echo_worker(router)
    router.on_worker_ready(worker, ipc.Ready(1, persistent=True))
    router.on_worker_exit(worker, failed("exited with code 3"), restarting=True)
    assert "c1" in router.registry
    assert not [t for t, _, _ in sink.published() if t == "comm_close"]
    router.on_worker_restarted(worker.key, worker)
    (reopen,) = sink.to_worker(ipc.OpenComm)
    assert (reopen.comm_id, reopen.restored) == ("c1", True)


@pytest.mark.invariant("I6")
def test_i6_a_request_to_a_restarting_worker_is_answered_with_an_error(
    router: CommRouter, sink: RecordingSink, fe: Frontend
) -> None:
    key = open_echo(router, sink, fe)
    sink.dead.add(key)
    msg = comm_msg(fe, "c1", {"method": "echo"})
    router.route_shell(msg, 0.0)
    published = sink.published()
    assert published[0] == ("status", "busy", msg.msg_id)
    assert published[1][0] == "comm_msg"
    assert "id" not in published[1][1]
    assert published[1][1]["error"]["code"] == jsonrpc.INTERNAL_ERROR
    assert published[2] == ("status", "idle", msg.msg_id)


def test_rpc_past_its_timeout_is_overdue(sink: RecordingSink, fe: Frontend) -> None:
    config = default_config()
    echo = config.worker_for_target(ECHO)
    assert echo is not None
    config = dataclasses.replace(config, workers=(dataclasses.replace(echo, rpc_timeout_s=2.0),))
    router = CommRouter(config, sink, SnapshotDispatcher(), dict, lambda: True)
    open_echo(router, sink, fe)
    router.route_shell(comm_msg(fe, "c1", {"method": "sleep", "params": {"seconds": 9}}), 10.0)
    assert router.overdue(11.9) == []
    assert [key for key, _ in router.overdue(12.1)] == ["echo"]


# -- frontend departure and kernel requests ------------------------------------------------------
def test_frontend_departure_fails_and_cancels_what_waits_on_it(
    router: CommRouter, sink: RecordingSink, fe: Frontend
) -> None:
    open_echo(router, sink, fe)
    worker = echo_worker(router)
    router.route_shell(comm_msg(fe, "c1", {"method": "sleep", "params": {"seconds": 9}}), 0.0)
    router.on_worker_message(worker, ipc.FrontendRequest("c1", '"q"', b"{}"), 0.0)
    sink.sent.clear()
    router.frontend_gone("frontend_disconnected")
    assert sink.to_worker(ipc.FailFrontendRequests) == [
        ipc.FailFrontendRequests("frontend_disconnected")
    ]
    assert sink.to_worker(ipc.CancelRequests) == [ipc.CancelRequests("frontend_disconnected")]
    router.close_for_disconnect()
    assert sink.to_worker(ipc.CloseComm)[0].reason == "frontend_disconnected"
    assert "c1" not in router.registry


def test_kernel_request_goes_to_the_main_thread_with_its_deadline(
    router: CommRouter, sink: RecordingSink, fe: Frontend
) -> None:
    open_echo(router, sink, fe)
    worker = echo_worker(router)
    request = ipc.KernelRequest("k1", "delete", b'{"names":["x"]}', b"", 5.0)
    router.on_worker_message(worker, request, 100.0)
    (work,) = sink.kernel_work
    assert (work.worker_key, work.call_id, work.method, work.params, work.deadline) == (
        "echo",
        "k1",
        "delete",
        {"names": ["x"]},
        105.0,
    )
    router.comm_item(KernelAnswerItem("echo", "k1", b'["x"]'), 0.0)
    assert sink.to_worker(ipc.KernelAnswer) == [ipc.KernelAnswer("k1", b'["x"]', None)]


@pytest.mark.parametrize("params", [b"{not json", b"[1]"], ids=["not-json", "not-an-object"])
def test_kernel_request_with_bad_params_is_answered_at_once(
    router: CommRouter, sink: RecordingSink, fe: Frontend, params: bytes
) -> None:
    open_echo(router, sink, fe)
    router.on_worker_message(
        echo_worker(router), ipc.KernelRequest("k2", "delete", params, b"", 5.0), 0.0
    )
    assert not sink.kernel_work
    (answer,) = sink.to_worker(ipc.KernelAnswer)
    assert answer.call_id == "k2"
    assert answer.error


@pytest.mark.invariant("I6")
def test_i6_requests_ended_by_the_worker_are_not_failed_by_a_later_crash(
    router: CommRouter, sink: RecordingSink, fe: Frontend
) -> None:
    """A request whose Done came without a reply (cancelled: the worker closed its comm)
    and the requests of a comm the worker closed are over: a crash later fails nothing."""
    open_echo(router, sink, fe)
    open_echo(router, sink, fe, "c2")
    worker = echo_worker(router)
    cancelled = comm_msg(fe, "c1", {"method": "sleep", "params": {"seconds": 9}})
    on_closed = comm_msg(fe, "c2", {"method": "sleep", "params": {"seconds": 9}})
    router.route_shell(cancelled, 0.0)
    router.route_shell(on_closed, 0.0)
    router.on_worker_message(worker, ipc.Done(cancelled.msg_id), 0.0)
    router.on_worker_message(worker, ipc.CloseFromWorker("c2", b"{}"), 0.0)
    sink.emitted.clear()
    router.on_worker_exit(worker, failed("killed by SIGKILL"), restarting=False)
    assert not [t for t, _, _ in sink.published() if t == "comm_msg"]


def test_a_ready_consumer_with_no_snapshot_to_take_asks_for_one(
    router: CommRouter, sink: RecordingSink
) -> None:
    worker = echo_worker(router)
    router.on_worker_ready(worker, ipc.Ready(1))
    assert sink.snapshot_requests == 0
    router.on_worker_ready(worker, ipc.Ready(1, snapshots=True))
    assert sink.snapshot_requests == 1


class FakeDispatcher:
    """Hands out the snapshot envelopes a test prepared (the real one needs real segments)."""

    def __init__(self, sends: list[tuple[str, ipc.Snapshot]]) -> None:
        self.sends = sends

    def offer(self, item: SnapshotReady) -> list[tuple[str, ipc.Snapshot]]:
        return self.sends

    def worker_ready(self, key: str, consumes: bool) -> list[tuple[str, ipc.Snapshot]]:
        return self.sends

    def taken(self, key: str, version: int) -> list[tuple[str, ipc.Snapshot]]:
        return []

    def worker_gone(self, key: str) -> None:
        pass


def snapshot_router(sink: RecordingSink, parent: Header) -> CommRouter:
    envelope = ipc.Snapshot(1, b"manifest", json_bytes(parent.as_dict()), parent.msg_id)
    dispatcher = FakeDispatcher([("variables", envelope)])
    return CommRouter(default_config(), sink, dispatcher, dict, lambda: True)  # type: ignore[arg-type]


EXEC = Header("exec-1", "execute_request", "sess", "user", "")


@pytest.mark.invariant("I3")
def test_i3_an_executions_idle_waits_for_its_snapshot_consumers(sink: RecordingSink) -> None:
    router = snapshot_router(sink, EXEC)
    router.comm_item(SnapshotReady(1, b"manifest", EXEC), 10.0)
    (sent,) = sink.to_worker(ipc.Snapshot)
    assert (sent.request_id, Header.from_dict(json.loads(sent.parent_json))) == ("exec-1", EXEC)
    assert router.idle_may_go(EXEC) is False
    worker = FakeWorker("variables", "variables-1", echo_worker(router).config)
    update = b'{"jsonrpc":"2.0","method":"update","params":{}}'
    router.registry.add(CommEntry("v", "positron.variables", "worker", "variables"))
    router.on_worker_message(worker, ipc.CommSend("v", update, sent.parent_json), 10.05)
    router.on_worker_message(worker, ipc.Done("exec-1"), 10.05)
    assert sink.published() == [
        ("comm_msg", json.loads(update), "exec-1"),
        ("status", "idle", "exec-1"),
    ]


@pytest.mark.invariant("I3")
def test_i3_a_busy_consumer_holds_the_idle_no_longer_than_the_budget(
    sink: RecordingSink,
) -> None:
    router = snapshot_router(sink, EXEC)
    router.comm_item(SnapshotReady(1, b"manifest", EXEC), 10.0)
    assert router.idle_may_go(EXEC) is False
    budget_s = default_config().kernel.post_execute_budget_ms / 1000
    wait_ms = router.timeout_ms(10.0)
    assert wait_ms is not None
    assert abs(wait_ms - budget_s * 1000) <= 1
    router.on_timer(10.0 + budget_s / 2)
    assert sink.published() == []
    router.on_timer(10.0 + budget_s)
    assert sink.published() == [("status", "idle", "exec-1")]
    assert router.timeout_ms(20.0) is None
    # The consumer's Done, when it finally comes, publishes no second idle.
    worker = FakeWorker("variables", "variables-1", echo_worker(router).config)
    router.on_worker_message(worker, ipc.Done("exec-1"), 30.0)
    assert sink.published() == [("status", "idle", "exec-1")]


def test_a_new_consumer_gets_old_news_outside_any_bracket(sink: RecordingSink) -> None:
    router = snapshot_router(sink, EXEC)
    worker = FakeWorker("variables", "variables-1", echo_worker(router).config)
    router.on_worker_ready(worker, ipc.Ready(1, snapshots=True))
    (sent,) = sink.to_worker(ipc.Snapshot)
    assert (sent.request_id, sent.parent_json) == (None, ipc.NO_PARENT)
    assert router.idle_may_go(EXEC) is True
