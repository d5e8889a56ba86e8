"""The worker runtime without a kernel: a `WorkerRuntime` on a thread of its own, driven
through real zmq sockets over `ipc://`, exactly as the main process drives a worker
(`mpkernel.supervision.runtime.serve`, the function a worker process runs); one test runs
the real echo worker in a spawned process.

What is checked: JSON-RPC requests with and without `id` and every error code (I4),
reply then `Done` after everything a request sent, background requests answered after a
later cheap one (I3), parenting per thread (I4), cancellation by a comm close (I5), by
`CancelRequests` and by `StopWorker`, kernel requests answered, failed and timed out from
the loop thread and from the pool, frontend-bound requests from the pool, snapshots and
the object a comm is opened about.

Snapshots are built by the real builder and dispatcher and applied by the real store;
the object a comm is opened about goes through the real codec.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import zmq
from mpkernel_workers.api import (
    CommHandler,
    KernelRequestError,
    RpcError,
    background,
    current_request,
)

from mpkernel.snapshots.builder import SnapshotBuilder
from mpkernel.snapshots.codec import encode_object
from mpkernel.snapshots.dispatch import SnapshotDispatcher
from mpkernel.snapshots.store import SnapshotStore, WorkerSnapshot
from mpkernel.supervision import ipc
from mpkernel.supervision.runtime import WorkerSpec, serve, worker_entry
from mpkernel.wire.codec import json_bytes

#: how long any single wait may take before the test fails (a hang guard, not a timing)
DEADLINE = 10.0
ABSENT = object()


# -- test handler -----------------------------------------------------------------------------
class Probe(CommHandler):
    """A handler whose methods drive each path of the runtime. `events` is per test."""

    snapshots = True
    events: ClassVar[dict[str, threading.Event]]
    closes: ClassVar[list[tuple[str, str]]]

    def on_open(self, data: Any) -> None:
        if data.get("fail"):
            raise ValueError("refused by on_open")
        self.opened_with = data
        self.subject_at_open = repr(self.comm.subject)
        self.seen: list[Any] = []

    def on_message(self, data: Any, buffers: Any) -> None:
        self.comm.send({"echo": data}, buffers)

    def on_close(self, reason: str) -> None:
        self.closes.append((self.comm.comm_id, reason))

    def on_snapshot(self, snapshot: WorkerSnapshot) -> None:
        if self.opened_with.get("bad_snapshot"):
            raise RuntimeError("this comm's on_snapshot fails")
        self.seen.append({"version": snapshot.version, "values": dict(snapshot.items())})

    def rpc_echo(self, **params: Any) -> Any:
        return params

    def rpc_pair(self, a: Any, b: Any) -> list[Any]:
        return [a, b]

    def rpc_fail(self) -> None:
        raise RuntimeError("boom")

    def rpc_refuse(self) -> None:
        raise RpcError(-32000, "refused")

    def rpc_not_json(self) -> Any:
        return object()

    def rpc_current(self) -> dict[str, Any]:
        r = current_request()
        return {"comm_id": r.comm_id, "method": r.method, "rpc_id": r.rpc_id, "msg_id": r.msg_id}

    def rpc_send(self, count: int) -> int:
        for i in range(count):
            self.comm.send({"i": i})
        return count

    def rpc_subject(self) -> str:
        return self.subject_at_open

    def rpc_seen(self) -> list[Any]:
        return self.seen

    def rpc_open_gate(self, name: str) -> None:
        self.events[name].set()

    def rpc_close_self(self) -> str:
        self.comm.close({"reason": "handler_done"})
        return "closed"

    @background
    def rpc_slow(self, tag: str, gate: str, count: int = 0) -> str:
        """Sends `count` messages, waits for `gate` (opened by another request), returns."""
        for i in range(count):
            self.comm.send({"tag": tag, "i": i})
        if not self.events[gate].wait(DEADLINE):
            raise RuntimeError(f"gate {gate} never opened")
        self.comm.send({"tag": tag, "i": "last"})
        return tag

    @background
    def rpc_until_cancelled(self) -> str:
        request = current_request()
        self.events["started"].set()
        if not request.wait_cancelled(DEADLINE):
            raise RuntimeError("never cancelled")
        # Everything from here on must be dropped (I5).
        self.comm.send({"after": "cancel"})
        self.comm.send_event("after_cancel")
        self.events["sent_after_cancel"].set()
        return "late"

    def rpc_kernel(self, method: str, params: dict[str, Any], timeout_s: float = DEADLINE) -> Any:
        return self.comm.request_kernel(method, params, timeout_s)

    @background
    def rpc_kernel_bg(
        self, method: str, params: dict[str, Any], timeout_s: float = DEADLINE
    ) -> Any:
        return self.comm.request_kernel(method, params, timeout_s)

    @background
    def rpc_kernel_bg_catch(self, method: str, timeout_s: float) -> Any:
        try:
            return self.comm.request_kernel(method, {}, timeout_s)
        except KernelRequestError as e:
            return {"timed_out": e.timed_out, "message": e.message}

    def rpc_ask(self, method: str) -> Any:
        return self.comm.request_frontend(method, {"q": 1})

    def rpc_task(self) -> str:
        """Starts a task that sends, waits to be cancelled, then sends again (dropped)."""

        def work() -> None:
            request = current_request()
            self.comm.send_event("task_started", {"msg_id": request.msg_id})
            self.events["started"].set()
            if not request.wait_cancelled(DEADLINE):
                raise RuntimeError("never cancelled")
            self.comm.send_event("after_cancel")
            self.events["sent_after_cancel"].set()

        self.comm.start_task(work, "probe")
        return "started"

    def rpc_failing_task(self) -> None:
        def work() -> None:
            raise RuntimeError("a task's bug")

        self.comm.start_task(work, "failing")

    def rpc_typed(self, items: list[str], limit: float = 1.5) -> list[Any]:
        return [items, limit]

    def rpc_shared(self) -> int:
        return id(self.comm.shared(SharedState))

    @background
    def rpc_ask_bg(self, method: str) -> Any:
        return self.comm.request_frontend(method, {"q": 2})


class SharedState:
    """What the comms of one worker share (`Comm.shared`)."""


def probe_class() -> type[Probe]:
    """A fresh subclass: its events and journal belong to one test."""

    class P(Probe):
        events: ClassVar[dict[str, threading.Event]] = {
            name: threading.Event()
            for name in ("g1", "g2", "started", "sent_after_cancel", "never")
        }
        closes: ClassVar[list[tuple[str, str]]] = []

    return P


class Namespace:
    """The main process's half of snapshots: a user namespace, the real builder and the
    real dispatcher (which owns the shared-memory segments until they are superseded)."""

    def __init__(self, **names: Any) -> None:
        self.ns: dict[str, Any] = dict(names)
        self.dispatcher = SnapshotDispatcher()
        self.dispatcher.worker_ready("w", consumes=True)
        self.builder = SnapshotBuilder(self.ns, set(), 1000, self.dispatcher.wanted)

    def snapshot(self) -> ipc.Snapshot:
        ((_, msg),) = self.dispatcher.offer(self.builder.now())
        return msg

    def taken(self, version: int) -> None:
        assert self.dispatcher.taken("w", version) == []

    def close(self) -> None:
        self.dispatcher.close()


# -- harness ----------------------------------------------------------------------------------
def header(msg_id: str) -> bytes:
    return json_bytes(
        {"msg_id": msg_id, "msg_type": "comm_msg", "session": "s", "username": "u", "date": ""}
    )


class Worker:
    """The main process's side of one worker runtime: a PUSH to its in endpoint, a PULL on
    its out endpoint, the write end of its liveness pipe."""

    def __init__(self, handler_cls: type[CommHandler], rundir: Path) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.token = os.urandom(8)
        self.store = SnapshotStore()
        self.spec = WorkerSpec(
            name="probe",
            target="test.probe",
            handler="tests.unit.test_worker_runtime:Probe",
            in_addr=f"ipc://{rundir}/w.in",
            out_addr=f"ipc://{rundir}/w.out",
            token=self.token,
        )
        self.pull = self.ctx.socket(zmq.PULL)
        self.pull.bind(self.spec.out_addr)
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.connect(self.spec.in_addr)
        self.alive_r, self.alive_w = os.pipe()
        self.thread = threading.Thread(
            target=serve,
            args=(self.ctx, self.spec, handler_cls, self.alive_r),
            kwargs={"store_factory": lambda: self.store},
            name="test-worker-loop",
            daemon=True,
        )
        self.thread.start()
        self.ready = self.recv()
        self._ids = iter(range(1, 1_000_000))

    def send(self, msg: ipc.ToWorker) -> None:
        self.push.send_multipart(ipc.encode(msg))

    def recv(self) -> ipc.FromWorker:
        if not self.pull.poll(int(DEADLINE * 1000)):
            raise AssertionError(f"nothing from the worker within {DEADLINE} s")
        token, *frames = self.pull.recv_multipart()
        assert token == self.token
        return ipc.decode_from_worker(frames)

    def until(self, done: Callable[[ipc.FromWorker], bool]) -> list[ipc.FromWorker]:
        """Everything received up to and including the first message for which `done`."""
        got: list[ipc.FromWorker] = []
        while True:
            got.append(self.recv())
            if done(got[-1]):
                return got

    def until_done(self, *request_ids: str) -> list[ipc.FromWorker]:
        waiting = set(request_ids)

        def done(m: ipc.FromWorker) -> bool:
            if isinstance(m, ipc.Done):
                waiting.discard(m.request_id)
            return not waiting

        return self.until(done)

    def msg_id(self) -> str:
        return f"m{next(self._ids)}"

    def open(self, data: dict[str, Any] | None = None, payload: bytes = b"") -> str:
        comm_id = f"c{next(self._ids)}"
        mid = self.msg_id()
        self.send(
            ipc.OpenComm(
                comm_id, "test.probe", json_bytes(data or {}), header(mid), mid, False, payload
            )
        )
        got = self.until_done(mid)
        assert not [m for m in got if isinstance(m, ipc.CloseFromWorker)], got
        return comm_id

    def rpc(
        self, comm_id: str, method: str, params: Any = ABSENT, rpc_id: Any = ABSENT
    ) -> tuple[str, bytes]:
        """Send a request (no `id` unless given); returns (msg_id, parent_json)."""
        data: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not ABSENT:
            data["params"] = params
        if rpc_id is not ABSENT:
            data["id"] = rpc_id
        return self.raw_rpc(comm_id, json_bytes(data))

    def raw_rpc(self, comm_id: str, data_json: bytes) -> tuple[str, bytes]:
        mid = self.msg_id()
        parent = header(mid)
        self.send(ipc.RpcRequest(comm_id, data_json, parent, mid))
        return mid, parent

    def call(self, comm_id: str, method: str, params: Any = ABSENT) -> Any:
        """One request, its reply and Done; returns the decoded reply data."""
        mid, parent = self.rpc(comm_id, method, params)
        got = self.until_done(mid)
        replies = [m for m in got if isinstance(m, ipc.RpcReply) and m.parent_json == parent]
        assert len(replies) == 1, got
        return json.loads(replies[0].data_json)

    def close(self) -> None:
        if self.thread.is_alive():
            self.send(ipc.StopWorker("test_end"))
            self.thread.join(DEADLINE)
        os.close(self.alive_w)
        os.close(self.alive_r)
        self.ctx.destroy(linger=0)
        assert not self.thread.is_alive(), "the worker loop did not stop"


@pytest.fixture
def rundir() -> Iterator[Path]:
    # ipc:// paths are limited to ~100 bytes: pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="mpk-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def handler_cls() -> type[Probe]:
    return probe_class()


@pytest.fixture
def worker(handler_cls: type[Probe], rundir: Path) -> Iterator[Worker]:
    w = Worker(handler_cls, rundir)
    try:
        yield w
    finally:
        w.close()


def replies(msgs: list[ipc.FromWorker]) -> list[ipc.RpcReply]:
    return [m for m in msgs if isinstance(m, ipc.RpcReply)]


def kinds(msgs: list[ipc.FromWorker]) -> list[str]:
    return [type(m).__name__ for m in msgs]


# -- I4: requests as Positron sends them ------------------------------------------------------
def test_ready_reports_the_handler_class(worker: Worker) -> None:
    assert isinstance(worker.ready, ipc.Ready)
    assert worker.ready.snapshots is True
    assert worker.ready.persistent is False


def test_i4_request_without_id_gets_a_reply_without_id(worker: Worker) -> None:
    """Positron's shape: no `id`; the reply has none either, is parented to the request's
    header, and `Done` follows it."""
    comm = worker.open()
    mid, parent = worker.rpc(comm, "echo", {"x": [1, 2], "s": "é"})
    got = worker.until_done(mid)
    assert kinds(got) == ["RpcReply", "Done"]
    reply = got[0]
    assert isinstance(reply, ipc.RpcReply)
    assert reply.comm_id == comm
    assert reply.rpc_id == ""
    assert reply.parent_json == parent
    assert json.loads(reply.data_json) == {"jsonrpc": "2.0", "result": {"x": [1, 2], "s": "é"}}


@pytest.mark.parametrize("rpc_id", [7, "abc", None, 2.5], ids=repr)
def test_i4_request_id_is_echoed_as_sent(worker: Worker, rpc_id: Any) -> None:
    comm = worker.open()
    mid, parent = worker.rpc(comm, "echo", {"k": 1}, rpc_id=rpc_id)
    (reply,) = replies(worker.until_done(mid))
    assert reply.rpc_id == json.dumps(rpc_id)
    assert reply.parent_json == parent
    assert json.loads(reply.data_json) == {"jsonrpc": "2.0", "id": rpc_id, "result": {"k": 1}}


def test_i4_params_by_position_are_accepted(worker: Worker) -> None:
    comm = worker.open()
    assert worker.call(comm, "pair", [1, "two"])["result"] == [1, "two"]
    assert worker.call(comm, "pair", {"b": 2, "a": 1})["result"] == [1, 2]


def test_i4_current_request_describes_the_request(worker: Worker) -> None:
    comm = worker.open()
    mid, _ = worker.rpc(comm, "current", rpc_id="r-1")
    (reply,) = replies(worker.until_done(mid))
    result = json.loads(reply.data_json)["result"]
    assert result == {"comm_id": comm, "method": "current", "rpc_id": "r-1", "msg_id": mid}


@pytest.mark.parametrize(
    ("data", "code", "has_id"),
    [
        (b"{not json", -32700, False),
        (b"[1, 2]", -32600, False),
        (b'{"jsonrpc": "2.0", "id": 5, "method": null}', -32600, True),
        (b'{"jsonrpc": "2.0", "id": 5, "method": "no_such"}', -32601, True),
        (b'{"jsonrpc": "2.0", "method": "no_such"}', -32601, False),
        (b'{"jsonrpc": "2.0", "method": "pair", "params": {"a": 1}}', -32602, False),
        (
            b'{"jsonrpc": "2.0", "method": "pair", "params": {"a": 1, "b": 2, "c": 3}}',
            -32602,
            False,
        ),
        (b'{"jsonrpc": "2.0", "method": "pair", "params": "text"}', -32602, False),
        (b'{"jsonrpc": "2.0", "id": 5, "method": "fail"}', -32603, True),
        (b'{"jsonrpc": "2.0", "method": "not_json"}', -32603, False),
        (b'{"jsonrpc": "2.0", "method": "refuse"}', -32000, False),
    ],
    ids=lambda v: v.decode()[:60] if isinstance(v, bytes) else str(v),
)
def test_i4_every_failure_is_one_error_reply(
    worker: Worker, data: bytes, code: int, has_id: bool
) -> None:
    """Positron's codes; the reply carries the `id` only if the request had one; the comm
    keeps working afterwards."""
    comm = worker.open()
    mid, parent = worker.raw_rpc(comm, data)
    got = worker.until_done(mid)
    assert kinds(got) == ["RpcReply", "Done"]
    reply = json.loads(got[0].data_json)  # type: ignore[union-attr]
    assert reply["error"]["code"] == code, reply
    assert ("id" in reply) is has_id
    assert got[0].parent_json == parent  # type: ignore[union-attr]
    assert worker.call(comm, "echo", {"still": "open"})["result"] == {"still": "open"}


def test_i4_handler_exception_names_it(worker: Worker) -> None:
    comm = worker.open()
    error = worker.call(comm, "fail")["error"]
    assert error == {"code": -32603, "message": "RuntimeError: boom"}


def test_i4_request_on_a_comm_not_open_here_is_answered(worker: Worker) -> None:
    mid, _ = worker.rpc("nope", "echo", {})
    (reply,) = replies(worker.until_done(mid))
    assert json.loads(reply.data_json)["error"]["code"] == -32600


# -- I3: Done after everything ------------------------------------------------------------------
def test_i3_done_follows_the_reply_and_every_message_sent(worker: Worker) -> None:
    comm = worker.open()
    mid, parent = worker.rpc(comm, "send", {"count": 50})
    got = worker.until_done(mid)
    assert kinds(got) == ["CommSend"] * 50 + ["RpcReply", "Done"]
    sends = [m for m in got if isinstance(m, ipc.CommSend)]
    assert [json.loads(m.data_json)["i"] for m in sends] == list(range(50))
    assert all(m.parent_json == parent for m in sends)


def test_i3_comm_data_is_echoed_then_done(worker: Worker) -> None:
    comm = worker.open()
    mid = worker.msg_id()
    worker.send(ipc.CommData(comm, b'{"plain": 1}', header(mid), mid, (b"\x00\x01",)))
    got = worker.until_done(mid)
    assert kinds(got) == ["CommSend", "Done"]
    send = got[0]
    assert isinstance(send, ipc.CommSend)
    assert json.loads(send.data_json) == {"echo": {"plain": 1}}
    assert send.buffers == (b"\x00\x01",)
    assert send.parent_json == header(mid)


def test_i3_background_request_answered_after_a_later_cheap_one(
    worker: Worker, handler_cls: type[Probe]
) -> None:
    """A background request waits; an echo sent after it is answered first (reply, Done);
    then the background one finishes: its messages, its reply, then its Done. Each
    message is parented to its own request."""
    comm = worker.open()
    slow_mid, slow_parent = worker.rpc(comm, "slow", {"tag": "s", "gate": "g1", "count": 3})
    echo_mid, echo_parent = worker.rpc(comm, "echo", {"quick": True})
    first = worker.until_done(echo_mid)
    assert not [m for m in first if isinstance(m, ipc.Done) and m.request_id == slow_mid]
    (echo_reply,) = [r for r in replies(first) if r.parent_json == echo_parent]
    assert json.loads(echo_reply.data_json)["result"] == {"quick": True}
    assert not [r for r in replies(first) if r.parent_json == slow_parent]

    gate_mid, _ = worker.rpc(comm, "open_gate", {"name": "g1"})
    rest = worker.until_done(slow_mid, gate_mid)
    everything = first + rest
    slow = [
        m
        for m in everything
        if getattr(m, "parent_json", None) == slow_parent
        or (isinstance(m, ipc.Done) and m.request_id == slow_mid)
    ]
    assert kinds(slow) == ["CommSend"] * 4 + ["RpcReply", "Done"]
    assert [json.loads(m.data_json)["i"] for m in slow[:4]] == [0, 1, 2, "last"]  # type: ignore[union-attr]
    assert json.loads(slow[4].data_json)["result"] == "s"  # type: ignore[union-attr]


def test_i1_i4_concurrent_background_requests_keep_their_parents_and_order(
    worker: Worker,
) -> None:
    """Two background requests interleave their sends; each one's messages arrive in the
    order it sent them, parented to its own request, with its reply and Done last."""
    comm = worker.open()
    a_mid, a_parent = worker.rpc(comm, "slow", {"tag": "a", "gate": "g1", "count": 200})
    b_mid, b_parent = worker.rpc(comm, "slow", {"tag": "b", "gate": "g1", "count": 200})
    gate_mid, _ = worker.rpc(comm, "open_gate", {"name": "g1"})
    got = worker.until_done(a_mid, b_mid, gate_mid)
    for tag, mid, parent in (("a", a_mid, a_parent), ("b", b_mid, b_parent)):
        mine = [
            m
            for m in got
            if getattr(m, "parent_json", None) == parent
            or (isinstance(m, ipc.Done) and m.request_id == mid)
        ]
        sends = [json.loads(m.data_json) for m in mine if isinstance(m, ipc.CommSend)]
        assert {s["tag"] for s in sends} == {tag}
        assert [s["i"] for s in sends] == [*range(200), "last"]
        assert kinds(mine)[-2:] == ["RpcReply", "Done"]


# -- cancellation ------------------------------------------------------------------------------
def test_i5_close_cancels_running_requests(worker: Worker, handler_cls: type[Probe]) -> None:
    """A closed comm: its running request's Done comes at once, with no reply; what the
    request sends afterwards is dropped; on_close runs; the worker keeps serving."""
    comm = worker.open()
    other = worker.open()
    mid, _ = worker.rpc(comm, "until_cancelled")
    assert handler_cls.events["started"].wait(DEADLINE)
    close_mid = worker.msg_id()
    worker.send(ipc.CloseComm(comm, "frontend_closed", close_mid))
    got = worker.until_done(mid, close_mid)
    assert not replies(got), got
    assert handler_cls.closes == [(comm, "frontend_closed")]
    # The handler has now sent after its cancellation; anything not dropped would be
    # ahead of this reply on the same socket.
    assert handler_cls.events["sent_after_cancel"].wait(DEADLINE)
    probe_mid, _ = worker.rpc(other, "echo", {"after": 1})
    later = worker.until_done(probe_mid)
    assert kinds(later) == ["RpcReply", "Done"], later
    on_closed = [m for m in got + later if getattr(m, "comm_id", None) == comm]
    assert on_closed == [], on_closed


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("send", {"count": "3"}, "send: param 'count': Expected `int`, got `str`"),
        ("send", {"count": True}, "send: param 'count': Expected `int`, got `bool`"),
        ("slow", {"tag": 1, "gate": "g1"}, "slow: param 'tag': Expected `str`, got `int`"),
        (
            "typed",
            {"items": ["a", 2]},
            "typed: param 'items': Expected `str`, got `int` - at `$[1]`",
        ),
    ],
)
def test_i4_params_are_checked_against_the_annotations(
    worker: Worker, method: str, params: dict[str, Any], message: str
) -> None:
    """A param that does not fit its annotation is answered -32602 naming it, before the
    method runs (a background one too); `Any` and `**params` take anything."""
    comm = worker.open()
    error = worker.call(comm, method, params)["error"]
    assert (error["code"], error["message"]) == (-32602, message)
    assert worker.call(comm, "pair", {"a": {"x": [1]}, "b": None})["result"] == [{"x": [1]}, None]
    assert worker.call(comm, "typed", {"items": ["a"], "limit": 2})["result"] == [["a"], 2]
    assert worker.call(comm, "typed", {"items": []})["result"] == [[], 1.5]


def test_a_task_is_a_request_of_its_comm_cancelled_by_the_close(
    worker: Worker, handler_cls: type[Probe]
) -> None:
    """`Comm.start_task`: the task serves a request of its comm with no msg_id (what it
    sends is parentless and it owes no Done); the comm's close cancels it, and what it sends
    after that is dropped; the worker keeps serving."""
    comm = worker.open()
    other = worker.open()
    mid, _ = worker.rpc(comm, "task")
    got = worker.until_done(mid)
    assert handler_cls.events["started"].wait(DEADLINE)
    if not any(isinstance(m, ipc.CommSend) for m in got):
        got += worker.until(lambda m: isinstance(m, ipc.CommSend))
    (event,) = [m for m in got if isinstance(m, ipc.CommSend)]
    assert event.parent_json == ipc.NO_PARENT
    assert json.loads(event.data_json)["params"] == {"msg_id": None}
    close_mid = worker.msg_id()
    worker.send(ipc.CloseComm(comm, "frontend_closed", close_mid))
    assert kinds(worker.until_done(close_mid)) == ["Done"]
    assert handler_cls.events["sent_after_cancel"].wait(DEADLINE)
    probe_mid, _ = worker.rpc(other, "echo", {"after": 1})
    assert kinds(worker.until_done(probe_mid)) == ["RpcReply", "Done"]


def test_a_failing_task_is_logged_and_the_worker_serves_on(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    comm = worker.open()
    with caplog.at_level("ERROR", logger="mpkernel.worker"):
        worker.call(comm, "failing_task")
        assert worker.call(comm, "echo", {"x": 1})["result"] == {"x": 1}
    assert "a task's bug" in caplog.text


def test_comms_of_a_worker_share_its_state(worker: Worker) -> None:
    a, b = worker.open(), worker.open()
    assert worker.call(a, "shared")["result"] == worker.call(b, "shared")["result"]


def test_cancel_requests_answers_each_with_an_error(
    worker: Worker, handler_cls: type[Probe]
) -> None:
    """CancelRequests (frontend departed): each matching request gets a -32603 error naming
    the reason, then Done; its late result is dropped; requests of other comms go on."""
    kept = worker.open()
    comm = worker.open()
    mid, parent = worker.rpc(comm, "until_cancelled", rpc_id=3)
    assert handler_cls.events["started"].wait(DEADLINE)
    other_mid, _ = worker.rpc(kept, "slow", {"tag": "k", "gate": "g2"})
    worker.send(ipc.CancelRequests("frontend_disconnected", comm))
    got = worker.until_done(mid)
    (reply,) = replies(got)
    assert reply.parent_json == parent
    data = json.loads(reply.data_json)
    assert data["id"] == 3
    assert data["error"]["code"] == -32603
    assert "frontend_disconnected" in data["error"]["message"]
    assert handler_cls.events["sent_after_cancel"].wait(DEADLINE)
    gate_mid, _ = worker.rpc(kept, "open_gate", {"name": "g2"})
    rest = worker.until_done(other_mid, gate_mid)
    results = sorted(json.loads(r.data_json)["result"] or "" for r in replies(rest))
    assert results == ["", "k"]
    assert not [m for m in rest if getattr(m, "comm_id", None) == comm], rest


def test_cancel_requests_without_comm_cancels_all(worker: Worker, handler_cls: type[Probe]) -> None:
    a = worker.open()
    mid, _ = worker.rpc(a, "until_cancelled")
    assert handler_cls.events["started"].wait(DEADLINE)
    worker.send(ipc.CancelRequests("frontend_disconnected"))
    (reply,) = replies(worker.until_done(mid))
    assert json.loads(reply.data_json)["error"]["code"] == -32603


def test_stop_worker_cancels_everything(handler_cls: type[Probe], rundir: Path) -> None:
    """StopWorker: a running request gets its error reply and Done, every comm its
    on_close, the loop ends, the store is closed."""
    w = Worker(handler_cls, rundir)
    try:
        comm = w.open()
        mid, _ = w.rpc(comm, "until_cancelled")
        assert handler_cls.events["started"].wait(DEADLINE)
        namespace = Namespace(x=1)
        try:
            w.send(namespace.snapshot())
            w.until(lambda m: isinstance(m, ipc.SnapshotTaken))
        finally:
            namespace.close()
        assert w.store.current is not None
        w.send(ipc.StopWorker("kernel_shutdown"))
        got = w.until_done(mid)
        (reply,) = replies(got)
        assert "kernel_shutdown" in json.loads(reply.data_json)["error"]["message"]
        w.thread.join(DEADLINE)
        assert not w.thread.is_alive()
        assert handler_cls.closes == [(comm, "kernel_shutdown")]
        assert w.store.current is None  # closed: every mapping released
    finally:
        w.close()


def test_main_process_gone_ends_the_loop(handler_cls: type[Probe], rundir: Path) -> None:
    w = Worker(handler_cls, rundir)
    try:
        os.close(w.alive_w)
        w.alive_w = os.open(os.devnull, os.O_WRONLY)  # so that close() has an fd to close
        w.thread.join(DEADLINE)
        assert not w.thread.is_alive()
    finally:
        w.close()


def test_handler_closing_its_comm_ends_its_requests(worker: Worker) -> None:
    """The handler closes its own comm inside a request: CloseFromWorker, then the
    request's Done; its reply is dropped (I5: nothing after the close)."""
    comm = worker.open()
    mid, _ = worker.rpc(comm, "close_self")
    got = worker.until_done(mid)
    assert kinds(got) == ["CloseFromWorker", "Done"], got
    assert json.loads(got[0].data_json) == {"reason": "handler_done"}  # type: ignore[union-attr]


