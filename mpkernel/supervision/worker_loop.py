"""The loop inside a worker process: receive requests, call the handler, send results.

    main process PUSH ──(in endpoint)──> PULL ┐
    liveness pipe (EOF: main is gone) ────────┼─> [loop thread] ──> handler (on_open, rpc_*,
    wakeup fd <── outbox <── pool threads ────┘        │            on_message, on_close,
                                                       │            on_snapshot)
    main process PULL <─(out endpoint)── PUSH <────────┘

The loop thread alone touches the PULL and PUSH sockets. Handler code runs on it, one
message at a time, except `@background` RPC methods, which run on the runtime's pool; what
those send (and their replies) goes through the outbox, a FIFO that the loop drains before
it sends anything itself, so each thread's messages keep their order (I1).

Every frontend request the worker serves is a `WorkerRequest`. When it ends the loop sends
its reply (RPCs) and then `Done(request_id)`, after everything it sent (I3). A request is
cancelled when its comm closes (Done at once; what it sends later is dropped, I5), when
the main process invalidates it (`CancelRequests`: a -32603 error reply naming the reason,
then Done) or when the worker stops (the same, for every request).

While a handler on the loop thread waits for an answer (`request_frontend`,
`request_kernel`) the loop keeps draining the outbox and taking answers and
cancellations; other requests wait in the backlog until the handler returns.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import zmq
from mpkernel_workers.api import (
    CommHandler,
    FrontendDisconnected,
    FrontendError,
    KernelRequestError,
    runs_in_background,
    serving,
    serving_request,
)

from mpkernel.comms.jsonrpc import INTERNAL_ERROR, error_reply
from mpkernel.multipart import recv_frames, send_frames
from mpkernel.supervision import ipc
from mpkernel.supervision.requests import (
    BackgroundPool,
    BadRequest,
    RpcCall,
    Waiter,
    WorkerRequest,
    invoke,
    parse_rpc,
    resolve,
)
from mpkernel.supervision.worker_comm import SharedState, WorkerComm, events_parented_to
from mpkernel.wakeup import WakeupPipe
from mpkernel.wire.codec import json_bytes

log = logging.getLogger("mpkernel.worker")

BACKGROUND_THREADS = 4


class SnapshotSink(Protocol):
    """What the runtime needs of `mpkernel.snapshots.store.SnapshotStore`."""

    def apply(self, msg: ipc.Snapshot) -> Any: ...

    def close(self) -> None: ...


# Imported on first use: most workers never receive a snapshot or an object.
def _default_store() -> SnapshotSink:
    from mpkernel.snapshots.store import SnapshotStore

    return SnapshotStore()


def _decode_subject(payload: bytes) -> Any:
    from mpkernel.snapshots.codec import decode_object

    return decode_object(payload)


class _MainGone(Exception):
    """The main process's end of the liveness pipe closed."""


@dataclass(frozen=True, slots=True)
class _Finished:
    """A background request's handler returned; `reply` is its JSON-RPC reply (None: a
    task's request, which has none)."""

    request: WorkerRequest
    reply: bytes | None


_Outgoing = tuple[WorkerRequest | None, ipc.FromWorker] | _Finished | Callable[[], None]


