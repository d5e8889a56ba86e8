"""Inside a worker process: receive requests, call the handler, send results back.

    main process PUSH ──(in endpoint)──> [worker loop] ──> handler methods
    main process PULL <─(out endpoint)── [worker loop] <── comm.send / replies / Done
                      <─(out endpoint)── [output forwarder thread] <── fd 1/2 text

The loop runs on the worker's main thread and handles one message at a time. After
handling a message that came from a frontend request it sends `Done(request_id)`, which
travels the same socket after everything the handler emitted (I3). The worker has no
frontend socket and no HMAC key. It ignores SIGINT (the kernel's process group receives
every interrupt) and exits when the main process's end of the liveness pipe closes.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import logging
import os
import select
import signal
import sys
import threading
import traceback
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import zmq
from mpkernel_workers.api import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    CommHandler,
    FrontendDisconnected,
    FrontendError,
    RpcError,
)

from mpkernel.supervision import ipc
from mpkernel.wire.codec import json_bytes

log = logging.getLogger("mpkernel.worker")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker needs, pickled into the child at start."""

    name: str
    target: str
    handler: str  # "module:Class"
    in_addr: str
    out_addr: str
    token: bytes
    log_level: str = "info"


class HandlerImportError(Exception):
    pass


def load_handler_class(spec: str) -> type[CommHandler]:
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise HandlerImportError(f"handler {spec!r} is not of the form 'module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise HandlerImportError(f"cannot import {module_name!r}: {e}") from e
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, CommHandler):
        raise HandlerImportError(f"{spec!r} is not a CommHandler subclass")
    return cls


def _jsonrpc_error(rpc_id: Any, code: int, message: str) -> bytes:
    return json_bytes({"jsonrpc": "2.0", "id": rpc_id, "error": {"code": code, "message": message}})


