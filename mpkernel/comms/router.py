"""The comm router: the io thread's state machine for comms served by workers.

    frontend comm_open/msg/close ─┐                      ┌─> funnel items (IOPub, I1-I5)
    main-thread comm items ───────┼─> CommRouter ────────┼─> messages to workers
    worker messages, exits ───────┘   (no I/O, no clock) └─> kernel requests (main thread)

It takes the frontend's comm_open / comm_msg / comm_close for worker targets straight
from the shell socket (they never wait for user code) and sends them to the worker with
the frontend's header (I4: no msg_id -> header table; the header comes back on the
reply). It keeps the registry (I5: only the main process publishes comm_open and
comm_close), the RPCs pending per worker, and the Done markers each worker owes per
request: a request's idle goes only after every involved worker's `Done(request)`, which
travels the pipe behind the worker's own messages (I3). When a worker dies it publishes,
in this order, an error reply for every pending RPC, a comm_close for each of the
worker's comms, then the idles the worker owed (I6).

Sans-I/O: everything leaves through a `RouterSink` (the io thread implements it over the
funnel and the supervisor; unit tests record it). Time comes in as arguments.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mpkernel.comms import jsonrpc
from mpkernel.comms.books import PendingRpc, WorkerBook
from mpkernel.comms.brackets import RequestBrackets
from mpkernel.comms.health import HEALTH_TARGET, health_reply, health_status
from mpkernel.comms.ports import RouterSink, Worker
from mpkernel.comms.registry import CommEntry, CommRegistry
from mpkernel.comms.takeovers import Takeovers
from mpkernel.config.model import Config, WorkerConfig
from mpkernel.funnel import items
from mpkernel.funnel.items import CommItem, Publish, PublishRaw
from mpkernel.kernel.work import KernelWork
from mpkernel.snapshots.dispatch import SnapshotDispatcher
from mpkernel.supervision import ipc
from mpkernel.supervision.errors import WorkerUnavailable
from mpkernel.supervision.policy import WorkerExit, WorkerStats
from mpkernel.wire import Header, Message, WireError, json_bytes

if TYPE_CHECKING:
    from mpkernel.supervision.fork import ForkedWorker

log = logging.getLogger(__name__)

__all__ = ["HEALTH_TARGET", "CommRouter", "RouterSink", "Worker"]


def comm_msg_content(comm_id: str, data_json: bytes) -> bytes:
    return b'{"comm_id":' + json_bytes(comm_id) + b',"data":' + data_json + b"}"


class CommRouter:
    def __init__(
        self,
        config: Config,
        sink: RouterSink,
        snapshots: SnapshotDispatcher,
        health_extra: Callable[[], dict[str, Any]],
        frontend_present: Callable[[], bool],
    ) -> None:
        self.config = config
        self.registry = CommRegistry()
        self._sink = sink
        self._snapshots = snapshots
        self._health_extra = health_extra
        self._frontend_present = frontend_present
        self._workers_stats: Callable[[], list[WorkerStats]] = list
        self.books: dict[str, WorkerBook] = {}
        self._takeovers = Takeovers(config, self.registry, sink, self._book, self._close_comm)
        self._brackets = RequestBrackets(sink.emit)
        # execute msg_id -> until when its idle waits for the snapshot's consumers
        self._snapshot_waits: dict[str, float] = {}
        self._snapshot_wait_s = config.kernel.post_execute_budget_ms / 1000
        self._parent_cache: tuple[bytes, Header | None] = (b"", None)

    def set_worker_stats(self, stats: Callable[[], list[WorkerStats]]) -> None:
        self._workers_stats = stats

    def _book(self, key: str) -> WorkerBook:
        book = self.books.get(key)
        if book is None:
            book = self.books[key] = WorkerBook()
        return book

    # -- publishing and Done accounting (I3) -------------------------------------------------
    def _publish(self, msg_type: str, content: dict[str, Any], parent: Header | None) -> None:
        self._sink.emit(Publish(msg_type, content, parent))

    def _publish_comm(
        self,
        msg_type: str,
        comm_id: str,
        data_json: bytes,
        parent: Header | None,
        buffers: tuple[bytes, ...] = (),
    ) -> None:
        self._sink.emit(PublishRaw(msg_type, comm_msg_content(comm_id, data_json), parent, buffers))

    def idle_may_go(self, parent: Header | None) -> bool:
        """The funnel asks before it publishes an idle from the main thread."""
        return self._brackets.may_idle(parent)

    def _send(self, key: str, msg: ipc.ToWorker, request_id: str | None) -> None:
        if request_id is not None:
            self._brackets.owe(request_id)
            self._book(key).owe(request_id)
        self._sink.send(key, msg)

    def _forward(
        self,
        key: str,
        kind: type[ipc.CommData | ipc.RpcRequest],
        comm_id: str,
        data: Any,
        msg: Message[dict[str, Any]],
    ) -> None:
        """Frontend data to the worker with the frontend's header (I4)."""
        parent = msg.header
        request = kind(
            comm_id, json_bytes(data), json_bytes(parent.as_dict()), parent.msg_id, msg.buffers
        )
        self._send(key, request, parent.msg_id)

    def _parent(self, parent_json: bytes) -> Header | None:
        if not parent_json:
            return None
        cached_json, cached = self._parent_cache
        if parent_json == cached_json:
            return cached
        try:
            parent = Header.from_dict(json.loads(parent_json))
        except (ValueError, TypeError, WireError):
            log.warning("worker sent an unreadable parent header; sent without parent")
            parent = None
        self._parent_cache = (parent_json, parent)
        return parent

    def _close_comm(self, comm_id: str, data: dict[str, Any], parent: Header | None = None) -> None:
        self._publish("comm_close", {"comm_id": comm_id, "data": data}, parent)

    # -- shell requests (frontend -> kernel) --------------------------------------------------
    def route_shell(self, msg: Message[dict[str, Any]], now: float) -> bool:
        """Handle a comm request here if a worker or the kernel serves it; else False
        (the main thread handles it: in-process comms and unknown targets)."""
        msg_type = msg.msg_type
        content = msg.content
        if msg_type == "comm_open":
            target = content.get("target_name")
            if target == HEALTH_TARGET or (
                isinstance(target, str) and self.config.worker_for_target(target) is not None
            ):
                self._open_from_frontend(msg)
                return True
            return False
        if msg_type in ("comm_msg", "comm_close"):
            entry = self.registry.get(str(content.get("comm_id")))
            if entry is None or entry.host == "main":
                return False
            if msg_type == "comm_msg":
                self._msg_from_frontend(msg, entry, now)
            else:
                self._close_from_frontend(msg, entry)
            return True
        return False

    def _open_from_frontend(self, msg: Message[dict[str, Any]]) -> None:
        parent = msg.header
        content = msg.content
        comm_id = str(content.get("comm_id", ""))
        target = str(content.get("target_name"))
        self._brackets.busy(parent)
        try:
            if not comm_id or comm_id in self.registry:
                self._close_comm(
                    comm_id,
                    {"reason": "invalid_comm_id", "message": "empty or already open"},
                    parent,
                )
                return
            if target == HEALTH_TARGET:
                self.registry.add(CommEntry(comm_id, target, "health", opened_by="frontend"))
                return
            cfg = self.config.worker_for_target(target)
            assert cfg is not None
            key = self._sink.acquire(cfg, comm_id)
            data_json = json_bytes(content.get("data") or {})
            self.registry.add(
                CommEntry(comm_id, target, "worker", key, "frontend", data_json, cfg.persistent)
            )
            self._send(
                key,
                ipc.OpenComm(
                    comm_id, target, data_json, json_bytes(parent.as_dict()), parent.msg_id
                ),
                parent.msg_id,
            )
        except WorkerUnavailable as e:
            log.warning("comm_open %s for %s refused: %s", comm_id, target, e)
            self._close_comm(comm_id, {"reason": "worker_unavailable", "message": str(e)}, parent)
        finally:
            self._brackets.end(parent)

    def _msg_from_frontend(
        self, msg: Message[dict[str, Any]], entry: CommEntry, now: float
    ) -> None:
        parent = msg.header
        data = msg.content.get("data")
        kind = jsonrpc.classify(data)
        self._brackets.busy(parent)
        try:
            if entry.host == "health":
                if isinstance(data, dict) and kind == "request":
                    reply = health_reply(data, self.health_status)
                    self._publish_comm("comm_msg", entry.comm_id, reply, parent)
                return
            assert entry.worker_key is not None
            key = entry.worker_key
            if not self._sink.live(key):
                if isinstance(data, dict) and kind == "request":
                    why = f"the {entry.target} worker is restarting; try again"
                    self._rpc_error(entry, data, jsonrpc.INTERNAL_ERROR, why, parent)
                return
            if isinstance(data, dict) and kind == "invalid":
                why = "'method' must be a string"
                self._rpc_error(entry, data, jsonrpc.INVALID_REQUEST, why, parent)
            elif isinstance(data, dict) and kind == "request":
                self._rpc_from_frontend(msg, entry, key, data, now)
            elif isinstance(data, dict) and kind == "answer":
                self._answer_from_frontend(entry, key, data, parent)
            else:
                self._forward(key, ipc.CommData, entry.comm_id, data, msg)
        finally:
            self._brackets.end(parent)

    def _rpc_error(
        self, entry: CommEntry, data: dict[str, Any], code: int, message: str, parent: Header
    ) -> None:
        reply = jsonrpc.error_reply(jsonrpc.request_id_json(data), code, message)
        self._publish_comm("comm_msg", entry.comm_id, reply, parent)

    def _rpc_from_frontend(
        self,
        msg: Message[dict[str, Any]],
        entry: CommEntry,
        key: str,
        data: dict[str, Any],
        now: float,
    ) -> None:
        parent = msg.header
        timeout = self._worker_config(entry).rpc_timeout_s
        self._book(key).pending[parent.msg_id] = PendingRpc(
            entry.comm_id,
            jsonrpc.request_id_json(data),
            parent,
            now + timeout if timeout else None,
        )
        self._forward(key, ipc.RpcRequest, entry.comm_id, data, msg)

    def _answer_from_frontend(
        self, entry: CommEntry, key: str, data: dict[str, Any], parent: Header
    ) -> None:
        answer = (entry.comm_id, json.dumps(data["id"]))
        book = self._book(key)
        if answer not in book.frontend_requests:
            log.warning(
                "answer %s on comm %s matches no pending request; dropped", answer[1], answer[0]
            )
            return
        book.frontend_requests.discard(answer)
        self._send(
            key,
            ipc.FrontendAnswer(entry.comm_id, answer[1], json_bytes(data), parent.msg_id),
            parent.msg_id,
        )

    def _worker_config(self, entry: CommEntry) -> WorkerConfig:
        cfg = self.config.worker_for_target(entry.target)
        assert cfg is not None, f"comm {entry.comm_id} has no configured worker"
        return cfg

    def _close_from_frontend(self, msg: Message[dict[str, Any]], entry: CommEntry) -> None:
        parent = msg.header
        self._brackets.busy(parent)
        try:
            self.registry.remove(entry.comm_id)
            self._takeovers.comm_gone(entry.comm_id)
            key = entry.worker_key
            if entry.host != "worker" or key is None or not self._sink.live(key):
                return
            # The worker cancels what runs on this comm when the close reaches it, and
            # fails a frontend-bound request waiting on it; nothing to route back any more.
            self._book(key).forget_comm(entry.comm_id)
            self._send(
                key, ipc.CloseComm(entry.comm_id, "frontend_closed", parent.msg_id), parent.msg_id
            )
            if self._worker_config(entry).processes == "per-comm":
                self._sink.stop(key, "its comm was closed")
        finally:
            self._brackets.end(parent)

    def health_status(self) -> dict[str, Any]:
        return health_status(self.registry, self._workers_stats(), self._health_extra())

    # -- snapshots -------------------------------------------------------------------------------
    def _send_snapshots(self, sends: list[tuple[str, ipc.Snapshot]], now: float) -> None:
        """A snapshot that follows an execution is part of its bracket (I3): each consumer
        owes a Done once its handlers have seen it, and the execution's idle waits for
        that, but only within the post-execute budget: a busy pane never holds the console
        (its update then follows the idle, still parented to the execution)."""
        for key, msg in sends:
            self._send(key, msg, msg.request_id)
            if msg.request_id is not None:
                self._snapshot_waits.setdefault(msg.request_id, now + self._snapshot_wait_s)

    def timeout_ms(self, now: float) -> int | None:
        """How long until `on_timer` has something to do (None: nothing pending)."""
        if not self._snapshot_waits:
            return None
        return max(0, int((min(self._snapshot_waits.values()) - now) * 1000) + 1)

    def on_timer(self, now: float) -> None:
        for request_id, until in list(self._snapshot_waits.items()):
            if not self._brackets.owes(request_id):
                del self._snapshot_waits[request_id]
            elif now >= until:
                del self._snapshot_waits[request_id]
                log.info("idle of %s no longer waits for snapshot consumers", request_id)
                self._brackets.release(request_id)

    # -- deadlines ------------------------------------------------------------------------------
    def overdue(self, now: float) -> list[tuple[str, str]]:
        """Workers with an RPC past its `rpc_timeout_s`: (worker key, reason to kill it)."""
        out: list[tuple[str, str]] = []
        for key, book in self.books.items():
            for rpc in book.pending.values():
                if rpc.deadline is not None and now > rpc.deadline:
                    out.append((key, f"RPC on comm {rpc.comm_id} hung past rpc_timeout_s"))
                    break
        return out

    # -- frontend disconnects -------------------------------------------------------------------
    def frontend_gone(self, reason: str) -> None:
        """The last frontend left: what waits on it fails now, and the requests it sent
        are cancelled (their replies could reach nobody); comms stay until
        `close_for_disconnect` (the grace period may keep them)."""
        for key, book in self.books.items():
            if book.frontend_requests:
                book.frontend_requests.clear()
                self._sink.send(key, ipc.FailFrontendRequests(reason))
            if book.pending:
                self._sink.send(key, ipc.CancelRequests(reason))

    def close_for_disconnect(self) -> None:
        """Close every comm not marked persistent; their handlers clean up. No comm_close is
        published: nobody is listening, and a reconnecting frontend asks comm_info."""
        closed = 0
        for entry in self.registry:
            if entry.persistent or entry.host == "main":
                continue
            self.registry.remove(entry.comm_id)
            self._takeovers.comm_gone(entry.comm_id)
            closed += 1
            key = entry.worker_key
            if entry.host != "worker" or key is None or not self._sink.live(key):
                continue
            self._sink.send(key, ipc.CloseComm(entry.comm_id, "frontend_disconnected", None))
            if self._worker_config(entry).processes == "per-comm":
                self._sink.stop(key, "its comm was closed")
        log.info("frontend disconnect: closed %d comms, kept %d", closed, len(self.registry))

    # -- items from the main thread -------------------------------------------------------------
    def comm_item(self, item: CommItem, now: float) -> None:
        match item:
            case items.CommInfo():
                self._sink.emit(
                    items.Reply(
                        "shell",
                        item.identities,
                        "comm_info_reply",
                        {"status": "ok", "comms": self.registry.info(item.target_name)},
                        item.parent,
                        {"status": "ok"},
                    )
                )
            case items.RegisterComm():
                self.registry.add(CommEntry(item.comm_id, item.target, "main", opened_by="kernel"))
            case items.UnregisterComm():
                self.registry.remove(item.comm_id)
            case items.OpenBackendComm():
                cfg = self.config.worker_for_target(item.target)
                if cfg is not None:
                    self._open_backend(
                        cfg, item.comm_id, item.data_json, item.parent, item.payload, item.forked
                    )
                else:
                    log.error("backend comm for unknown target %s not opened", item.target)
            case items.ReplaceViewer():
                self._takeovers.replace(item)
            case items.SnapshotReady():
                self._send_snapshots(self._snapshots.offer(item), now)
            case items.KernelAnswerItem():
                self._sink.send(
                    item.worker_key, ipc.KernelAnswer(item.call_id, item.result_json, item.error)
                )

    def _open_backend(
        self,
        cfg: WorkerConfig,
        comm_id: str,
        data_json: bytes,
        parent: Header | None,
        payload: bytes = b"",
        forked: ForkedWorker | None = None,
    ) -> None:
        content = b'{"comm_id":' + json_bytes(comm_id) + b',"target_name":' + json_bytes(cfg.target)
        content += b',"data":' + data_json + b"}"
        # I5: the comm_open is on IOPub before anything the worker sends on this comm.
        self._sink.emit(PublishRaw("comm_open", content, parent))
        try:
            key = self._sink.acquire(cfg, comm_id, forked)
        except WorkerUnavailable as e:
            self._close_comm(comm_id, {"reason": "worker_unavailable", "message": str(e)}, parent)
            return
        self.registry.add(
            CommEntry(comm_id, cfg.target, "worker", key, "kernel", data_json, cfg.persistent)
        )
        if forked is not None:
            self._takeovers.opened(comm_id, forked)
        request_id = parent.msg_id if parent is not None else None
        parent_json = json_bytes(parent.as_dict()) if parent is not None else ipc.NO_PARENT
        self._send(
            key,
            ipc.OpenComm(comm_id, cfg.target, data_json, parent_json, request_id, payload=payload),
            request_id,
        )

    # -- SupervisorListener (worker -> kernel) --------------------------------------------------
    def on_worker_ready(self, handle: Worker, ready: ipc.Ready) -> None:
        if ready.persistent:
            for entry in self.registry.on_worker(handle.key):
                entry.persistent = True
        sends = self._snapshots.worker_ready(handle.key, ready.snapshots)
        for key, msg in sends:
            # Old news for a new consumer: not part of the execution it once followed.
            self._sink.send(key, msg._replace(parent_json=ipc.NO_PARENT, request_id=None))
        if ready.snapshots and not sends:
            # A first consumer (or none fresh to give): it gets the whole namespace now,
            # not after the user's next execution.
            self._sink.request_snapshot()

    def on_worker_message(self, handle: Worker, msg: ipc.FromWorker, now: float) -> None:
        key = handle.key
        match msg:
            case ipc.CommSend():
                if msg.comm_id in self.registry:
                    self._publish_comm(
                        "comm_msg",
                        msg.comm_id,
                        msg.data_json,
                        self._parent(msg.parent_json),
                        msg.buffers,
                    )
                else:
                    log.info("data from %s on closed comm %s dropped", handle.wid, msg.comm_id)
            case ipc.RpcReply():
                parent = self._parent(msg.parent_json)
                if parent is not None:
                    self._book(key).pending.pop(parent.msg_id, None)
                    self._takeovers.worker_answered(key)
                if msg.comm_id in self.registry:
                    self._publish_comm("comm_msg", msg.comm_id, msg.data_json, parent)
                else:
                    log.info("reply on closed comm %s dropped", msg.comm_id)
            case ipc.Done():
                owed = self._book(key).done(msg.request_id)
                self._takeovers.worker_answered(key)
                if owed:
                    self._brackets.settle(msg.request_id)
            case ipc.FrontendRequest():
                if msg.comm_id not in self.registry or not self._frontend_present():
                    # Nobody could answer: fail it now rather than let the worker wait.
                    self._sink.send(key, ipc.FailFrontendRequests("frontend_disconnected"))
                else:
                    self._book(key).frontend_requests.add((msg.comm_id, msg.rpc_id))
                    self._publish_comm("comm_msg", msg.comm_id, msg.data_json, None)
            case ipc.KernelRequest():
                self._kernel_request(key, msg, now)
            case ipc.SnapshotTaken():
                self._send_snapshots(self._snapshots.taken(key, msg.version), now)
            case ipc.OpenFromWorker():
                cfg = self.config.worker_for_target(msg.target)
                if cfg is None:
                    log.error("worker %s asked to open unknown target %s", handle.wid, msg.target)
                else:
                    self._open_backend(cfg, msg.comm_id, msg.data_json, None)
            case ipc.CloseFromWorker():
                self._book(key).forget_comm(msg.comm_id)
                owner = self.registry.get(msg.comm_id)
                if owner is not None and owner.worker_key == key:
                    self.registry.remove(msg.comm_id)
                    self._takeovers.comm_gone(msg.comm_id)
                    self._publish_comm("comm_close", msg.comm_id, msg.data_json, None)
            case ipc.SaveState():
                owner = self.registry.get(msg.comm_id)
                if owner is not None and owner.worker_key == key:
                    owner.state_json = msg.data_json
            case ipc.LogLine():
                log.log(msg.level, "[%s] %s", handle.wid, msg.text)
            case _:
                log.warning("unexpected %s from worker %s", type(msg).__name__, handle.wid)

    def _kernel_request(self, key: str, msg: ipc.KernelRequest, now: float) -> None:
        try:
            params = json.loads(msg.data_json) if msg.data_json else {}
        except ValueError as e:
            self._sink.send(key, ipc.KernelAnswer(msg.call_id, b"null", f"bad params: {e}"))
            return
        if not isinstance(params, dict):
            self._sink.send(key, ipc.KernelAnswer(msg.call_id, b"null", "params: not an object"))
            return
        self._sink.kernel_request(
            KernelWork(
                key, msg.call_id, msg.method, params, msg.parent_json, now + max(0, msg.timeout_s)
            )
        )

    def on_worker_exit(self, handle: Worker, exit: WorkerExit, restarting: bool) -> None:
        key = handle.key
        reason, crashed = exit.reason, exit.unexpected
        name = handle.config.name
        book = self.books.pop(key, WorkerBook())
        self._snapshots.worker_gone(key)
        # A viewer whose fresh fork waits for this worker moves to it now (not closed).
        self._takeovers.worker_answered(key)
        if crashed:
            for rpc in book.pending.values():
                self._publish_comm(
                    "comm_msg",
                    rpc.comm_id,
                    jsonrpc.error_reply(
                        rpc.rpc_id_json, jsonrpc.INTERNAL_ERROR, f"worker {name} crashed: {reason}"
                    ),
                    rpc.parent,
                )
        for entry in self.registry.on_worker(key):
            if crashed and restarting and entry.persistent:
                continue
            self.registry.remove(entry.comm_id)
            self._takeovers.comm_gone(entry.comm_id)
            if crashed:
                self._close_comm(
                    entry.comm_id, {"reason": "worker_crashed", "worker": name, "exit": reason}
                )
            else:
                self._close_comm(entry.comm_id, {"reason": "worker_stopped", "worker": name})
        for request_id, count in book.owed.items():
            self._brackets.settle(request_id, count)

    def on_worker_restarted(self, old_key: str, handle: Worker) -> None:
        for entry in self.registry.on_worker(old_key):
            entry.worker_key = handle.key
            self._send(
                handle.key,
                ipc.OpenComm(
                    entry.comm_id,
                    entry.target,
                    entry.open_data_json,
                    ipc.NO_PARENT,
                    None,
                    restored=True,
                ),
                None,
            )
