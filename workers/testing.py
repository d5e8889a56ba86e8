"""Unit tests of a comm handler, without a kernel or a worker process.

    ns = Namespace()                       # real snapshots of a namespace, in this process
    comm = FakeComm(kernel=answers)        # records what the handler sends
    handler = open_handler(MyHandler, comm, {"some": "open data"})
    handler.on_snapshot(ns.run("x = 1"))   # as after a cell
    assert comm.events[-1] == ("update", {...})
    assert call(handler, "inspect", path=["x"]) == {...}   # params as JSON, checked and
                                                           # dispatched as the runtime does
    comm.run_tasks()                       # what the handler started with `start_task`
    close_handler(handler)

`call` goes through the runtime's own decoding, param checks and error mapping, so a
handler tested here answers the frontend the same way; an error reply raises `RpcError`.
Tasks do not run on their own: `run_tasks` runs them on the calling thread, so a test
sees their effects in a known order.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from mpkernel_workers.api import (
    CommHandler,
    FrontendError,
    KernelRequestError,
    RpcError,
    WorkerSnapshot,
    serving,
    serving_request,
)

from mpkernel.snapshots.builder import SnapshotBuilder
from mpkernel.snapshots.dispatch import SnapshotDispatcher
from mpkernel.snapshots.store import SnapshotStore
from mpkernel.supervision.requests import BadRequest, invoke, parse_rpc, resolve
from mpkernel.supervision.worker_comm import SharedState
from mpkernel.wire.codec import json_bytes

__all__ = [
    "FakeComm",
    "FakeRequest",
    "Namespace",
    "SharedState",
    "call",
    "close_handler",
    "open_handler",
]

T = TypeVar("T")
H = TypeVar("H", bound=CommHandler)
Answer = Callable[[str, Mapping[str, Any]], Any]

_ids = itertools.count(1)


class FakeRequest:
    """A request being served (`mpkernel_workers.api.Request`); `cancel` it in a test."""

    def __init__(self, comm_id: str, method: str | None = None, rpc_id: Any = None) -> None:
        self._comm_id = comm_id
        self._method = method
        self._rpc_id = rpc_id
        self._msg_id = f"test-{next(_ids)}"
        self._cancelled = threading.Event()
        self._reason: str | None = None

    @property
    def comm_id(self) -> str:
        return self._comm_id

    @property
    def method(self) -> str | None:
        return self._method

    @property
    def rpc_id(self) -> Any:
        return self._rpc_id

    @property
    def msg_id(self) -> str | None:
        return self._msg_id

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def cancel_reason(self) -> str | None:
        return self._reason

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        return self._cancelled.wait(timeout)

    def cancel(self, reason: str) -> None:
        self._reason = reason
        self._cancelled.set()


class FakeComm:
    """A handler's `Comm` that records what it is given. `kernel` and `frontend` answer
    `request_kernel` and `request_frontend` (method, params) -> result; without them those
    raise as when nobody answers. Comms made with the same `shared` (a `SharedState`)
    share `Comm.shared` state as the comms of one worker process do."""

    def __init__(
        self,
        subject: Any = None,
        *,
        target: str = "test.target",
        comm_id: str | None = None,
        kernel: Answer | None = None,
        frontend: Answer | None = None,
        shared: SharedState | None = None,
    ) -> None:
        self._comm_id = comm_id or f"comm-{next(_ids)}"
        self._target = target
        self._subject = subject
        self._kernel = kernel
        self._frontend = frontend
        self._shared = shared if shared is not None else SharedState()
        self.sent: list[tuple[Any, tuple[bytes, ...]]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.kernel_requests: list[tuple[str, dict[str, Any]]] = []
        self.saved_states: list[Any] = []
        self.closed = False
        self.close_data: Any = None
        self._tasks: list[tuple[Callable[[], None], str, FakeRequest]] = []
        self._lock = threading.Lock()

    @property
    def comm_id(self) -> str:
        return self._comm_id

    @property
    def target(self) -> str:
        return self._target

    @property
    def subject(self) -> Any:
        return self._subject

    def _sending(self) -> bool:
        """As the runtime does: what a cancelled request sends is dropped; a closed comm
        refuses."""
        request = serving_request()
        if request is not None and request.cancelled:
            return False
        if self.closed:
            raise RuntimeError(f"comm {self._comm_id} is closed")
        return True

    def send(self, data: Any, buffers: Sequence[bytes] = ()) -> None:
        if self._sending():
            with self._lock:
                self.sent.append((json.loads(json_bytes(data)), tuple(buffers)))

    def send_event(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        if self._sending():
            with self._lock:
                self.events.append((method, json.loads(json_bytes(dict(params or {})))))

    def request_frontend(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        if self._frontend is None:
            raise FrontendError(-32603, "no frontend in this test")
        return self._frontend(method, dict(params or {}))

    def request_kernel(
        self, method: str, params: Mapping[str, Any] | None = None, timeout_s: float = 10.0
    ) -> Any:
        with self._lock:
            self.kernel_requests.append((method, dict(params or {})))
        if self._kernel is None:
            raise KernelRequestError(f"no kernel in this test ({method})")
        return self._kernel(method, dict(params or {}))

    def save_state(self, state: Any) -> None:
        if not self.closed:
            self.saved_states.append(json.loads(json_bytes(state)))

    def close(self, data: Any = None) -> None:
        if not self.closed:
            self.closed = True
            self.close_data = data

    def start_task(self, work: Callable[[], None], name: str) -> None:
        if self.closed:
            raise RuntimeError(f"comm {self._comm_id} is closed")
        with self._lock:
            self._tasks.append((work, name, FakeRequest(self._comm_id)))

    def shared(self, factory: Callable[[], T]) -> T:
        return self._shared.get(factory)

    # -- for the test -------------------------------------------------------------------------
    def run_tasks(self) -> list[str]:
        """Run the tasks started so far, and those they start, on this thread; their
        names, in the order they ran. What a task raises fails the test."""
        names: list[str] = []
        while True:
            with self._lock:
                if not self._tasks:
                    return names
                work, name, request = self._tasks.pop(0)
            with serving(request):
                work()
            names.append(name)

    def event_names(self) -> list[str]:
        return [method for method, _ in self.events]

    def _cancel_tasks(self, reason: str) -> None:
        with self._lock:
            for _, _, request in self._tasks:
                request.cancel(reason)


def open_handler(handler_cls: type[H], comm: FakeComm, data: Any = None) -> H:
    """A handler of `handler_cls` on `comm`, opened with `data` as the runtime opens one."""
    handler = handler_cls(comm)
    with serving(FakeRequest(comm.comm_id)):
        handler.on_open({} if data is None else data)
    return handler


def call(handler: CommHandler, method: str, /, **params: Any) -> Any:
    """A JSON-RPC request as the frontend sends it (params by name, no `id`), served as the
    runtime serves it; its result, or `RpcError` for an error reply."""
    comm_id = handler.comm.comm_id
    data_json = json_bytes({"jsonrpc": "2.0", "method": method, "params": params})
    try:
        rpc = parse_rpc(data_json)
        fn = resolve(handler, rpc)
    except BadRequest as e:
        raise RpcError(e.code, e.message) from e
    with serving(FakeRequest(comm_id, method)):
        reply = json.loads(invoke(fn, rpc, comm_id))
    if "error" in reply:
        raise RpcError(reply["error"]["code"], reply["error"]["message"])
    return reply["result"]


def close_handler(handler: CommHandler, reason: str = "frontend_closed") -> None:
    """Close the comm from the frontend's side: its tasks are cancelled, then `on_close`."""
    comm = handler.comm
    if isinstance(comm, FakeComm):
        comm._cancel_tasks(reason)
        comm.closed = True
    handler.on_close(reason)


