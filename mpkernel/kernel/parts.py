"""What the kernel's threads are built from, in three groups: the frontend's wires, what
the io thread shares with the main thread, and what this kernel is (its configuration and
identity). `Kernel.run` (app.py) makes them; the io thread (`KernelIO`) and the main
thread's parts (`main_thread.py`) read them."""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from mpkernel.config.model import Config
from mpkernel.funnel.capture import FdCapture, FunnelWriter
from mpkernel.funnel.outbox import Outbox
from mpkernel.kernel.frontend import FrontendSender
from mpkernel.kernel.sockets import KernelSockets
from mpkernel.kernel.work import WorkItem
from mpkernel.wire import Header, Signer


@dataclass(frozen=True, slots=True)
class FrontendWires:
    """The bound frontend sockets, and how to sign and send on them."""

    sockets: KernelSockets
    sender: FrontendSender
    signer: Signer


@dataclass(frozen=True, slots=True)
class ThreadLink:
    """What the io thread and the main thread share: the outbox (main -> io, the funnel's
    input), the work queue (io -> main), the captured output and how to interrupt."""

    outbox: Outbox
    work: queue.SimpleQueue[WorkItem]
    capture: FdCapture
    stdout: FunnelWriter
    stderr: FunnelWriter
    interrupt_main: Callable[[], None]

    def fd_parent(self) -> Header | None:
        """The request that fd-level output (C code, subprocesses) is parented to."""
        return self.stdout.parent


@dataclass(frozen=True, slots=True)
class KernelSetup:
    """What this kernel is: its configuration, identity and the files it owns."""

    ctx: zmq.Context[zmq.Socket[bytes]]
    config: Config
    kernel_info: dict[str, Any]
    session: str
    kernel_id: str
    debugger_enabled: bool
    workers_dir: Path | None = None
    janitor_pid: int | None = None