# -- kernel requests ----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["kernel", "kernel_bg"])
def test_kernel_request_answered(worker: Worker, method: str) -> None:
    """From the loop thread (nested wait) or the pool: KernelRequest carries the calling
    request's parent; the answer's result is the RPC's result."""
    comm = worker.open()
    mid, parent = worker.rpc(comm, method, {"method": "view", "params": {"path": ["df"]}})
    (req,) = worker.until(lambda m: isinstance(m, ipc.KernelRequest))
    assert isinstance(req, ipc.KernelRequest)
    assert req.method == "view"
    assert json.loads(req.data_json) == {"path": ["df"]}
    assert req.parent_json == parent
    assert req.timeout_s == DEADLINE
    worker.send(ipc.KernelAnswer(req.call_id, b'{"comm_id": "new"}'))
    (reply,) = replies(worker.until_done(mid))
    assert json.loads(reply.data_json)["result"] == {"comm_id": "new"}


@pytest.mark.parametrize("method", ["kernel", "kernel_bg"])
def test_kernel_request_error_answer(worker: Worker, method: str) -> None:
    comm = worker.open()
    mid, _ = worker.rpc(comm, method, {"method": "delete", "params": {"names": ["x"]}})
    (req,) = worker.until(lambda m: isinstance(m, ipc.KernelRequest))
    worker.send(ipc.KernelAnswer(req.call_id, b"null", "name 'x' is not defined"))  # type: ignore[union-attr]
    (reply,) = replies(worker.until_done(mid))
    error = json.loads(reply.data_json)["error"]
    assert error == {"code": -32603, "message": "name 'x' is not defined"}


