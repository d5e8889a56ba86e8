"""The io thread's link between the comm router and the worker supervisor.

The router decides (sans-I/O); this carries its decisions out: funnel items to the
funnel, messages to worker processes through the supervisor, kernel requests to the main
thread's work queue. It is also the supervisor's listener, passing worker events to the
router with the time, and it kills workers whose RPCs ran past their deadline. Runs on
the io thread only.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable

from mpkernel.comms.router import CommRouter
from mpkernel.config.model import WorkerConfig
from mpkernel.funnel.items import FunnelItem
from mpkernel.kernel.work import KernelWork, SnapshotWork, WorkItem
from mpkernel.supervision import ipc
from mpkernel.supervision.fork import ForkedWorker
from mpkernel.supervision.policy import WorkerExit
from mpkernel.supervision.supervisor import WorkerHandle, WorkerSupervisor

log = logging.getLogger(__name__)


class WorkerLink:
    """`RouterSink` and `SupervisorListener` in one: the router's hands on the io thread."""

    def __init__(
        self,
        emit: Callable[[FunnelItem], None],
        work: queue.SimpleQueue[WorkItem],
    ) -> None:
        self._emit = emit
        self._work = work
        self.router: CommRouter | None = None
        self.supervisor: WorkerSupervisor | None = None

    def attach(self, router: CommRouter, supervisor: WorkerSupervisor) -> None:
        self.router = router
        self.supervisor = supervisor
        router.set_worker_stats(supervisor.stats)

    def _parts(self) -> tuple[CommRouter, WorkerSupervisor]:
        assert self.router is not None, "attach() first"
        assert self.supervisor is not None, "attach() first"
        return self.router, self.supervisor

    # -- RouterSink -------------------------------------------------------------------------
    def emit(self, item: FunnelItem) -> None:
        self._emit(item)

    def send(self, worker_key: str, msg: ipc.ToWorker) -> None:
        _, supervisor = self._parts()
        handle = supervisor.get(worker_key)
        if handle is None:
            log.info("%s for gone worker %s dropped", type(msg).__name__, worker_key)
            return
        supervisor.send(handle, msg)

    def acquire(
        self, config: WorkerConfig, comm_id: str, forked: ForkedWorker | None = None
    ) -> str:
        _, supervisor = self._parts()
        if forked is not None:
            return supervisor.adopt(config, comm_id, forked).key
        return supervisor.acquire(config, comm_id).key

    def live(self, worker_key: str) -> bool:
        _, supervisor = self._parts()
        return supervisor.get(worker_key) is not None

    def stop(self, worker_key: str, reason: str) -> None:
        _, supervisor = self._parts()
        handle = supervisor.get(worker_key)
        if handle is not None:
            supervisor.stop(handle, reason)

    def kernel_request(self, work: KernelWork) -> None:
        self._work.put(work)

    def request_snapshot(self) -> None:
        self._work.put(SnapshotWork())

    # -- SupervisorListener -----------------------------------------------------------------
    def on_worker_ready(self, handle: WorkerHandle, ready: ipc.Ready) -> None:
        router, _ = self._parts()
        router.on_worker_ready(handle, ready)

    def on_worker_message(self, handle: WorkerHandle, msg: ipc.FromWorker) -> None:
        router, _ = self._parts()
        router.on_worker_message(handle, msg, time.monotonic())

    def on_worker_exit(self, handle: WorkerHandle, exit: WorkerExit, restarting: bool) -> None:
        router, _ = self._parts()
        router.on_worker_exit(handle, exit, restarting)

    def on_worker_restarted(self, old_key: str, handle: WorkerHandle) -> None:
        router, _ = self._parts()
        router.on_worker_restarted(old_key, handle)

    # -- timers -----------------------------------------------------------------------------
    def kill_overdue(self) -> None:
        """Kill workers hung in an RPC past `rpc_timeout_s` (handled as crashes, I6)."""
        router, supervisor = self._parts()
        for key, reason in router.overdue(time.monotonic()):
            handle = supervisor.get(key)
            if handle is not None:
                supervisor.kill(handle, reason)
