"""The handler API: what a comm handler running in a worker process sees.

A handler class serves one comm target; one instance is created per comm. It receives
`on_open`, JSON-RPC requests dispatched to its `rpc_<method>` methods (params by name, as
Positron sends them), plain `on_message` data, `on_snapshot` (if the class consumes
snapshots of the user's namespace) and `on_close(reason)`. It talks back through its
`Comm`. Handlers never see zmq or the HMAC key.

Threads: everything runs on the worker's loop thread, one message at a time, except the
`rpc_*` methods marked `@background`, which run on a small pool owned by the runtime so
that the loop keeps answering cheap requests meanwhile, and the tasks a handler starts with
`Comm.start_task`. Either may use its `Comm` like any other; `current_request()` is the
request its thread is serving, and it should stop early once that request is cancelled
(comm closed, frontend gone, worker stopping).

Params: an `rpc_*` method's params are checked against its annotations before it runs; a
call that does not fit is answered with -32602 naming the param (annotate `Any` to check a
param yourself).

State: what the comms of one worker process share (a cache, the newest snapshot) is kept
by the runtime (`Comm.shared`), not in module globals: a forked or restarted worker starts
from nothing, and a test starts from a fresh fake.

Everything a handler needs is here; `mpkernel_workers.testing` drives a handler in a unit
test (a fake comm, real snapshots of a namespace).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Protocol, TypeVar

from mpkernel.comms.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
)

# A variable whose value did not cross to the worker (its pickling failed, a descriptor):
# what a snapshot holds in its place.
from mpkernel.snapshots.codec import Unavailable

# What a snapshot holds in place of an array or table over `preview_min_bytes`: its
# first rows, whole shape and sizes (the value itself stays in the kernel).
from mpkernel.snapshots.preview import Preview

# The user's namespace as of one execution (`CommHandler.on_snapshot`).
from mpkernel.snapshots.store import WorkerSnapshot

# Positron's JSON-RPC error codes, for `RpcError` (defined once, with the reply shapes).
from mpkernel.supervision.ipc import RESTORED_STATE  # `Comm.save_state`, restored on open

__all__ = [
    "CLOSE_REASONS",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "RESTORED_STATE",
    "Comm",
    "CommHandler",
    "FrontendDisconnected",
    "FrontendError",
    "KernelRequestError",
    "Preview",
    "Request",
    "RpcError",
    "Unavailable",
    "WorkerSnapshot",
    "background",
    "current_request",
    "forked_from_kernel",
    "runs_in_background",
    "serving",
    "serving_request",
]


CLOSE_REASONS = ("frontend_closed", "frontend_disconnected", "kernel_shutdown", "worker_restart")


class RpcError(Exception):
    """Raise from an `rpc_*` method to answer with this JSON-RPC error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FrontendError(Exception):
    """The frontend answered a `request_frontend` call with an error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message


class FrontendDisconnected(FrontendError):
    """The frontend went away (or the comm closed) before answering."""

    def __init__(self, message: str = "frontend_disconnected") -> None:
        super().__init__(INTERNAL_ERROR, message)


class KernelRequestError(Exception):
    """A `request_kernel` call failed: the kernel answered with an error, the deadline
    passed (`timed_out`), or the calling request was cancelled meanwhile."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.timed_out = timed_out