@pytest.mark.parametrize("method", ["kernel", "kernel_bg"])
def test_kernel_request_times_out(worker: Worker, method: str) -> None:
    """No answer within timeout_s: KernelRequestError; a late answer is dropped and the
    worker keeps serving."""
    comm = worker.open()
    mid, _ = worker.rpc(comm, method, {"method": "snapshot", "params": {}, "timeout_s": 0.05})
    got = worker.until_done(mid)
    (req,) = [m for m in got if isinstance(m, ipc.KernelRequest)]
    (reply,) = replies(got)
    error = json.loads(reply.data_json)["error"]
    assert error["code"] == -32603
    assert "no answer within" in error["message"]
    worker.send(ipc.KernelAnswer(req.call_id, b'{"version": 1}'))
    assert worker.call(comm, "echo", {"after": "late"})["result"] == {"after": "late"}


def test_kernel_request_timeout_is_flagged(worker: Worker) -> None:
    comm = worker.open()
    result = worker.call(comm, "kernel_bg_catch", {"method": "clear", "timeout_s": 0.05})
    assert result["result"]["timed_out"] is True


def test_kernel_request_fails_when_its_comm_closes(
    worker: Worker, handler_cls: type[Probe]
) -> None:
    """A background request waiting on the kernel is cancelled by the close: Done at once,
    no reply; the loop-thread variant queues the close until its handler returns."""
    comm = worker.open()
    mid, _ = worker.rpc(comm, "kernel_bg", {"method": "snapshot", "params": {}})
    worker.until(lambda m: isinstance(m, ipc.KernelRequest))
    close_mid = worker.msg_id()
    worker.send(ipc.CloseComm(comm, "frontend_closed", close_mid))
    got = worker.until_done(mid, close_mid)
    assert not replies(got)
    assert handler_cls.closes == [(comm, "frontend_closed")]


