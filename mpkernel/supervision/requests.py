"""Inside a worker: one request being served, JSON-RPC decoding and replies, the waits
for answers from the frontend or the kernel, and the pool that runs background methods.

Threads: a `WorkerRequest` is created, finished and cancelled on the runtime's loop thread
only; any thread may read its cancellation flag or wait on it. A `Waiter` is resolved on
the loop thread and waited on by whichever thread asked. `BackgroundPool` threads run
handler code and hand everything they produce back to the loop (they never touch zmq).

JSON-RPC (I4, `mpkernel.comms.jsonrpc`): params by name (an object; arrays are accepted
too); the `id` is optional and echoed only when the request carried one, as the JSON text
it came in.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import queue
import threading
import traceback
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from mpkernel_workers.api import (
    CommHandler,
    FrontendDisconnected,
    FrontendError,
    KernelRequestError,
    RpcError,
)

from mpkernel.comms.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    error_reply,
    request_id_json,
    result_reply,
)
from mpkernel.supervision import ipc

log = logging.getLogger("mpkernel.worker")


class WorkerRequest:
    """A frontend request served by this worker (`mpkernel_workers.api.Request`)."""

    def __init__(
        self,
        comm_id: str,
        parent_json: bytes,
        msg_id: str | None,
        rpc_id_json: str | None = None,
        method: str | None = None,
    ) -> None:
        self._comm_id = comm_id
        self.parent_json = parent_json
        self._msg_id = msg_id
        self.rpc_id_json = rpc_id_json
        self._method = method
        self._cancel = threading.Event()
        self._cancel_reason: str | None = None
        self.finished = False  # loop thread only

    def __repr__(self) -> str:
        return f"<request {self._method or 'data'} on {self._comm_id} msg {self._msg_id}>"

    @property
    def comm_id(self) -> str:
        return self._comm_id

    @property
    def method(self) -> str | None:
        return self._method

    @property
    def rpc_id(self) -> Any:
        return None if self.rpc_id_json is None else json.loads(self.rpc_id_json)

    @property
    def msg_id(self) -> str | None:
        return self._msg_id

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def cancel_reason(self) -> str | None:
        return self._cancel_reason

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        return self._cancel.wait(timeout)

    def reply_msg(self, reply: bytes) -> ipc.RpcReply:
        # RpcReply.rpc_id: the id's JSON text, "" when the request carried none (Positron).
        return ipc.RpcReply(self._comm_id, self.rpc_id_json or "", reply, self.parent_json)

    # -- loop thread -----------------------------------------------------------------------
    def cancel(self, reason: str) -> bool:
        """Mark cancelled; False if it had already ended (finished or cancelled)."""
        if self.finished or self._cancel.is_set():
            return False
        self._cancel_reason = reason
        self._cancel.set()
        return True

    def finish(self) -> bool:
        """Mark finished; False if it was cancelled first (its Done is already out)."""
        if self.finished or self._cancel.is_set():
            return False
        self.finished = True
        return True


# -- JSON-RPC --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RpcCall:
    method: str
    rpc_id_json: str | None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


class BadRequest(Exception):
    """A request that cannot be called: answered at once with `code`."""

    def __init__(self, rpc_id_json: str | None, code: int, message: str) -> None:
        super().__init__(message)
        self.rpc_id_json = rpc_id_json
        self.code = code
        self.message = message

    def reply(self) -> bytes:
        return error_reply(self.rpc_id_json, self.code, self.message)


def parse_rpc(data_json: bytes) -> RpcCall:
    try:
        data = json.loads(data_json)
    except ValueError as e:
        raise BadRequest(None, PARSE_ERROR, f"invalid JSON: {e}") from e
    if not isinstance(data, dict):
        raise BadRequest(None, INVALID_REQUEST, "a request is a JSON object")
    rpc_id_json = request_id_json(data)
    method = data.get("method")
    if not isinstance(method, str):
        raise BadRequest(rpc_id_json, INVALID_REQUEST, "request has no method")
    params = data.get("params")
    if isinstance(params, dict):
        return RpcCall(method, rpc_id_json, kwargs=params)
    if isinstance(params, list):
        return RpcCall(method, rpc_id_json, args=tuple(params))
    if params is None:
        return RpcCall(method, rpc_id_json)
    raise BadRequest(rpc_id_json, INVALID_PARAMS, "params must be an object (or an array)")


def resolve(handler: CommHandler | None, call: RpcCall) -> Callable[..., Any]:
    """The bound `rpc_<method>` for `call`, with its params checked against its signature
    (`handler` None: the comm is not open here)."""
    if handler is None:
        raise BadRequest(call.rpc_id_json, INVALID_REQUEST, "comm is not open in this worker")
    fn = getattr(handler, f"rpc_{call.method}", None)
    if not callable(fn):
        raise BadRequest(call.rpc_id_json, METHOD_NOT_FOUND, f"unknown method {call.method!r}")
    try:
        bound = inspect.signature(fn).bind(*call.args, **call.kwargs)
    except TypeError as e:
        raise BadRequest(call.rpc_id_json, INVALID_PARAMS, f"{call.method}: {e}") from e
    for name, expected in _param_types(getattr(fn, "__func__", fn)).items():
        if name not in bound.arguments:
            continue  # its default
        try:
            # Checked, not converted: the method gets the JSON value as it came.
            msgspec.convert(bound.arguments[name], expected, strict=True)
        except msgspec.ValidationError as e:
            message = f"{call.method}: param {name!r}: {e}"
            raise BadRequest(call.rpc_id_json, INVALID_PARAMS, message) from e
    return fn  # type: ignore[no-any-return]


@functools.cache
def _param_types(fn: Callable[..., Any]) -> dict[str, Any]:
    """What an `rpc_*` method's params must be, from its annotations: named params only
    (`**params` takes anything), and none annotated `Any` (the method checks those)."""
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError) as e:  # e.g. a name imported for type checkers only
        log.warning("params of %s are not checked: its annotations do not resolve: %s", fn, e)
        return {}
    out = {}
    for name, param in inspect.signature(fn).parameters.items():
        expected = hints.get(name, Any)
        if expected is not Any and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            out[name] = expected
    return out


def invoke(fn: Callable[..., Any], call: RpcCall, comm_id: str) -> bytes:
    """Run the method and return its reply: a result, or the error it maps to. A handler
    failure is -32603 with the traceback in the log: an RPC never goes unanswered."""
    try:
        return result_reply(call.rpc_id_json, fn(*call.args, **call.kwargs))
    except RpcError as e:
        return error_reply(call.rpc_id_json, e.code, e.message)
    except FrontendError as e:
        return error_reply(call.rpc_id_json, e.code, e.message)
    except KernelRequestError as e:
        return error_reply(call.rpc_id_json, INTERNAL_ERROR, e.message)
    except Exception as e:  # noqa: BLE001 - the per-request boundary: any failure is -32603
        log.error("rpc %s on %s raised:\n%s", call.method, comm_id, traceback.format_exc())
        return error_reply(call.rpc_id_json, INTERNAL_ERROR, f"{type(e).__name__}: {e}")


# -- answers awaited by a handler -----------------------------------------------------------
class Waiter:
    """An answer a handler waits for (frontend-bound request or kernel request), keyed by
    its rpc id or call id. The first resolution wins."""

    def __init__(self, key: str, comm_id: str, request: WorkerRequest | None, frontend: bool):
        self.key = key
        self.comm_id = comm_id
        self.request = request
        self.frontend = frontend
        self._done = threading.Event()
        self._result: Any = None
        self._error: Exception | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def resolve(self, result: Any) -> None:
        if not self._done.is_set():
            self._result = result
            self._done.set()

    def fail(self, error: Exception) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    def frontend_answered(self, answer: Any) -> None:
        """The frontend's JSON-RPC answer: its `result`, or its `error` as FrontendError."""
        if isinstance(answer, dict) and "error" in answer:
            err = answer["error"] if isinstance(answer["error"], dict) else {}
            code, message = err.get("code", INTERNAL_ERROR), err.get("message", "")
            self.fail(
                FrontendError(code if isinstance(code, int) else INTERNAL_ERROR, str(message))
            )
        else:
            self.resolve(answer.get("result") if isinstance(answer, dict) else answer)

    def give_up(self, reason: str) -> None:
        """No answer will come (cancelled, comm closed, frontend gone, worker stopping)."""
        self.fail(FrontendDisconnected(reason) if self.frontend else KernelRequestError(reason))

    def wait(self, timeout: float | None) -> bool:
        return self._done.wait(timeout)

    def outcome(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._result


# -- background pool -------------------------------------------------------------------------
class BackgroundPool:
    """A few daemon threads for `@background` methods, started on demand.

    Daemon threads, not `ThreadPoolExecutor`: a handler that never returns must not hold
    the worker's exit (the executor joins its threads at interpreter exit).
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        """`job` must not raise: it reports its own outcome."""
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._size:
                t = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(t)
                self._idle += 1
                t.start()
            self._idle -= 1
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        """Let idle threads end; a busy one ends with its job (or with the process)."""
        with self._lock:
            for _ in self._threads:
                self._jobs.put(None)