class Request(Protocol):
    """One frontend request being served (an RPC, comm data, an open or a close).

    Whatever the handler sends while serving it is parented to it. It is cancelled when
    its comm closes, when the frontend departs (persistent comms), or when the worker
    stops; after that, what it sends is dropped and its reply is not sent.
    """

    @property
    def comm_id(self) -> str: ...

    @property
    def method(self) -> str | None:
        """The JSON-RPC method; None for data, opens and closes."""

    @property
    def rpc_id(self) -> Any:
        """The JSON-RPC `id` the request carried; None when it carried none (Positron)."""

    @property
    def msg_id(self) -> str | None:
        """The frontend's Jupyter msg_id of the request, when it came from the frontend."""

    @property
    def cancelled(self) -> bool: ...

    @property
    def cancel_reason(self) -> str | None: ...

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block until the request is cancelled or `timeout` passes; True if cancelled."""


_CURRENT_REQUEST: ContextVar[Request | None] = ContextVar("mpkernel_request", default=None)


def forked_from_kernel() -> bool:
    """Whether this worker was forked from the kernel's process (it shares the user's
    data). Only the forking thread exists in such a process: a library's thread pool that
    the kernel started is not there (polars' hangs its first parallel call), so handlers
    use single-threaded or fork-aware code (numpy, pyarrow) in it."""
    from mpkernel.supervision.fork import forked

    return forked()


def current_request() -> Request:
    """The request the calling thread is serving.

    Raises RuntimeError outside one (e.g. in `on_snapshot`, or a thread of the handler's
    own).
    """
    request = _CURRENT_REQUEST.get()
    if request is None:
        raise RuntimeError("no request is being served on this thread")
    return request


@contextmanager
def serving(request: Request) -> Iterator[None]:
    """For the runtime: make `request` the calling thread's current request."""
    token = _CURRENT_REQUEST.set(request)
    try:
        yield
    finally:
        _CURRENT_REQUEST.reset(token)


def serving_request() -> Request | None:
    """For the runtime: the calling thread's current request, or None."""
    return _CURRENT_REQUEST.get()


_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")
_BACKGROUND_ATTR = "_mpkernel_background"


def background(method: _F) -> _F:
    """Run this `rpc_*` method on the runtime's pool instead of the loop thread.

    Its params are validated on the loop thread first (a bad call is answered at once);
    its reply, and the `Done` that lets the frontend's request go idle, follow everything
    it sent.
    """
    setattr(method, _BACKGROUND_ATTR, True)
    return method


def runs_in_background(method: Callable[..., Any]) -> bool:
    return bool(getattr(method, _BACKGROUND_ATTR, False))


class Comm(Protocol):
    """A handler's end of its comm. Usable from any thread of the worker."""

    @property
    def comm_id(self) -> str: ...

    @property
    def target(self) -> str: ...

    @property
    def subject(self) -> Any:
        """The object this comm was opened about (e.g. the DataFrame of a data explorer),
        decoded before `on_open`; None when there is none."""

    def send(self, data: Any, buffers: Sequence[bytes] = ()) -> None:
        """Send comm data, parented to the request the calling thread serves (if any)."""

    def send_event(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        """Send a JSON-RPC notification (an event: no parent)."""

    def request_frontend(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Ask the frontend and wait for its answer; raises FrontendError/Disconnected."""

    def request_kernel(
        self, method: str, params: Mapping[str, Any] | None = None, timeout_s: float = 10.0
    ) -> Any:
        """Ask the main process for what only it can do and wait for the answer (its
        `result`, JSON-decoded); raises KernelRequestError on an error answer, once
        `timeout_s` has passed, or when the calling request is cancelled.

        Methods: "delete" {names}, "clear" {include_hidden}, "view" {path, target, data}
        -> {comm_id}, "object" {name} -> {payload} (base64 of the variable's whole value
        for `mpkernel.snapshots.codec.decode_object`, where a snapshot holds a preview),
        "snapshot" -> {version}.
        """

    def save_state(self, state: Any) -> None:
        """Keep `state` (JSON) in the main process: a worker that takes this comm over (a
        viewer's fresh fork after a cell changed its table, a restart) finds the latest
        in its open data under `RESTORED_STATE`."""

    def close(self, data: Any = None) -> None:
        """Close this comm from the backend side."""

    def start_task(self, work: Callable[[], None], name: str) -> None:
        """Run `work` on a thread of its own, as a request of this comm that ends when
        `work` returns: `current_request()` in it is that request, cancelled when the comm
        closes or the worker stops (then what it sends is dropped: check `cancelled`
        between steps). What it raises is logged; the worker keeps serving."""

    def shared(self, factory: Callable[[], _T]) -> _T:
        """This worker process's one `factory()`, made at the first call: what all the
        comms of the worker share. `factory` is the key: pass the same callable (a class)
        each time."""


class CommHandler:
    """Base class for comm handlers. Override what you need."""

    #: keep this comm across a frontend disconnect
    persistent: ClassVar[bool] = False
    #: a restarted worker can rebuild this comm's state from its open data
    restorable: ClassVar[bool] = False
    #: this handler needs snapshots of the user's namespace (`on_snapshot`)
    snapshots: ClassVar[bool] = False

    def __init__(self, comm: Comm) -> None:
        self.comm = comm

    def on_open(self, data: Any) -> None:
        """The comm was opened, with the `comm_open` data."""

    def on_message(self, data: Any, buffers: Sequence[bytes]) -> None:
        """A comm_msg that is not a JSON-RPC request."""

    def on_snapshot(self, snapshot: WorkerSnapshot) -> None:
        """A new snapshot of the user's namespace (only if `snapshots` is True). Runs on
        the loop thread, outside any request: what it sends are events."""

    def on_close(self, reason: str) -> None:
        """Clean up; `reason` is one of `CLOSE_REASONS`."""
