"""A viewer's comm moving to a fresh fork (io thread).

A viewer forked from the kernel (`mpkernel.supervision.fork`) shows its table as it was
when it was forked. After a cell that may have changed the table, the main thread forks
a fresh child (`items.ReplaceViewer`) and the comm moves to it:

    fresh child adopted ──> waits while the old worker answers what it was asked
    old worker idle ──────> the comm is the fresh child's (OpenComm with the handler's
                            saved state, parented to the cell); the old worker stops

Waiting for the old worker's answers is what keeps the frontend's last requests: a sort
it asked for before the cell is answered, and saved (`SaveState` travels ahead of the
answer), before the state moves. Until the switch, requests keep going to the old worker,
so none reaches the fresh child before its comm is open. A newer fork replaces one still
waiting; a comm that closes meanwhile, or whose old worker dies, stops the waiting child.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mpkernel.comms.books import WorkerBook
from mpkernel.comms.registry import CommRegistry
from mpkernel.config.model import Config
from mpkernel.funnel import items
from mpkernel.supervision import ipc
from mpkernel.supervision.errors import WorkerUnavailable
from mpkernel.wire import Header, json_bytes

if TYPE_CHECKING:
    from mpkernel.config.model import WorkerConfig
    from mpkernel.supervision.fork import ForkedWorker

log = logging.getLogger(__name__)


class TakeoverSink(Protocol):
    """What takeovers need of the router's sink (`RouterSink`)."""

    def send(self, worker_key: str, msg: ipc.ToWorker) -> None: ...

    def acquire(
        self, config: WorkerConfig, comm_id: str, forked: ForkedWorker | None = None
    ) -> str: ...

    def live(self, worker_key: str) -> bool: ...

    def stop(self, worker_key: str, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Waiting:
    key: str  # the fresh child's worker
    parent: Header | None  # the cell after which it was forked


class Takeovers:
    def __init__(
        self,
        config: Config,
        registry: CommRegistry,
        sink: TakeoverSink,
        book: Callable[[str], WorkerBook],
        close_comm: Callable[[str, dict[str, str], Header | None], None],
    ) -> None:
        self._config = config
        self._registry = registry
        self._sink = sink
        self._book = book
        self._close_comm = close_comm
        self._waiting: dict[str, _Waiting] = {}  # comm id -> its fresh child
        # comm id -> tells the main thread to stop following the viewer's variable
        self._forgets: dict[str, Callable[[], None]] = {}

    def opened(self, comm_id: str, forked: ForkedWorker) -> None:
        """A viewer forked with `forked` opened as `comm_id`."""
        if forked.forget is not None:
            self._forgets[comm_id] = forked.forget

    def replace(self, item: items.ReplaceViewer) -> None:
        entry = self._registry.get(item.comm_id)
        if entry is None or entry.host != "worker":
            item.forget()  # closed already: the main thread stops following it
            if item.forked is not None:
                self._discard(item.forked, item.comm_id)
            return
        cfg = self._config.worker_for_target(entry.target)
        if cfg is None:
            return
        if item.forked is None:  # its variable is gone
            self.comm_gone(item.comm_id)
            self._registry.remove(item.comm_id)
            self._close_comm(item.comm_id, {"reason": "variable_deleted"}, item.parent)
            item.forget()
            old = entry.worker_key
            if old is not None:
                self._book(old).forget_comm(item.comm_id)
                self._sink.send(old, ipc.CloseComm(item.comm_id, "variable_deleted", None))
                self._sink.stop(old, "its comm was closed")
            return
        try:
            key = self._sink.acquire(cfg, item.comm_id, item.forked)
        except WorkerUnavailable as e:
            log.warning("viewer %s keeps its worker: %s", item.comm_id, e)
            return
        superseded = self._waiting.pop(item.comm_id, None)  # a fresher fork replaces it
        if superseded is not None:
            self._sink.stop(superseded.key, "replaced by a fresher fork")
        self._waiting[item.comm_id] = _Waiting(key, item.parent)
        self._switch_if_idle(item.comm_id)

    def worker_answered(self, key: str) -> None:
        """`key` answered an RPC: comms waiting for it may switch now."""
        for comm_id in list(self._waiting):
            entry = self._registry.get(comm_id)
            if entry is not None and entry.worker_key == key:
                self._switch_if_idle(comm_id)

    def comm_gone(self, comm_id: str) -> None:
        """The comm closed: a fresh child waiting for it stops, and the main thread stops
        following its variable (no fork for a closed viewer)."""
        waiting = self._waiting.pop(comm_id, None)
        if waiting is not None:
            self._sink.stop(waiting.key, "its comm was closed")
        forget = self._forgets.pop(comm_id, None)
        if forget is not None:
            forget()

    def owner(self, comm_id: str) -> str | None:
        """The fresh child waiting to take `comm_id` over, if any."""
        waiting = self._waiting.get(comm_id)
        return waiting.key if waiting is not None else None

    def _switch_if_idle(self, comm_id: str) -> None:
        entry = self._registry.get(comm_id)
        waiting = self._waiting.get(comm_id)
        if entry is None or waiting is None:
            return
        old = entry.worker_key
        if old is not None and self._sink.live(old) and self._book(old).pending:
            return  # it still answers what the frontend asked before the cell
        del self._waiting[comm_id]
        entry.worker_key = waiting.key
        data = json.loads(entry.open_data_json or b"{}")
        data[ipc.RESTORED_STATE] = json.loads(entry.state_json) if entry.state_json else {}
        parent = waiting.parent
        opened = ipc.OpenComm(
            comm_id,
            entry.target,
            json_bytes(data),
            json_bytes(parent.as_dict()) if parent is not None else ipc.NO_PARENT,
            None,
            payload=ipc.FORKED_SUBJECT,
        )
        self._sink.send(waiting.key, opened)
        if old is not None:
            self._sink.stop(old, "replaced by a fresh fork")

    def _discard(self, forked: ForkedWorker, comm_id: str) -> None:
        """A child forked for a comm that closed meanwhile: adopted only to be stopped
        (and reaped)."""
        cfg = self._config.worker_for_target(forked.spec.target)
        if cfg is None:  # the configuration is fixed for the kernel's life: not reached
            os.close(forked.alive_w)
            return
        self._sink.stop(self._sink.acquire(cfg, comm_id, forked), "its comm was closed")