def test_loop_thread_wait_queues_other_requests(worker: Worker) -> None:
    """While a handler on the loop thread waits on the kernel, another request waits too
    (backlog) and is served after; background output still flows meanwhile."""
    comm = worker.open()
    mid, parent = worker.rpc(comm, "kernel", {"method": "snapshot", "params": {}})
    (req,) = worker.until(lambda m: isinstance(m, ipc.KernelRequest))
    echo_mid, echo_parent = worker.rpc(comm, "echo", {"queued": True})
    worker.send(ipc.KernelAnswer(req.call_id, b'{"version": 9}'))  # type: ignore[union-attr]
    got = worker.until_done(mid, echo_mid)
    order = [(type(m).__name__, getattr(m, "parent_json", None)) for m in got]
    assert order == [
        ("RpcReply", parent),
        ("Done", None),
        ("RpcReply", echo_parent),
        ("Done", None),
    ]


# -- frontend-bound requests ---------------------------------------------------------------------
@pytest.mark.parametrize("method", ["ask", "ask_bg"])
def test_frontend_request_answered(worker: Worker, method: str) -> None:
    comm = worker.open()
    mid, _ = worker.rpc(comm, method, {"method": "show"})
    (asked,) = worker.until(lambda m: isinstance(m, ipc.FrontendRequest))
    assert isinstance(asked, ipc.FrontendRequest)
    data = json.loads(asked.data_json)
    assert data["method"] == "show"
    assert json.dumps(data["id"]) == asked.rpc_id
    answer_mid = worker.msg_id()
    worker.send(ipc.FrontendAnswer(comm, asked.rpc_id, b'{"result": 42}', answer_mid))
    got = worker.until_done(mid, answer_mid)
    (reply,) = replies(got)
    assert json.loads(reply.data_json)["result"] == 42


