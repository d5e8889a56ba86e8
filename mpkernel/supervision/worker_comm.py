"""A handler's end of its comm inside a worker (`mpkernel_workers.api.Comm`).

Any thread of the worker may use it: what it sends goes through the runtime, which parents
it to the request the calling thread serves and drops it if that request was cancelled.
Events are parentless (Positron would take an event parented to a pending request for its
reply), except while handlers digest a snapshot that follows an execution: then they are
parented to that execution (`events_parented_to`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from mpkernel.supervision import ipc
from mpkernel.wire.codec import json_bytes

if TYPE_CHECKING:
    from mpkernel.supervision.requests import WorkerRequest
    from mpkernel.supervision.worker_loop import WorkerRuntime


T = TypeVar("T")

_EVENT_PARENT: ContextVar[bytes] = ContextVar("mpkernel_event_parent", default=ipc.NO_PARENT)


@contextmanager
def events_parented_to(parent_json: bytes) -> Iterator[None]:
    token = _EVENT_PARENT.set(parent_json)
    try:
        yield
    finally:
        _EVENT_PARENT.reset(token)


class SharedState:
    """What the comms of one worker process share (`Comm.shared`): one `factory()` per
    factory, made at the first call, from any thread."""

    def __init__(self) -> None:
        self._values: dict[Callable[[], Any], Any] = {}
        self._lock = threading.Lock()

    def get(self, factory: Callable[[], T]) -> T:
        with self._lock:
            if factory not in self._values:
                self._values[factory] = factory()
            value: T = self._values[factory]
            return value


class WorkerComm:
    """The handler's `Comm`: sends through the runtime, from any thread."""

    def __init__(self, runtime: WorkerRuntime, comm_id: str, target: str, subject: Any) -> None:
        self._runtime = runtime
        self._comm_id = comm_id
        self._target = target
        self._subject = subject
        self.closed = False

    @property
    def comm_id(self) -> str:
        return self._comm_id

    @property
    def target(self) -> str:
        return self._target

    @property
    def subject(self) -> Any:
        return self._subject

    def _check_open(self, request: WorkerRequest | None) -> bool:
        """False: drop silently (the request was cancelled); raises on a closed comm."""
        if request is not None and request.cancelled:
            return False
        if self.closed:
            raise RuntimeError(f"comm {self._comm_id} is closed")
        return True

    def send(self, data: Any, buffers: Sequence[bytes] = ()) -> None:
        request = self._runtime.current()
        if self._check_open(request):
            parent = request.parent_json if request is not None else ipc.NO_PARENT
            msg = ipc.CommSend(self._comm_id, json_bytes(data), parent, tuple(buffers))
            self._runtime.emit(msg, request)

    def send_event(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        request = self._runtime.current()
        if self._check_open(request):
            data = {"jsonrpc": "2.0", "method": method, "params": dict(params or {})}
            self._runtime.emit(
                ipc.CommSend(self._comm_id, json_bytes(data), _EVENT_PARENT.get()), request
            )

    def request_frontend(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        if self.closed:
            raise RuntimeError(f"comm {self._comm_id} is closed")
        return self._runtime.request_frontend(self._comm_id, method, params or {})

    def request_kernel(
        self, method: str, params: Mapping[str, Any] | None = None, timeout_s: float = 10.0
    ) -> Any:
        return self._runtime.request_kernel(self._comm_id, method, params or {}, timeout_s)

    def save_state(self, state: Any) -> None:
        if not self.closed:
            self._runtime.emit(ipc.SaveState(self._comm_id, json_bytes(state)), None)

    def close(self, data: Any = None) -> None:
        if not self.closed:
            self.closed = True
            data_json = json_bytes(data or {})
            self._runtime.on_loop(lambda: self._runtime.close_from_handler(self, data_json))

    def start_task(self, work: Callable[[], None], name: str) -> None:
        if self.closed:
            raise RuntimeError(f"comm {self._comm_id} is closed")
        self._runtime.start_task(self._comm_id, work, name)

    def shared(self, factory: Callable[[], T]) -> T:
        return self._runtime.shared(factory)