class Namespace:
    """A user namespace with the kernel's real snapshot builder, dispatcher and a worker's
    store, in this process: `run(code)` executes `code` in it and returns the snapshot a
    handler would get after that cell. Close it (or use it as a context manager) to free
    the shared memory its snapshots hold."""

    _KEY = "test-worker"

    def __init__(self, preview_min_bytes: int | None = None, **names: Any) -> None:
        self.ns: dict[str, Any] = dict(names)
        self._dispatcher = SnapshotDispatcher()
        self._dispatcher.worker_ready(self._KEY, consumes=True)
        extra = {} if preview_min_bytes is None else {"preview_min_bytes": preview_min_bytes}
        # No time budget: every value is copied before `run` returns.
        self._builder = SnapshotBuilder(self.ns, set(), 1 << 62, self._dispatcher.wanted, **extra)
        self._store = SnapshotStore()
        self.latest: WorkerSnapshot | None = None

    def run(self, code: str) -> WorkerSnapshot:
        """Execute `code` as a cell; the snapshot that follows it (the previous one when the
        cell changed nothing)."""
        exec(code, self.ns)
        ready = self._builder.after_execute(code)
        if ready is None:
            assert self.latest is not None, "the first cell always makes a snapshot"
            return self.latest
        return self._take(ready)

    def snapshot(self) -> WorkerSnapshot:
        """A snapshot of every name now (what a kernel request `snapshot` gives)."""
        return self._take(self._builder.now())

    def _take(self, ready: Any) -> WorkerSnapshot:
        for key, msg in self._dispatcher.offer(ready):
            assert key == self._KEY
            self.latest = self._store.apply(msg)
            self._dispatcher.taken(key, msg.version)
        assert self.latest is not None
        return self.latest

    def close(self) -> None:
        self._store.close()
        self._dispatcher.close()

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