@pytest.mark.parametrize("method", ["ask", "ask_bg"])
def test_frontend_request_fails_on_disconnect(worker: Worker, method: str) -> None:
    comm = worker.open()
    mid, _ = worker.rpc(comm, method, {"method": "show"})
    worker.until(lambda m: isinstance(m, ipc.FrontendRequest))
    worker.send(ipc.FailFrontendRequests("frontend_disconnected"))
    (reply,) = replies(worker.until_done(mid))
    assert json.loads(reply.data_json)["error"]["message"] == "frontend_disconnected"


def test_i3_frontend_request_on_loop_thread_ends_when_its_comm_closes(
    worker: Worker, handler_cls: type[Probe]
) -> None:
    """The close arrives while the handler waits on the loop thread: the request's Done
    comes at once (no reply); on_close and the close's Done follow once it returns."""
    comm = worker.open()
    mid, _ = worker.rpc(comm, "ask", {"method": "show"})
    worker.until(lambda m: isinstance(m, ipc.FrontendRequest))
    close_mid = worker.msg_id()
    worker.send(ipc.CloseComm(comm, "frontend_closed", close_mid))
    got = worker.until_done(mid, close_mid)
    assert kinds(got) == ["Done", "Done"]
    assert [m.request_id for m in got] == [mid, close_mid]  # type: ignore[union-attr]
    assert handler_cls.closes == [(comm, "frontend_closed")]