class WorkerRuntime:
    """Serves one handler class's comms in this process (see the module docstring).

    Construct and `run()` it on the thread that owns `pull` and `push`.
    """

    def __init__(
        self,
        name: str,
        token: bytes,
        handler_cls: type[CommHandler],
        pull: zmq.Socket[bytes],
        push: zmq.Socket[bytes],
        alive_fd: int,
        store_factory: Callable[[], SnapshotSink] | None = None,
        decode_subject: Callable[[bytes], Any] | None = None,
    ) -> None:
        """`store_factory` and `decode_subject` default to `mpkernel.snapshots`' store and
        object codec."""
        self.name = name
        self._token = token
        self.handler_cls = handler_cls
        self.pull = pull
        self.push = push
        self.alive_fd = alive_fd
        self.comms: dict[str, tuple[CommHandler, WorkerComm]] = {}
        self.backlog: deque[ipc.ToWorker] = deque()
        self.running = True
        self._store_factory = store_factory or _default_store
        self._store: SnapshotSink | None = None
        self._decode_subject = decode_subject or _decode_subject
        self._requests: dict[WorkerRequest, None] = {}  # live requests, oldest first
        self._lock = threading.Lock()  # guards _waiters and the outbox's wakeup flag
        self._waiters: dict[str, Waiter] = {}
        self._outbox: deque[_Outgoing] = deque()
        self._wakeup = WakeupPipe()
        self._woken = False
        self._stopped = False
        self._loop_thread = threading.get_ident()
        self._pool = BackgroundPool(BACKGROUND_THREADS, f"mpkernel-worker-{name}")
        self.shared = SharedState().get  # `Comm.shared`
        self._poller = zmq.Poller()
        self._poller.register(pull, zmq.POLLIN)
        self._poller.register(alive_fd, zmq.POLLIN)
        self._poller.register(self._wakeup.read_fd, zmq.POLLIN)

    def current(self) -> WorkerRequest | None:
        request = serving_request()
        return request if isinstance(request, WorkerRequest) else None

    # -- sending -----------------------------------------------------------------------------
    def emit(self, msg: ipc.FromWorker, request: WorkerRequest | None = None) -> None:
        """Send `msg` from any thread; dropped if `request` is cancelled by the time the
        loop sends it."""
        if threading.get_ident() == self._loop_thread:
            self._drain()
            self._send(request, msg)
        else:
            self._post((request, msg))

    def on_loop(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the loop thread (now if called there), after what is queued."""
        if threading.get_ident() == self._loop_thread:
            self._drain()
            fn()
        else:
            self._post(fn)

    def _post(self, item: _Outgoing) -> None:
        self._outbox.append(item)
        with self._lock:
            # One wakeup byte per drain is enough; none once the loop is over (its pipe is
            # closed, and the fd number may already belong to something else).
            if self._woken or self._stopped:
                return
            self._woken = True
            self._wakeup.wake()

    def _drain(self) -> None:
        if self._stopped:
            return  # the loop is over: its pipe is closed, nothing is sent any more
        # A byte is in the pipe only while the flag is set (both change under the lock), so
        # a drain with nothing posted costs no system call. Read the byte, then clear the
        # flag: a post in between sees the flag set and writes nothing, but its item is
        # already queued and is taken below; the other order could leave the flag set with
        # no byte to wake us. Reading the flag unlocked is fine: a post missed here has
        # written its byte, and the next poll wakes for it.
        if self._woken:
            with self._lock:
                self._wakeup.clear()
                self._woken = False
        while self._outbox:
            item = self._outbox.popleft()
            if isinstance(item, tuple):
                self._send(*item)
            elif isinstance(item, _Finished):
                self._finish(item.request, item.reply)
            else:
                item()

    def _send(self, request: WorkerRequest | None, msg: ipc.FromWorker) -> None:
        if request is not None and request.cancelled:
            log.debug("%s of cancelled %r dropped", type(msg).__name__, request)
            return
        send_frames(self.push, [self._token, *ipc.encode(msg)])

    # -- request lifecycle (loop thread) ------------------------------------------------------
    def _finish(self, request: WorkerRequest, reply: bytes | None) -> None:
        """The request's work is over: its reply (RPCs), then Done (I3). Nothing if it was
        cancelled: its Done went out then."""
        self._requests.pop(request, None)
        if not request.finish():
            return
        if reply is not None:
            self._send(None, request.reply_msg(reply))
        if request.msg_id is not None:
            self._send(None, ipc.Done(request.msg_id))

    def _cancel(self, request: WorkerRequest, reason: str, answer: bool) -> None:
        if not request.cancel(reason):
            return
        self._requests.pop(request, None)
        self._fail_waiters(lambda w: w.request is request, reason)
        if answer and request.method is not None:
            reply = error_reply(request.rpc_id_json, INTERNAL_ERROR, f"request cancelled: {reason}")
            self._send(None, request.reply_msg(reply))
        if request.msg_id is not None:
            self._send(None, ipc.Done(request.msg_id))

    def _cancel_where(
        self, match: Callable[[WorkerRequest], bool], reason: str, answer: bool
    ) -> None:
        self._drain()
        for request in [r for r in self._requests if match(r)]:
            self._cancel(request, reason, answer)

    def _serve(self, request: WorkerRequest, work: Callable[[], bytes | None]) -> None:
        """Run `work` on the loop thread as `request`; then its reply and Done."""
        self._requests[request] = None
        reply: bytes | None = None
        try:
            with serving(request):
                reply = work()
        finally:
            self._drain()
            self._finish(request, reply)

    # -- receiving ----------------------------------------------------------------------------
    def _poll(self, timeout_ms: int | None) -> ipc.ToWorker | None:
        """One poll: drain the outbox if woken; the next message, or None if none came.
        Raises _MainGone when the main process is gone."""
        events = dict(self._poller.poll(timeout_ms))
        if self._wakeup.read_fd in events:
            self._drain()
        if self.pull in events:
            try:
                return ipc.decode_to_worker(recv_frames(self.pull))
            except ipc.IpcError as e:
                log.error("worker %s dropped a bad envelope: %s", self.name, e)
                return None
        if self.alive_fd in events:
            raise _MainGone
        return None

    def run(self) -> None:
        self._loop_thread = threading.get_ident()
        try:
            while self.running:
                msg = self.backlog.popleft() if self.backlog else self._poll(None)
                if msg is None:
                    continue
                try:
                    self.handle(msg)
                except Exception:  # the per-message boundary: the worker keeps serving
                    log.exception("worker %s failed handling %s", self.name, type(msg).__name__)
        except _MainGone:
            log.info("main process is gone; worker %s exits", self.name)
        finally:
            self._fail_waiters(lambda w: True, "worker exiting")
            self._pool.shutdown()
            if self._store is not None:
                self._store.close()
            with self._lock:
                self._stopped = True
                self._wakeup.close()

    def handle(self, msg: ipc.ToWorker) -> None:
        match msg:
            case ipc.OpenComm():
                self._open(msg)
            case ipc.RpcRequest():
                self._rpc(msg)
            case ipc.CommData():
                self._data(msg)
            case ipc.CloseComm():
                self._close(msg)
            case ipc.FrontendAnswer():
                self._frontend_answer(msg)
            case ipc.KernelAnswer():
                self._kernel_answer(msg)
            case ipc.FailFrontendRequests(reason=reason):
                self._fail_waiters(lambda w: w.frontend, reason)
            case ipc.CancelRequests(reason=reason, comm_id=comm_id):
                self._cancel_where(lambda r: comm_id in (None, r.comm_id), reason, answer=True)
            case ipc.Snapshot():
                self._snapshot(msg)
            case ipc.StopWorker(reason=reason):
                self._stop(reason)
                for comm_id in list(self.comms):
                    handler, comm = self.comms.pop(comm_id)
                    comm.closed = True
                    self._call_on_close(handler, comm_id, reason)
                self.running = False
            case _:
                raise TypeError(f"not a message for a worker: {msg!r}")

    def _frontend_answer(self, msg: ipc.FrontendAnswer) -> None:
        waiter = self._pop_waiter(msg.rpc_id)
        if waiter is None:
            log.info("late frontend answer %s on %s dropped", msg.rpc_id, msg.comm_id)
        else:
            try:
                answer = json.loads(msg.data_json)
            except ValueError as e:
                waiter.fail(FrontendError(INTERNAL_ERROR, f"the answer is not JSON: {e}"))
            else:
                waiter.frontend_answered(answer)
        if msg.request_id is not None:
            self._send(None, ipc.Done(msg.request_id))

    def _kernel_answer(self, msg: ipc.KernelAnswer) -> None:
        waiter = self._pop_waiter(msg.call_id)
        if waiter is None:
            log.info("late kernel answer %s dropped", msg.call_id)
        elif msg.error is not None:
            waiter.fail(KernelRequestError(msg.error))
        else:
            try:
                waiter.resolve(json.loads(msg.data_json) if msg.data_json else None)
            except ValueError as e:
                waiter.fail(KernelRequestError(f"the kernel's answer is not JSON: {e}"))

    # -- comms --------------------------------------------------------------------------------
    def _open(self, msg: ipc.OpenComm) -> None:
        request = WorkerRequest(msg.comm_id, msg.parent_json, msg.request_id)
        # Events its handler sends on opening are news about what opened it (a cell's
        # viewer, a fresh fork after a cell changed the table): parented to that.
        with events_parented_to(msg.parent_json):
            self._serve(request, lambda: self._open_work(msg))

    def _open_work(self, msg: ipc.OpenComm) -> None:
        if msg.restored and not self.handler_cls.restorable:
            self._send(
                None, ipc.CloseFromWorker(msg.comm_id, json_bytes({"reason": "worker_restart"}))
            )
            return
        comm: WorkerComm | None = None
        try:
            subject = self._decode_subject(msg.payload) if msg.payload else None
            comm = WorkerComm(self, msg.comm_id, msg.target, subject)
            handler = self.handler_cls(comm)
            self.comms[msg.comm_id] = (handler, comm)
            handler.on_open(json.loads(msg.data_json) if msg.data_json else {})
        except Exception as e:  # handler code, decoding: the comm closes, the worker lives
            what = "on_open" if comm is not None else "decoding the comm's object"
            log.exception("%s failed for %s", what, msg.comm_id)
            self.comms.pop(msg.comm_id, None)
            if comm is not None:
                comm.closed = True
            data = {"reason": "open_failed", "message": f"{what}: {type(e).__name__}: {e}"}
            self._send(None, ipc.CloseFromWorker(msg.comm_id, json_bytes(data)))

    def _data(self, msg: ipc.CommData) -> None:
        request = WorkerRequest(msg.comm_id, msg.parent_json, msg.request_id)
        entry = self.comms.get(msg.comm_id)
        if entry is None:
            log.warning("comm_msg for unknown comm %s dropped", msg.comm_id)
            self._serve(request, lambda: None)
            return

        def work() -> None:
            try:
                entry[0].on_message(json.loads(msg.data_json), msg.buffers)
            except Exception:  # handler code: logged; the request still ends with its Done
                log.exception("on_message failed for %s", msg.comm_id)

        self._serve(request, work)

    def _close(self, msg: ipc.CloseComm) -> None:
        """The main process closed the comm: its requests end now (Done, no reply, I5),
        then `on_close`."""
        self._cancel_where(lambda r: r.comm_id == msg.comm_id, msg.reason, answer=False)
        self._fail_waiters(lambda w: w.comm_id == msg.comm_id, f"comm closed: {msg.reason}")
        request = WorkerRequest(msg.comm_id, ipc.NO_PARENT, msg.request_id)
        entry = self.comms.pop(msg.comm_id, None)
        if entry is None:
            self._serve(request, lambda: None)
            return
        entry[1].closed = True
        self._serve(request, lambda: self._call_on_close(entry[0], msg.comm_id, msg.reason))

    def _call_on_close(self, handler: CommHandler, comm_id: str, reason: str) -> None:
        try:
            handler.on_close(reason)
        except Exception:  # handler code: the close goes on
            log.exception("on_close failed for %s", comm_id)

    def close_from_handler(self, comm: WorkerComm, data_json: bytes) -> None:
        """Loop thread: the handler closed its comm (the main process publishes the close,
        I5); its requests end here."""
        if self.comms.pop(comm.comm_id, None) is None:
            return
        self._send(None, ipc.CloseFromWorker(comm.comm_id, data_json))
        self._cancel_where(lambda r: r.comm_id == comm.comm_id, "comm closed by its handler", False)

    def _stop(self, reason: str) -> None:
        self._cancel_where(lambda r: True, f"worker stopping: {reason}", answer=True)
        self._fail_waiters(lambda w: True, f"worker stopping: {reason}")

    # -- RPCs ---------------------------------------------------------------------------------
    def _rpc(self, msg: ipc.RpcRequest) -> None:
        entry = self.comms.get(msg.comm_id)
        try:
            call = parse_rpc(msg.data_json)
            fn = resolve(entry[0] if entry is not None else None, call)
        except BadRequest as e:
            request = WorkerRequest(msg.comm_id, msg.parent_json, msg.request_id, e.rpc_id_json, "")
            self._serve(request, e.reply)
            return
        request = WorkerRequest(
            msg.comm_id, msg.parent_json, msg.request_id, call.rpc_id_json, call.method
        )
        if runs_in_background(fn):
            self._requests[request] = None
            self._pool.submit(lambda: self._run_background(request, fn, call))
        else:
            self._serve(request, lambda: invoke(fn, call, msg.comm_id))

    def _run_background(
        self, request: WorkerRequest, fn: Callable[..., Any], call: RpcCall
    ) -> None:
        """Pool thread: run the method; the loop sends its reply and Done after what it
        sent (they share the outbox)."""
        with serving(request):
            reply = invoke(fn, call, request.comm_id)
        self._post(_Finished(request, reply))

    # -- handlers' tasks and shared state -------------------------------------------------------
    def start_task(self, comm_id: str, work: Callable[[], None], name: str) -> None:
        """Any thread: `work` on a thread of its own, as a request of `comm_id` (cancelled
        with the comm's other requests); its end is its request's end."""
        request = WorkerRequest(comm_id, ipc.NO_PARENT, None)

        def run() -> None:
            try:
                with serving(request):
                    work()
            except Exception:  # a task's boundary: its comm and the worker go on
                log.exception("task %s on %s failed", name, comm_id)
            finally:
                self._post(_Finished(request, None))

        def start() -> None:
            self._requests[request] = None
            threading.Thread(target=run, name=f"mpkernel-task-{name}", daemon=True).start()

        self.on_loop(start)

    # -- answers awaited by handlers ------------------------------------------------------------
    def _add_waiter(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters[waiter.key] = waiter
        # Registered first, checked second: a cancellation that this check misses fails
        # the waiter itself (it sets the flag before it scans the waiters).
        if waiter.request is not None and waiter.request.cancelled:
            waiter.give_up(waiter.request.cancel_reason or "cancelled")

    def _pop_waiter(self, key: str) -> Waiter | None:
        with self._lock:
            return self._waiters.pop(key, None)

    def _fail_waiters(self, match: Callable[[Waiter], bool], reason: str) -> None:
        with self._lock:
            failing = [w for w in self._waiters.values() if match(w)]
            for w in failing:
                del self._waiters[w.key]
        for w in failing:
            w.give_up(reason)

    def _await(self, waiter: Waiter, timeout_s: float | None) -> bool:
        """Wait for `waiter` on the calling thread; False if `timeout_s` passed first."""
        if threading.get_ident() != self._loop_thread:
            return waiter.wait(timeout_s)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not waiter.done:
            timeout_ms = None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                timeout_ms = max(1, int(left * 1000))
            try:
                msg = self._poll(timeout_ms)
            except _MainGone:
                self._fail_waiters(lambda w: True, "the kernel is gone")
                self.running = False
                break
            if msg is not None:
                self._while_waiting(msg)
        return True

    def _while_waiting(self, msg: ipc.ToWorker) -> None:
        """A message that came while a handler on the loop thread waits: answers and
        cancellations are taken now, everything else after the handler returns."""
        match msg:
            case (
                ipc.FrontendAnswer()
                | ipc.KernelAnswer()
                | ipc.FailFrontendRequests()
                | ipc.CancelRequests()
            ):
                self.handle(msg)
            case ipc.CloseComm():
                self._cancel_where(lambda r: r.comm_id == msg.comm_id, msg.reason, answer=False)
                self._fail_waiters(lambda w: w.comm_id == msg.comm_id, f"comm closed: {msg.reason}")
                self.backlog.append(msg)
            case ipc.StopWorker():
                self._stop(msg.reason)
                self.backlog.append(msg)
            case _:
                self.backlog.append(msg)

    def request_frontend(self, comm_id: str, method: str, params: Mapping[str, Any]) -> Any:
        request = self.current()
        if request is not None and request.cancelled:
            raise FrontendDisconnected(f"request cancelled: {request.cancel_reason}")
        rpc_id = uuid.uuid4().hex
        waiter = Waiter(json.dumps(rpc_id), comm_id, request, frontend=True)
        self._add_waiter(waiter)
        data = {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": dict(params)}
        self.emit(ipc.FrontendRequest(comm_id, waiter.key, json_bytes(data)))
        self._await(waiter, None)
        return waiter.outcome()

    def request_kernel(
        self, comm_id: str, method: str, params: Mapping[str, Any], timeout_s: float
    ) -> Any:
        request = self.current()
        if request is not None and request.cancelled:
            raise KernelRequestError(f"request cancelled: {request.cancel_reason}")
        call_id = uuid.uuid4().hex
        waiter = Waiter(call_id, comm_id, request, frontend=False)
        self._add_waiter(waiter)
        parent = request.parent_json if request is not None else ipc.NO_PARENT
        self.emit(ipc.KernelRequest(call_id, method, json_bytes(dict(params)), parent, timeout_s))
        if not self._await(waiter, timeout_s):
            self._pop_waiter(call_id)
            # The answer may have landed between the deadline and the pop.
            if not waiter.done:
                raise KernelRequestError(
                    f"kernel request {method!r} got no answer within {timeout_s} s",
                    timed_out=True,
                )
        return waiter.outcome()

    # -- snapshots ------------------------------------------------------------------------------
    def _snapshot(self, msg: ipc.Snapshot) -> None:
        """Apply, acknowledge (so that the main process may send the next one), then tell
        the handlers that consume snapshots; a handler failure is logged, not fatal."""
        if self._store is None:
            self._store = self._store_factory()
        snapshot = None
        try:
            snapshot = self._store.apply(msg)
        except Exception:  # a corrupt snapshot: still acknowledged, so the kernel frees it
            log.exception("snapshot %d could not be applied", msg.version)
        self._send(None, ipc.SnapshotTaken(msg.version))
        if snapshot is not None and self.handler_cls.snapshots:
            with events_parented_to(msg.parent_json):
                for comm_id, (handler, _) in list(self.comms.items()):
                    try:
                        handler.on_snapshot(snapshot)
                    except Exception:  # handler code: the other comms still get the snapshot
                        log.exception("on_snapshot failed for %s", comm_id)
        if msg.request_id is not None:
            # Behind what the handlers sent about it: the execution's idle may go (I3).
            self._send(None, ipc.Done(msg.request_id))