class WorkerComm:
    """The handler's `Comm`: sends through the runtime."""

    def __init__(self, runtime: WorkerRuntime, comm_id: str, target: str) -> None:
        self._runtime = runtime
        self._comm_id = comm_id
        self._target = target
        self.closed = False

    @property
    def comm_id(self) -> str:
        return self._comm_id

    @property
    def target(self) -> str:
        return self._target

    def send(self, data: Any, buffers: Sequence[bytes] = ()) -> None:
        if self.closed:
            raise RuntimeError(f"comm {self._comm_id} is closed")
        self._runtime.emit(
            ipc.CommSend(self._comm_id, json_bytes(data), self._runtime.parent_json, tuple(buffers))
        )

    def send_event(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        if self.closed:
            raise RuntimeError(f"comm {self._comm_id} is closed")
        data = {"jsonrpc": "2.0", "method": method, "params": dict(params or {})}
        self._runtime.emit(ipc.CommSend(self._comm_id, json_bytes(data), ipc.NO_PARENT))

    def request_frontend(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        if self.closed:
            raise RuntimeError(f"comm {self._comm_id} is closed")
        return self._runtime.request_frontend(self._comm_id, method, params or {})

    def close(self, data: Any = None) -> None:
        if not self.closed:
            self.closed = True
            self._runtime.emit(ipc.CloseFromWorker(self._comm_id, json_bytes(data or {})))
            self._runtime.comms.pop(self._comm_id, None)


class WorkerRuntime:
    def __init__(
        self,
        spec: WorkerSpec,
        handler_cls: type[CommHandler],
        pull: zmq.Socket[bytes],
        push: zmq.Socket[bytes],
        alive_fd: int,
    ) -> None:
        self.spec = spec
        self.handler_cls = handler_cls
        self.pull = pull
        self.push = push
        self.alive_fd = alive_fd
        self.comms: dict[str, tuple[CommHandler, WorkerComm]] = {}
        self.parent_json = ipc.NO_PARENT
        self.backlog: deque[ipc.ToWorker] = deque()
        self.waiting: dict[str, Any] = {}  # rpc_id -> answer data once it arrived
        self.failed_reason: str | None = None
        self.running = True

    def emit(self, msg: ipc.FromWorker) -> None:
        self.push.send_multipart([self.spec.token, *ipc.encode(msg)])

    # -- receiving -----------------------------------------------------------------------
    def _receive(self) -> ipc.ToWorker | None:
        """Block for the next message; None when the main process is gone."""
        poller = zmq.Poller()
        poller.register(self.pull, zmq.POLLIN)
        poller.register(self.alive_fd, zmq.POLLIN)
        while True:
            events = dict(poller.poll())
            if self.pull in events:
                return ipc.decode_to_worker(self.pull.recv_multipart())
            if self.alive_fd in events:
                return None

    def run(self) -> None:
        while self.running:
            msg = self.backlog.popleft() if self.backlog else self._receive()
            if msg is None:
                log.info("main process is gone; worker %s exits", self.spec.name)
                return
            self.handle(msg)

    def handle(self, msg: ipc.ToWorker) -> None:
        request_id: str | None = None
        try:
            match msg:
                case ipc.OpenComm():
                    request_id = msg.request_id
                    self._open(msg)
                case ipc.RpcRequest():
                    request_id = msg.request_id
                    self._rpc(msg)
                case ipc.CommData():
                    request_id = msg.request_id
                    self._data(msg)
                case ipc.CloseComm():
                    request_id = msg.request_id
                    self._close(msg.comm_id, msg.reason)
                case ipc.FrontendAnswer():
                    # Not awaited (the request was abandoned): nothing to do.
                    request_id = msg.request_id
                    log.info("late frontend answer %s on %s dropped", msg.rpc_id, msg.comm_id)
                case ipc.FailFrontendRequests():
                    pass
                case ipc.StopWorker(reason=reason):
                    for comm_id in list(self.comms):
                        self._close(comm_id, reason)
                    self.running = False
        except Exception:
            log.exception("worker %s failed handling %s", self.spec.name, type(msg).__name__)
        finally:
            self.parent_json = ipc.NO_PARENT
            if request_id is not None:
                self.emit(ipc.Done(request_id))

    # -- handlers --------------------------------------------------------------------------
    def _open(self, msg: ipc.OpenComm) -> None:
        comm = WorkerComm(self, msg.comm_id, msg.target)
        if msg.restored and not self.handler_cls.restorable:
            self.emit(ipc.CloseFromWorker(msg.comm_id, json_bytes({"reason": "worker_restart"})))
            return
        handler = self.handler_cls(comm)
        self.comms[msg.comm_id] = (handler, comm)
        self.parent_json = msg.parent_json
        try:
            handler.on_open(json.loads(msg.data_json) if msg.data_json else {})
        except Exception as e:
            log.exception("on_open failed for %s", msg.comm_id)
            self.comms.pop(msg.comm_id, None)
            comm.closed = True
            self.emit(
                ipc.CloseFromWorker(
                    msg.comm_id, json_bytes({"reason": "open_failed", "message": str(e)})
                )
            )

    def _data(self, msg: ipc.CommData) -> None:
        entry = self.comms.get(msg.comm_id)
        if entry is None:
            log.warning("comm_msg for unknown comm %s dropped", msg.comm_id)
            return
        self.parent_json = msg.parent_json
        entry[0].on_message(json.loads(msg.data_json), msg.buffers)

    def _close(self, comm_id: str, reason: str) -> None:
        entry = self.comms.pop(comm_id, None)
        if entry is None:
            return
        entry[1].closed = True
        entry[0].on_close(reason)

    def _rpc(self, msg: ipc.RpcRequest) -> None:
        self.parent_json = msg.parent_json
        entry = self.comms.get(msg.comm_id)
        rpc_id: Any = None
        try:
            request = json.loads(msg.data_json)
        except ValueError as e:
            reply = _jsonrpc_error(None, PARSE_ERROR, f"invalid JSON: {e}")
        else:
            rpc_id = request.get("id") if isinstance(request, dict) else None
            reply = self._call(entry[0] if entry else None, request, rpc_id)
        self.emit(ipc.RpcReply(msg.comm_id, json.dumps(rpc_id), reply, msg.parent_json))

    def _call(self, handler: CommHandler | None, request: Any, rpc_id: Any) -> bytes:
        if handler is None:
            return _jsonrpc_error(rpc_id, INVALID_REQUEST, "comm is not open in this worker")
        method = request.get("method") if isinstance(request, dict) else None
        if not isinstance(method, str):
            return _jsonrpc_error(rpc_id, INVALID_REQUEST, "request has no method")
        fn = getattr(handler, f"rpc_{method}", None)
        if fn is None:
            return _jsonrpc_error(rpc_id, METHOD_NOT_FOUND, f"unknown method {method!r}")
        params = request.get("params")
        args: Sequence[Any] = ()
        kwargs: Mapping[str, Any] = {}
        if isinstance(params, dict):
            kwargs = params
        elif isinstance(params, list):
            args = params
        elif params is not None:
            return _jsonrpc_error(rpc_id, INVALID_PARAMS, "params must be an object or array")
        try:
            inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as e:
            return _jsonrpc_error(rpc_id, INVALID_PARAMS, f"{method}: {e}")
        try:
            result = fn(*args, **kwargs)
            return json_bytes({"jsonrpc": "2.0", "id": rpc_id, "result": result})
        except RpcError as e:
            return _jsonrpc_error(rpc_id, e.code, e.message)
        except FrontendError as e:
            return _jsonrpc_error(rpc_id, e.code, e.message)
        except Exception as e:  # noqa: BLE001 - any handler failure becomes -32603
            log.error(
                "rpc %s on %s raised:\n%s", method, handler.comm.comm_id, traceback.format_exc()
            )
            return _jsonrpc_error(rpc_id, INTERNAL_ERROR, f"{type(e).__name__}: {e}")

    # -- frontend-bound requests -------------------------------------------------------------
    def request_frontend(self, comm_id: str, method: str, params: Mapping[str, Any]) -> Any:
        rpc_id = uuid.uuid4().hex
        data = {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": dict(params)}
        self.emit(ipc.FrontendRequest(comm_id, json.dumps(rpc_id), json_bytes(data)))
        saved_parent = self.parent_json
        # Serve nothing else meanwhile: queue other requests for after the answer.
        while True:
            msg = self._receive()
            if msg is None:
                raise FrontendDisconnected("the kernel is gone")
            if isinstance(msg, ipc.FrontendAnswer) and msg.rpc_id == json.dumps(rpc_id):
                if msg.request_id is not None:
                    self.emit(ipc.Done(msg.request_id))
                self.parent_json = saved_parent
                answer = json.loads(msg.data_json)
                if isinstance(answer, dict) and "error" in answer:
                    err = answer["error"] or {}
                    raise FrontendError(
                        int(err.get("code", INTERNAL_ERROR)), str(err.get("message", ""))
                    )
                return answer.get("result") if isinstance(answer, dict) else answer
            if isinstance(msg, ipc.FailFrontendRequests):
                self.parent_json = saved_parent
                raise FrontendDisconnected(msg.reason)
            if isinstance(msg, ipc.StopWorker):
                self.backlog.append(msg)
                raise FrontendDisconnected(f"worker stopping: {msg.reason}")
            self.backlog.append(msg)
            if isinstance(msg, ipc.CloseComm) and msg.comm_id == comm_id:
                # The comm is going away: its close runs once this handler returns.
                self.parent_json = saved_parent
                raise FrontendDisconnected(f"comm closed: {msg.reason}")


class _OutputForwarder(threading.Thread):
    """Sends what the worker writes to fd 1/2 to the kernel log, on its own socket."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], spec: WorkerSpec, read_fd: int) -> None:
        super().__init__(name="mpkernel-worker-output", daemon=True)
        self._socket = ctx.socket(zmq.PUSH)
        self._socket.setsockopt(zmq.LINGER, 500)
        self._socket.connect(spec.out_addr)
        self._spec = spec
        self._read_fd = read_fd

    def run(self) -> None:
        try:
            self._forward()
        finally:
            self._socket.close()

    def _forward(self) -> None:
        with os.fdopen(self._read_fd, "rb", buffering=0) as pipe:
            pending = b""
            while True:
                data = pipe.read(65536)
                if not data:
                    break
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    text = line.decode("utf-8", "replace")
                    self._socket.send_multipart(
                        [self._spec.token, *ipc.encode(ipc.LogLine(logging.INFO, text))]
                    )


def _redirect_output(ctx: zmq.Context[zmq.Socket[bytes]], spec: WorkerSpec) -> _OutputForwarder:
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    forwarder = _OutputForwarder(ctx, spec, read_fd)
    forwarder.start()
    return forwarder


def _exit_with_parent(alive_fd: int) -> None:
    """Exit the moment the main process's end of the liveness pipe closes, even while a
    handler is busy or hung: no worker outlives its kernel."""

    def watch() -> None:
        select.select([alive_fd], [], [])
        os._exit(0)

    threading.Thread(target=watch, name="mpkernel-worker-watchdog", daemon=True).start()


# Workers yield the CPU to user code: a handler sorting ten million rows must not make
# the user's next cell sluggish (CFS weights nice 0 : nice 5 about 3 : 1).
WORKER_NICENESS = 5


def worker_entry(spec: WorkerSpec, alive: Any) -> None:
    """Process entry point (`multiprocess` target)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    _exit_with_parent(alive.fileno())
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    forwarder = _redirect_output(ctx, spec)
    logging.basicConfig(
        level=spec.log_level.upper(),
        format=f"worker {spec.name}[%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    pull = ctx.socket(zmq.PULL)
    pull.bind(spec.in_addr)
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 2000)
    push.setsockopt(zmq.SNDHWM, 0)
    push.connect(spec.out_addr)
    handler_cls = load_handler_class(spec.handler)
    runtime = WorkerRuntime(spec, handler_cls, pull, push, alive.fileno())
    runtime.emit(ipc.Ready(os.getpid(), handler_cls.persistent))
    try:
        runtime.run()
    finally:
        pull.close(linger=0)
        push.close()
        sys.stdout.flush()
        sys.stderr.flush()
        # Point fd 1/2 away from the pipe so the forwarder sees EOF and closes its socket;
        # only then can the context terminate.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        forwarder.join(timeout=2)
        with contextlib.suppress(zmq.ZMQError):
            ctx.term()