def test_unmatched_frontend_answer_still_gets_done(worker: Worker) -> None:
    comm = worker.open()
    mid = worker.msg_id()
    worker.send(ipc.FrontendAnswer(comm, '"nobody"', b'{"result": 1}', mid))
    assert kinds(worker.until_done(mid)) == ["Done"]


# -- snapshots and subjects ----------------------------------------------------------------------
def test_snapshot_acknowledged_then_given_to_each_comm(worker: Worker) -> None:
    """A snapshot built by the real builder: SnapshotTaken first; then on_snapshot on
    every comm, one failing handler logged and skipped; a snapshot that cannot be applied
    is still acknowledged (the main process may then send the next one)."""
    a = worker.open()
    bad = worker.open({"bad_snapshot": True})
    b = worker.open()
    namespace = Namespace(x=1, names=["a", "b"])
    try:
        msg = namespace.snapshot()
        worker.send(msg)
        assert worker.recv() == ipc.SnapshotTaken(msg.version)
        namespace.taken(msg.version)
        expected = [{"version": msg.version, "values": {"x": 1, "names": ["a", "b"]}}]
        assert worker.call(a, "seen")["result"] == expected
        assert worker.call(b, "seen")["result"] == expected
        worker.send(ipc.Snapshot(msg.version + 1, b"corrupt"))
        assert worker.recv() == ipc.SnapshotTaken(msg.version + 1)
        assert worker.call(a, "seen")["result"] == expected
        assert worker.call(bad, "echo", {"alive": 1})["result"] == {"alive": 1}
    finally:
        namespace.close()


