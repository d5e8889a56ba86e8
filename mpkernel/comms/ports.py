"""What the comm router needs of the io thread: a `RouterSink` for its decisions (the io
thread implements it over the funnel and the supervisor; the unit tests record it) and
the little it reads of a worker handle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from mpkernel.config.model import WorkerConfig
from mpkernel.funnel.items import FunnelItem
from mpkernel.kernel.work import KernelWork
from mpkernel.supervision import ipc

if TYPE_CHECKING:
    from mpkernel.supervision.fork import ForkedWorker


class RouterSink(Protocol):
    """Where the router's decisions go."""

    def emit(self, item: FunnelItem) -> None:
        """Into the funnel, behind everything already queued (I1)."""

    def send(self, worker_key: str, msg: ipc.ToWorker) -> None:
        """To a live (or starting) worker; dropped with a log line if it is gone."""

    def acquire(
        self, config: WorkerConfig, comm_id: str, forked: ForkedWorker | None = None
    ) -> str:
        """The key of the worker that serves a new comm, started if needed (or `forked`
        from the main thread, adopted); raises `WorkerUnavailable`."""

    def live(self, worker_key: str) -> bool:
        """Whether the worker is starting or running (not exiting, not dead)."""

    def stop(self, worker_key: str, reason: str) -> None:
        """Ask the worker to exit cleanly (per-comm workers whose comm closed)."""

    def kernel_request(self, work: KernelWork) -> None:
        """Hand a worker's kernel request to the main thread."""

    def request_snapshot(self) -> None:
        """Ask the main thread for a complete snapshot between executions."""


class Worker(Protocol):
    """What the router reads of a supervisor's worker handle."""

    @property
    def key(self) -> str: ...

    @property
    def wid(self) -> str: ...

    @property
    def config(self) -> WorkerConfig: ...
