"""A worker process: its entry point, sockets, output forwarding and parent-death exit.

    main process PUSH ──(in endpoint)──> PULL ─> [loop thread: `worker_loop.WorkerRuntime`]
    main process PULL <─(out endpoint)── PUSH <─┘
                      <─(out endpoint)── [output forwarder thread] <── fd 1/2 text
    liveness pipe ── [watchdog thread]: EOF -> os._exit(0)

`worker_entry` runs in the child (spawned or forked from the forkserver, never from the
main process): it ignores SIGINT (the kernel's process group receives every interrupt),
lowers its priority, redirects fd 1/2 to the kernel log, loads the handler class, says
`Ready` and runs the loop until `StopWorker`. The worker has no frontend socket and no
HMAC key. It exits the moment the main process's end of the liveness pipe closes, even
while a handler is busy or hung.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import zmq
from mpkernel_workers.api import CommHandler

from mpkernel.supervision import ipc
from mpkernel.titles import set_title

if TYPE_CHECKING:
    # The kernel process imports this module for `WorkerSpec` and `worker_entry` only.
    from mpkernel.supervision.worker_loop import SnapshotSink


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
    title: str = ""  # the process's title (`mpkernel.titles`); "" keeps it


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


# -- plumbing -------------------------------------------------------------------------
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


def serve(
    ctx: zmq.Context[zmq.Socket[bytes]],
    spec: WorkerSpec,
    handler_cls: type[CommHandler],
    alive_fd: int,
    store_factory: Callable[[], SnapshotSink] | None = None,
    decode_subject: Callable[[bytes], Any] | None = None,
    snapshots: bool | None = None,
) -> None:
    """Bind and connect the worker's sockets, say Ready, and run the loop on the calling
    thread until StopWorker or the main process is gone (tests call it on a thread).
    `snapshots` overrides the handler class's wish for snapshots (a forked worker holds
    its object already)."""
    from mpkernel.supervision.worker_loop import WorkerRuntime

    pull = ctx.socket(zmq.PULL)
    pull.bind(spec.in_addr)
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 2000)
    push.setsockopt(zmq.SNDHWM, 0)
    # A forked worker may connect before the kernel has bound its end: retry soon.
    push.setsockopt(zmq.RECONNECT_IVL, 10)
    push.connect(spec.out_addr)
    wants = handler_cls.snapshots if snapshots is None else snapshots
    try:
        runtime = WorkerRuntime(
            spec.name, spec.token, handler_cls, pull, push, alive_fd, store_factory, decode_subject
        )
        runtime.emit(ipc.Ready(os.getpid(), handler_cls.persistent, wants))
        runtime.run()
    finally:
        pull.close(linger=0)
        push.close()


# Workers yield the CPU to user code: a handler sorting ten million rows must not make
# the user's next cell sluggish (CFS weights nice 0 : nice 5 about 3 : 1).
WORKER_NICENESS = 5


def worker_entry(spec: WorkerSpec, alive: Any) -> None:
    """Process entry point (`multiprocess` target)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_worker(spec, alive.fileno())


def run_worker(
    spec: WorkerSpec,
    alive_fd: int,
    decode_subject: Callable[[bytes], Any] | None = None,
    snapshots: bool | None = None,
) -> None:
    """A worker process's life, once SIGINT is ignored (started or forked)."""
    if spec.title:
        set_title(spec.title)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    _exit_with_parent(alive_fd)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    forwarder = _redirect_output(ctx, spec)
    # Forked from the kernel's process image, the `mpkernel` logger still writes to the
    # kernel's stderr: a worker's records go through the root logger to its own pipe.
    kernel_logger = logging.getLogger("mpkernel")
    for handler in list(kernel_logger.handlers):
        kernel_logger.removeHandler(handler)
    kernel_logger.propagate = True
    kernel_logger.setLevel(logging.NOTSET)
    logging.basicConfig(
        level=spec.log_level.upper(),
        format=f"worker {spec.name}[%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    try:
        handler_cls = load_handler_class(spec.handler)
        serve(ctx, spec, handler_cls, alive_fd, None, decode_subject, snapshots)
    finally:
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