def test_subject_decoded_before_on_open(worker: Worker) -> None:
    with_subject = worker.open(payload=encode_object({"rows": 3}))
    assert worker.call(with_subject, "subject")["result"] == "{'rows': 3}"
    without = worker.open()
    assert worker.call(without, "subject")["result"] == "None"


@pytest.mark.parametrize(
    ("data", "payload", "message"),
    [({}, b"\x07 no such kind", "decoding"), ({"fail": True}, b"", "refused by on_open")],
)
def test_failed_open_closes_the_comm_with_a_reason(
    worker: Worker, data: dict[str, Any], payload: bytes, message: str
) -> None:
    mid = worker.msg_id()
    worker.send(
        ipc.OpenComm("c-x", "test.probe", json_bytes(data), header(mid), mid, False, payload)
    )
    got = worker.until_done(mid)
    assert kinds(got) == ["CloseFromWorker", "Done"]
    close = json.loads(got[0].data_json)  # type: ignore[union-attr]
    assert close["reason"] == "open_failed"
    assert message in close["message"]
    mid2, _ = worker.rpc("c-x", "echo", {})
    (reply,) = replies(worker.until_done(mid2))
    assert json.loads(reply.data_json)["error"]["code"] == -32600


def test_restored_comm_of_a_handler_that_cannot_restore_is_closed(worker: Worker) -> None:
    worker.send(ipc.OpenComm("c-r", "test.probe", b"{}", b"", None, True))
    msg = worker.recv()
    assert msg == ipc.CloseFromWorker("c-r", json_bytes({"reason": "worker_restart"}))


