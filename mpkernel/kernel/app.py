"""Kernel assembly: bind sockets, capture output, start threads, serve, wind down.

Runs on the main thread, which afterwards becomes the thread that executes user code.
Start order matters: the forkserver is forked before any thread or zmq context exists;
logging keeps a copy of the real stderr before fd 1/2 are captured; the io thread starts
before IPython is imported, so kernel_info, control requests, comms (and the heartbeat) are
answered during the slowest part of start-up. What the io thread needs is kept lean to
import (docs/benchmarks.md has what each part costs).
"""

from __future__ import annotations

import logging
import platform
import queue
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

import mpkernel
from mpkernel.config.model import Config
from mpkernel.debugger import debugpy_installed
from mpkernel.funnel.capture import FdCapture, FunnelWriter
from mpkernel.funnel.items import IoCall, Stop
from mpkernel.funnel.outbox import Outbox
from mpkernel.kernel.connection import ConnectionFileError, ConnectionInfo, write_connection_file
from mpkernel.kernel.frontend import FrontendSender
from mpkernel.kernel.heartbeat import Heartbeat
from mpkernel.kernel.io_loop import KernelIO
from mpkernel.kernel.parent import ParentWatch
from mpkernel.kernel.parts import FrontendWires, KernelSetup, ThreadLink
from mpkernel.kernel.sockets import bind_sockets, check_curve_keys
from mpkernel.snapshots.dispatch import SnapshotDispatcher
from mpkernel.supervision import zygote
from mpkernel.wire import Signer

if TYPE_CHECKING:
    from mpkernel.kernel_dirs import KernelDirs

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "5.5"


def build_kernel_info(debugger: bool) -> dict[str, Any]:
    """The kernel_info_reply content, known before IPython is imported (so without its
    version, which the banner therefore does not name)."""
    python = platform.python_version()
    return {
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": "mpkernel",
        "implementation_version": mpkernel.__version__,
        "language_info": {
            "name": "python",
            "version": python,
            "mimetype": "text/x-python",
            "codemirror_mode": {"name": "ipython", "version": 3},
            "pygments_lexer": "ipython3",
            "nbconvert_exporter": "python",
            "file_extension": ".py",
        },
        "banner": (
            f"Python {sys.version}\n"
            f"IPython on mpkernel {mpkernel.__version__}: comm handlers run in worker "
            "processes.\n"
        ),
        "help_links": [
            {
                "text": "Python Reference",
                "url": f"https://docs.python.org/{sys.version_info[0]}.{sys.version_info[1]}",
            },
            {"text": "IPython Reference", "url": "https://ipython.readthedocs.io/en/stable/"},
        ],
        "supported_features": ["kernel subshells", *(["debugger"] if debugger else [])],
        "debugger": debugger,
    }


class Kernel:
    """One kernel process: owns the zmq context and the threads."""

    def __init__(
        self,
        info: ConnectionInfo,
        config: Config,
        server: zygote.Forkserver | None,
        connection_file: Path | None,
        dirs: KernelDirs,
        kernel_id: str,
    ) -> None:
        """`server`: the workers' forkserver (`zygote.start_for`), forked by the caller
        before this module was imported; None when no worker uses one. `dirs`: the
        kernel's files, removed when it ends (its janitor removes them if it is killed)."""
        self.info = info
        self.config = config
        self.server = server
        self.connection_file = connection_file
        self.dirs = dirs
        self.kernel_id = kernel_id
        self.session = str(uuid.uuid4())

    def _check_transport(self) -> bool:
        """Whether the connection file's encryption settings can be used; says once which
        way the frontend sockets will run. Keys that cannot be used stop the start: a kernel
        asked to encrypt never runs in plain text."""
        try:
            check_curve_keys(self.info)
        except ConnectionFileError as e:
            log.critical("cannot start: %s", e)
            return False
        if self.info.encrypted:
            log.info("transport encrypted: CurveZMQ on shell, control, stdin, iopub and hb")
        else:
            log.info(
                "transport not encrypted: the connection file has no CurveZMQ keys "
                "(see docs/security.md)"
            )
        return True

    def run(self) -> int:
        """The kernel's wiring, in start order; its exit status."""
        if not self._check_transport():
            self.dirs.remove()
            return 2
        zygote.adopt(self.server)
        # Every thread started from here on (ours, zmq's, IPython's) inherits a mask with
        # SIGINT blocked; the main thread unblocks it once they run (mpkernel.threads).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        wires = self._bind(ctx)
        link = self._capture_output()
        setup = self._setup(ctx)
        snapshot_dispatch = SnapshotDispatcher()
        io = KernelIO(wires, link, setup, snapshot_dispatch)
        hb = Heartbeat(wires.sockets.hb)
        hb.start()
        io.start()
        ParentWatch(
            lambda: link.outbox.put(IoCall(lambda: io.begin_shutdown(restart=False))),
            io.shutdown_requested,
        ).start()
        # Imported only now: IPython is the slowest part of start-up, and the io thread is
        # already answering while it loads. psutil first: the supervisor's, first used when
        # a worker is ready, so that the io thread does not load it on the first comm's way.
        import psutil  # noqa: F401

        from mpkernel.kernel.main_thread import MainThread

        main = MainThread(io, link, setup, snapshot_dispatch, self.dirs, self.connection_file)
        main.serve(self.session)

        link.outbox.put(Stop())
        io.join(timeout=5)
        if io.reaper is not None:
            io.reaper.join(timeout=5)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        link.capture.stop()
        main.fork_site.close()
        ctx.term()
        self.dirs.remove()
        hb.join(timeout=1)
        return 0

    def _bind(self, ctx: zmq.Context[zmq.Socket[bytes]]) -> FrontendWires:
        """The frontend's sockets, bound (the connection file is rewritten when a port was
        left to the kernel to choose)."""
        sockets, info = bind_sockets(ctx, self.info)
        if info != self.info and self.connection_file is not None:
            write_connection_file(self.connection_file, info)
        signer = Signer(info.key, info.signature_scheme)
        sender = FrontendSender(sockets.shell, sockets.control, sockets.iopub, signer, self.session)
        return FrontendWires(sockets, sender, signer)

    @staticmethod
    def _capture_output() -> ThreadLink:
        """The outbox and the work queue between the threads; fds 1 and 2 and sys.stdout
        and sys.stderr from now on go into the funnel."""
        outbox = Outbox()
        capture = FdCapture(outbox)
        capture.start()
        stdout = FunnelWriter("stdout", outbox, 1, capture)
        stderr = FunnelWriter("stderr", outbox, 2, capture)
        sys.stdout, sys.stderr = stdout, stderr
        main_ident = threading.get_ident()
        return ThreadLink(
            outbox,
            queue.SimpleQueue(),
            capture,
            stdout,
            stderr,
            lambda: signal.pthread_kill(main_ident, signal.SIGINT),
        )

    def _setup(self, ctx: zmq.Context[zmq.Socket[bytes]]) -> KernelSetup:
        debugging = self.config.kernel.debugger and debugpy_installed()
        return KernelSetup(
            ctx,
            self.config,
            build_kernel_info(debugging),
            self.session,
            self.kernel_id,
            debugging,
            self.dirs.workers,
            self.dirs.janitor_pid,
        )
