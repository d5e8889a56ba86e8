"""The comm router: the io thread's logic for comms served by workers.

It takes the frontend's comm_open / comm_msg / comm_close for worker targets straight
from the shell socket (they never wait for user code), sends them to the worker with
the frontend's header (I4), and turns what workers send back into IOPub messages. It
keeps the registry (I5: only the main process publishes comm_open and comm_close) and
decides when a request's idle may go: only after every worker involved has sent
`Done(request)` through the pipe, behind its own messages (I3). When a worker dies it
publishes, in this order, an error reply for every pending RPC, a comm_close for each of
the worker's comms, then the idles the worker owed (I6).

Comms of the `comm` package (ipywidgets...) live in the main process; the router only
records them for `comm_info` and sends their traffic to the main thread.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from mpkernel.comms.registry import CommEntry, CommRegistry
from mpkernel.config.model import Config, WorkerConfig
from mpkernel.funnel.items import (
    CommInfo,
    CommItem,
    FunnelItem,
    OpenBackendComm,
    Publish,
    PublishRaw,
    RegisterComm,
    Reply,
    UnregisterComm,
)
from mpkernel.supervision import ipc
from mpkernel.supervision.supervisor import WorkerHandle, WorkerSupervisor, WorkerUnavailable
from mpkernel.wire import Header, Message, WireError, json_bytes

log = logging.getLogger(__name__)

HEALTH_TARGET = "mpkernel.health"
INTERNAL_ERROR = -32603
METHOD_NOT_FOUND = -32601

Emit = Callable[[FunnelItem], None]


def comm_msg_content(comm_id: str, data_json: bytes) -> bytes:
    return b'{"comm_id":' + json_bytes(comm_id) + b',"data":' + data_json + b"}"


def rpc_error_json(rpc_id_json: str, code: int, message: str) -> bytes:
    return (
        b'{"jsonrpc":"2.0","id":'
        + rpc_id_json.encode()
        + b',"error":'
        + json_bytes({"code": code, "message": message})
        + b"}"
    )


class CommRouter:
    def __init__(
        self,
        config: Config,
        emit: Emit,
        health_extra: Callable[[], dict[str, Any]],
        frontend_present: Callable[[], bool],
    ) -> None:
        self.config = config
        self._frontend_present = frontend_present
        self.registry = CommRegistry()
        self._emit = emit
        self._health_extra = health_extra
        self.supervisor: WorkerSupervisor | None = None
        self._owed: dict[str, int] = {}
        self._deferred_idle: dict[str, Header] = {}
        self._parent_cache: tuple[bytes, Header | None] = (b"", None)

    # -- brackets and Done accounting ---------------------------------------------------
    def _busy(self, parent: Header) -> None:
        self._emit(Publish("status", {"execution_state": "busy"}, parent))

    def _end(self, parent: Header) -> None:
        if self._owed.get(parent.msg_id):
            self._deferred_idle[parent.msg_id] = parent
        else:
            self._emit(Publish("status", {"execution_state": "idle"}, parent))

    def idle_may_go(self, parent: Header | None) -> bool:
        if parent is not None and self._owed.get(parent.msg_id):
            self._deferred_idle[parent.msg_id] = parent
            return False
        return True

    def _send(self, handle: WorkerHandle, msg: ipc.ToWorker, request_id: str | None) -> None:
        if request_id is not None:
            self._owed[request_id] = self._owed.get(request_id, 0) + 1
            handle.owed[request_id] = handle.owed.get(request_id, 0) + 1
        assert self.supervisor is not None
        self.supervisor.send(handle, msg)

    def _settle(self, request_id: str, count: int = 1) -> None:
        left = self._owed.get(request_id, 0) - count
        if left > 0:
            self._owed[request_id] = left
            return
        self._owed.pop(request_id, None)
        parent = self._deferred_idle.pop(request_id, None)
        if parent is not None:
            self._emit(Publish("status", {"execution_state": "idle"}, parent))

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
        self._emit(Publish("comm_close", {"comm_id": comm_id, "data": data}, parent))

    # -- shell requests (frontend -> kernel) ----------------------------------------------
    def route_shell(self, msg: Message[dict[str, Any]]) -> bool:
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
                self._msg_from_frontend(msg, entry)
            else:
                self._close_from_frontend(msg, entry)
            return True
        return False

    def _open_from_frontend(self, msg: Message[dict[str, Any]]) -> None:
        parent = msg.header
        content = msg.content
        comm_id = str(content.get("comm_id", ""))
        target = str(content.get("target_name"))
        self._busy(parent)
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
            assert self.supervisor is not None
            handle = self.supervisor.acquire(cfg, comm_id)
            data_json = json_bytes(content.get("data") or {})
            self.registry.add(
                CommEntry(
                    comm_id, target, "worker", handle.key, "frontend", data_json, cfg.persistent
                )
            )
            self._send(
                handle,
                ipc.OpenComm(
                    comm_id, target, data_json, json_bytes(parent.as_dict()), parent.msg_id
                ),
                parent.msg_id,
            )
        except WorkerUnavailable as e:
            log.warning("comm_open %s for %s refused: %s", comm_id, target, e)
            self._close_comm(comm_id, {"reason": "worker_unavailable", "message": str(e)}, parent)
        finally:
            self._end(parent)

    def _msg_from_frontend(self, msg: Message[dict[str, Any]], entry: CommEntry) -> None:
        parent = msg.header
        data = msg.content.get("data")
        self._busy(parent)
        try:
            is_rpc = isinstance(data, dict) and "id" in data and "method" in data
            if entry.host == "health":
                self._health_rpc(entry, data, parent)
                return
            assert self.supervisor is not None
            assert entry.worker_key is not None
            handle = self.supervisor.get(entry.worker_key)
            if handle is None:
                if is_rpc:
                    assert isinstance(data, dict)
                    self._emit(
                        PublishRaw(
                            "comm_msg",
                            comm_msg_content(
                                entry.comm_id,
                                rpc_error_json(
                                    json.dumps(data["id"]),
                                    INTERNAL_ERROR,
                                    f"the {entry.target} worker is restarting; try again",
                                ),
                            ),
                            parent,
                        )
                    )
                return
            parent_json = json_bytes(parent.as_dict())
            if is_rpc:
                assert isinstance(data, dict)
                rpc_id = json.dumps(data["id"])
                timeout = handle.config.rpc_timeout_s
                deadline = time.monotonic() + timeout if timeout else None
                handle.pending_rpcs[parent.msg_id] = (entry.comm_id, rpc_id, parent, deadline)
                self._send(
                    handle,
                    ipc.RpcRequest(
                        entry.comm_id, json_bytes(data), parent_json, parent.msg_id, msg.buffers
                    ),
                    parent.msg_id,
                )
            elif isinstance(data, dict) and "id" in data and ("result" in data or "error" in data):
                key = (entry.comm_id, json.dumps(data["id"]))
                if key in handle.frontend_requests:
                    handle.frontend_requests.discard(key)
                    self._send(
                        handle,
                        ipc.FrontendAnswer(entry.comm_id, key[1], json_bytes(data), parent.msg_id),
                        parent.msg_id,
                    )
                else:
                    log.warning(
                        "answer %s on comm %s matches no pending request; dropped",
                        key[1],
                        entry.comm_id,
                    )
            else:
                self._send(
                    handle,
                    ipc.CommData(
                        entry.comm_id, json_bytes(data), parent_json, parent.msg_id, msg.buffers
                    ),
                    parent.msg_id,
                )
        finally:
            self._end(parent)

    def _close_from_frontend(self, msg: Message[dict[str, Any]], entry: CommEntry) -> None:
        parent = msg.header
        self._busy(parent)
        try:
            self.registry.remove(entry.comm_id)
            if entry.host != "worker" or self.supervisor is None or entry.worker_key is None:
                return
            handle = self.supervisor.get(entry.worker_key)
            if handle is None:
                return
            # The worker fails a frontend-bound request waiting on this comm when the
            # close reaches it; nothing to route back any more.
            handle.frontend_requests = {
                r for r in handle.frontend_requests if r[0] != entry.comm_id
            }
            self._send(
                handle,
                ipc.CloseComm(entry.comm_id, "frontend_closed", parent.msg_id),
                parent.msg_id,
            )
            if handle.config.processes == "per-comm":
                self.supervisor.stop(handle, "its comm was closed")
        finally:
            self._end(parent)

    def _health_rpc(self, entry: CommEntry, data: Any, parent: Header) -> None:
        if not isinstance(data, dict) or "id" not in data:
            return
        rpc_id = json.dumps(data["id"])
        if data.get("method") == "status":
            reply = json_bytes({"jsonrpc": "2.0", "id": data["id"], "result": self.health_status()})
        else:
            reply = rpc_error_json(
                rpc_id, METHOD_NOT_FOUND, f"unknown method {data.get('method')!r}"
            )
        self._emit(PublishRaw("comm_msg", comm_msg_content(entry.comm_id, reply), parent))

    def health_status(self) -> dict[str, Any]:
        comms: dict[str, dict[str, Any]] = {}
        for e in self.registry:
            comms[e.comm_id] = {"target_name": e.target, "host": e.host, "worker": e.worker_key}
        workers = self.supervisor.stats() if self.supervisor is not None else []
        for w in workers:
            w["open_comms"] = sum(1 for e in self.registry if e.worker_key == w["key"])
        return {"pid": os.getpid(), "workers": workers, "comms": comms, **self._health_extra()}

    # -- frontend disconnects -------------------------------------------------------------------
    def fail_frontend_requests(self, reason: str) -> None:
        """Every request a handler sent to the frontend fails now, inside its worker."""
        assert self.supervisor is not None
        for handle in list(self.supervisor.handles.values()):
            if handle.frontend_requests:
                handle.frontend_requests.clear()
                self.supervisor.send(handle, ipc.FailFrontendRequests(reason))

    def close_for_disconnect(self) -> None:
        """Close every comm not marked persistent; their handlers clean up. No comm_close is
        published: nobody is listening, and a reconnecting frontend asks comm_info."""
        assert self.supervisor is not None
        closed = 0
        for entry in self.registry:
            if entry.persistent or entry.host == "main":
                continue
            self.registry.remove(entry.comm_id)
            closed += 1
            if entry.host != "worker" or entry.worker_key is None:
                continue
            handle = self.supervisor.get(entry.worker_key)
            if handle is None:
                continue
            self.supervisor.send(
                handle, ipc.CloseComm(entry.comm_id, "frontend_disconnected", None)
            )
            if handle.config.processes == "per-comm":
                self.supervisor.stop(handle, "its comm was closed")
        log.info("frontend disconnect: closed %d comms, kept %d", closed, len(self.registry))

    # -- items from the main thread ----------------------------------------------------------
    def comm_item(self, item: CommItem) -> None:
        match item:
            case CommInfo():
                self._emit(
                    Reply(
                        "shell",
                        item.identities,
                        "comm_info_reply",
                        {"status": "ok", "comms": self.registry.info(item.target_name)},
                        item.parent,
                        {"status": "ok"},
                    )
                )
            case RegisterComm():
                self.registry.add(CommEntry(item.comm_id, item.target, "main", opened_by="kernel"))
            case UnregisterComm():
                self.registry.remove(item.comm_id)
            case OpenBackendComm():
                cfg = self.config.worker_for_target(item.target)
                if cfg is not None:
                    self._open_backend(cfg, item.comm_id, item.data_json, item.parent)
                else:
                    log.error("backend comm for unknown target %s not opened", item.target)

    def _open_backend(
        self, cfg: WorkerConfig, comm_id: str, data_json: bytes, parent: Header | None
    ) -> None:
        assert self.supervisor is not None
        content = b'{"comm_id":' + json_bytes(comm_id) + b',"target_name":' + json_bytes(cfg.target)
        content += b',"data":' + data_json + b"}"
        # I5: the comm_open is on IOPub before anything the worker sends on this comm.
        self._emit(PublishRaw("comm_open", content, parent))
        try:
            handle = self.supervisor.acquire(cfg, comm_id)
        except WorkerUnavailable as e:
            self._close_comm(comm_id, {"reason": "worker_unavailable", "message": str(e)}, parent)
            return
        self.registry.add(
            CommEntry(
                comm_id, cfg.target, "worker", handle.key, "kernel", data_json, cfg.persistent
            )
        )
        request_id = parent.msg_id if parent is not None else None
        parent_json = json_bytes(parent.as_dict()) if parent is not None else ipc.NO_PARENT
        self._send(
            handle,
            ipc.OpenComm(comm_id, cfg.target, data_json, parent_json, request_id),
            request_id,
        )

    # -- SupervisorListener (worker -> kernel) --------------------------------------------------
    def on_worker_ready(self, handle: WorkerHandle) -> None:
        if handle.handler_persistent:
            for entry in self.registry.on_worker(handle.key):
                entry.persistent = True

    def on_worker_message(self, handle: WorkerHandle, msg: ipc.FromWorker) -> None:
        match msg:
            case ipc.CommSend():
                if msg.comm_id in self.registry:
                    self._emit(
                        PublishRaw(
                            "comm_msg",
                            comm_msg_content(msg.comm_id, msg.data_json),
                            self._parent(msg.parent_json),
                            msg.buffers,
                        )
                    )
                else:
                    log.info("data from %s on closed comm %s dropped", handle.wid, msg.comm_id)
            case ipc.RpcReply():
                parent = self._parent(msg.parent_json)
                if parent is not None:
                    handle.pending_rpcs.pop(parent.msg_id, None)
                if msg.comm_id in self.registry:
                    self._emit(
                        PublishRaw("comm_msg", comm_msg_content(msg.comm_id, msg.data_json), parent)
                    )
                else:
                    log.info("reply %s on closed comm %s dropped", msg.rpc_id, msg.comm_id)
            case ipc.Done():
                count = handle.owed.get(msg.request_id, 0)
                if count <= 1:
                    handle.owed.pop(msg.request_id, None)
                else:
                    handle.owed[msg.request_id] = count - 1
                if count:
                    self._settle(msg.request_id)
            case ipc.FrontendRequest():
                if msg.comm_id not in self.registry or not self._frontend_present():
                    # Nobody could answer: fail it now rather than let the worker wait.
                    assert self.supervisor is not None
                    self.supervisor.send(handle, ipc.FailFrontendRequests("frontend_disconnected"))
                else:
                    handle.frontend_requests.add((msg.comm_id, msg.rpc_id))
                    self._emit(
                        PublishRaw("comm_msg", comm_msg_content(msg.comm_id, msg.data_json), None)
                    )
            case ipc.OpenFromWorker():
                cfg = self.config.worker_for_target(msg.target)
                if cfg is None:
                    log.error("worker %s asked to open unknown target %s", handle.wid, msg.target)
                else:
                    self._open_backend(cfg, msg.comm_id, msg.data_json, None)
            case ipc.CloseFromWorker():
                if self.registry.remove(msg.comm_id) is not None:
                    self._emit(
                        PublishRaw("comm_close", comm_msg_content(msg.comm_id, msg.data_json), None)
                    )
            case ipc.LogLine():
                log.log(msg.level, "[%s] %s", handle.wid, msg.text)
            case _:
                log.warning("unexpected %s from worker %s", type(msg).__name__, handle.wid)

    def on_worker_exit(
        self, handle: WorkerHandle, reason: str, crashed: bool, restarting: bool
    ) -> None:
        name = handle.config.name
        if crashed:
            for comm_id, rpc_id, parent, _ in handle.pending_rpcs.values():
                self._emit(
                    PublishRaw(
                        "comm_msg",
                        comm_msg_content(
                            comm_id,
                            rpc_error_json(
                                rpc_id, INTERNAL_ERROR, f"worker {name} crashed: {reason}"
                            ),
                        ),
                        parent,
                    )
                )
        handle.pending_rpcs.clear()
        handle.frontend_requests.clear()
        for entry in self.registry.on_worker(handle.key):
            if crashed and restarting and entry.persistent:
                continue
            self.registry.remove(entry.comm_id)
            if crashed:
                self._close_comm(
                    entry.comm_id, {"reason": "worker_crashed", "worker": name, "exit": reason}
                )
            else:
                self._close_comm(entry.comm_id, {"reason": "worker_stopped", "worker": name})
        for request_id, count in list(handle.owed.items()):
            self._settle(request_id, count)
        handle.owed.clear()

    def on_worker_restarted(self, key: str, handle: WorkerHandle) -> None:
        for entry in self.registry.on_worker(key):
            self._send(
                handle,
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