# -- the real echo worker in a process of its own --------------------------------------------
def test_i3_i4_echo_worker_answers_echo_before_an_earlier_sleep(rundir: Path) -> None:
    """`mpkernel.echo` in a spawned process (`worker_entry`): `sleep` runs in the
    background, so an `echo` sent after it is answered first; each reply is parented to
    its request and followed by its Done; closing the comm cancels the second sleep at
    once; StopWorker ends the process with code 0."""
    import multiprocess

    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    token = os.urandom(8)
    spec = WorkerSpec(
        "echo",
        "mpkernel.echo",
        "mpkernel_workers.echo:EchoHandler",
        f"ipc://{rundir}/e.in",
        f"ipc://{rundir}/e.out",
        token,
    )
    pull = ctx.socket(zmq.PULL)
    pull.bind(spec.out_addr)
    push = ctx.socket(zmq.PUSH)
    push.connect(spec.in_addr)
    mp = multiprocess.get_context("spawn")
    alive_r, alive_w = mp.Pipe(duplex=False)
    process = mp.Process(target=worker_entry, args=(spec, alive_r), daemon=True)
    process.start()
    alive_r.close()

    def recv() -> ipc.FromWorker:
        while True:
            if not pull.poll(int(DEADLINE * 1000)):
                raise AssertionError("nothing from the echo worker")
            got_token, *frames = pull.recv_multipart()
            assert got_token == token
            msg = ipc.decode_from_worker(frames)
            if not isinstance(msg, ipc.LogLine):
                return msg

    def send_rpc(comm_id: str, mid: str, method: str, params: dict[str, Any]) -> bytes:
        parent = header(mid)
        data = json_bytes({"jsonrpc": "2.0", "method": method, "params": params})
        push.send_multipart(ipc.encode(ipc.RpcRequest(comm_id, data, parent, mid)))
        return parent

    try:
        ready = recv()
        assert isinstance(ready, ipc.Ready)
        assert ready.snapshots is False
        push.send_multipart(ipc.encode(ipc.OpenComm("e1", "mpkernel.echo", b"{}", b"", "open")))
        assert recv() == ipc.Done("open")
        sleep_parent = send_rpc("e1", "sleep", "sleep", {"seconds": 2})
        echo_parent = send_rpc("e1", "echo", "echo", {"n": 1})
        order = [recv() for _ in range(4)]
        assert kinds(order) == ["RpcReply", "Done", "RpcReply", "Done"]
        echo_reply, echo_done, sleep_reply, sleep_done = order
        assert isinstance(echo_reply, ipc.RpcReply)
        assert isinstance(sleep_reply, ipc.RpcReply)
        assert echo_reply.parent_json == echo_parent
        assert json.loads(echo_reply.data_json) == {"jsonrpc": "2.0", "result": {"n": 1}}
        assert echo_done == ipc.Done("echo")
        assert sleep_reply.parent_json == sleep_parent
        assert json.loads(sleep_reply.data_json) == {"jsonrpc": "2.0", "result": {"slept": 2.0}}
        assert sleep_done == ipc.Done("sleep")

        send_rpc("e1", "long", "sleep", {"seconds": 600})
        push.send_multipart(ipc.encode(ipc.CloseComm("e1", "frontend_closed", "close")))
        assert [recv(), recv()] == [ipc.Done("long"), ipc.Done("close")]
        push.send_multipart(ipc.encode(ipc.StopWorker("kernel_shutdown")))
        process.join(DEADLINE)
        assert process.exitcode == 0
    finally:
        if process.is_alive():
            process.kill()
            process.join(DEADLINE)
        alive_w.close()
        ctx.destroy(linger=0)
