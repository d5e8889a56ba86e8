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
import os
import platform
import queue
import signal
import sys
import threading
import uuid
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import zmq

import mpkernel
from mpkernel import interrupt_shield, kernel_dirs
from mpkernel.config.model import Config
from mpkernel.debugger import debugpy_installed
from mpkernel.debugger.cells import CellFiles
from mpkernel.engine.compat import (
    install_import_hooks,
    mark_kernel_app,
    use_interruptible_pdb,
)
from mpkernel.funnel.capture import FdCapture, FunnelWriter
from mpkernel.funnel.items import IoCall, Stop
from mpkernel.funnel.outbox import Outbox
from mpkernel.kernel.connection import ConnectionFileError, ConnectionInfo, write_connection_file
from mpkernel.kernel.frontend import FrontendSender
from mpkernel.kernel.heartbeat import Heartbeat
from mpkernel.kernel.io_loop import KernelIO, terminate_children
from mpkernel.kernel.parent import ParentWatch
from mpkernel.kernel.sockets import bind_sockets, check_curve_keys
from mpkernel.kernel.work import WorkItem
from mpkernel.snapshots.dispatch import SnapshotDispatcher
from mpkernel.supervision import zygote
from mpkernel.wire import Signer

if TYPE_CHECKING:
    from mpkernel.kernel_dirs import KernelDirs
    from mpkernel.snapshots.builder import SnapshotBuilder

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
        server = self.server
        dirs = self.dirs
        if not self._check_transport():
            dirs.remove()
            return 2
        zygote.adopt(server)
        # Every thread started from here on (ours, zmq's, IPython's) inherits a mask with
        # SIGINT blocked; the main thread unblocks it once they run (mpkernel.threads).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sockets, info = bind_sockets(ctx, self.info)
        if info != self.info and self.connection_file is not None:
            write_connection_file(self.connection_file, info)
        signer = Signer(info.key, info.signature_scheme)
        sender = FrontendSender(sockets.shell, sockets.control, sockets.iopub, signer, self.session)
        outbox = Outbox()
        work: queue.SimpleQueue[WorkItem] = queue.SimpleQueue()
        capture = FdCapture(outbox)
        capture.start()
        stdout = FunnelWriter("stdout", outbox, 1, capture)
        stderr = FunnelWriter("stderr", outbox, 2, capture)
        sys.stdout, sys.stderr = stdout, stderr
        debugging = self.config.kernel.debugger and debugpy_installed()
        kernel_info = build_kernel_info(debugging)
        main_ident = threading.get_ident()

        def interrupt_main() -> None:
            signal.pthread_kill(main_ident, signal.SIGINT)

        snapshot_dispatch = SnapshotDispatcher()
        io = KernelIO(
            sockets,
            sender,
            signer,
            outbox,
            work,
            capture,
            lambda: stdout.parent,
            kernel_info=lambda: kernel_info,
            interrupt_main=interrupt_main,
            ctx=ctx,
            config=self.config,
            snapshots=snapshot_dispatch,
            debugger_enabled=debugging,
            workers_dir=dirs.workers,
            kernel_id=self.kernel_id,
            janitor_pid=dirs.janitor_pid,
        )
        hb = Heartbeat(sockets.hb)
        hb.start()
        io.start()
        ParentWatch(
            lambda: outbox.put(IoCall(lambda: io.begin_shutdown(restart=False))),
            io.shutdown_requested,
        ).start()

        # Imported here: IPython is the slowest part of start-up and the io thread is
        # already answering while it loads. psutil first: the supervisor's, first used when
        # a worker is ready, so that the io thread does not load it on the first comm's way.
        import psutil  # noqa: F401

        from mpkernel.comms import api as comms
        from mpkernel.debugger.namespace import in_debugger
        from mpkernel.engine import startup
        from mpkernel.engine.debugging import cell_compiler, debugger_parts
        from mpkernel.engine.execute import ExecutionEngine
        from mpkernel.engine.inprocess import InProcessComms
        from mpkernel.engine.kernel_object import KernelObject
        from mpkernel.engine.kernel_requests import KernelRequests
        from mpkernel.engine.magics import register_subshell_magic
        from mpkernel.engine.shell import ShellDispatcher
        from mpkernel.snapshots.on_demand import OnDemandBuilder

        cells = CellFiles(dirs.cells) if debugging else None
        profile = startup.load()
        engine = ExecutionEngine(
            outbox, capture, cell_compiler(cells) if cells else None, startup=profile
        )
        in_process = InProcessComms(outbox, engine.context, capture)
        in_process.install()
        shell = engine.shell
        shell.kernel = KernelObject(
            shell,
            in_process.manager,
            outbox,
            kernel_info,
            self.session,
            current_parent=engine.context.parent_message,
            before_publish=capture.collect,
        )
        mark_kernel_app(shell.config, self.connection_file)
        install_import_hooks()
        use_interruptible_pdb()
        if cells is not None:
            parts = debugger_parts(shell, cells)
            outbox.put(IoCall(lambda: io.debugger.open(parts)))
        from mpkernel.supervision.fork import ForkSite

        fork_site = ForkSite(self.config, outbox, shell.user_ns, dirs.forks, self.kernel_id)
        comms.activate(
            comms.BackendComms(
                outbox,
                engine.context,
                self.config,
                engine.shell.user_ns,
                viewer_as_of=lambda: snapshots.viewer_as_of(in_execution=True),
                viewers=fork_site,
            )
        )

        def make_snapshot_builder() -> SnapshotBuilder:
            from mpkernel.snapshots.builder import SnapshotBuilder

            return SnapshotBuilder(
                shell.user_ns,
                shell.user_ns_hidden,
                self.config.kernel.post_execute_budget_ms,
                snapshot_dispatch.wanted,
                self.config.kernel.preview_min_bytes,
            )

        snapshots = OnDemandBuilder(make_snapshot_builder, snapshot_dispatch.wanted)
        kernel_requests = KernelRequests(
            engine,
            outbox,
            snapshots,
            lambda target: self.config.worker_for_target(target) is not None,
            fork_site,
        )

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            if not engine.executing:
                log.info("SIGINT with no user code running: ignored")
            elif in_debugger(frame):
                outbox.put(IoCall(lambda: io.debugger.resume_then(interrupt_main)))
            elif not interrupt_shield.deflect():
                raise KeyboardInterrupt

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            log.info("SIGTERM: stopping children and exiting")
            terminate_children(grace_s=0.5, spare=(dirs.janitor_pid,))
            dirs.remove()  # the workers are gone: nobody uses the pipes or snapshots
            os._exit(0)

        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(signal.SIGTERM, on_sigterm)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        dispatcher = ShellDispatcher(
            engine,
            outbox,
            work,
            kernel_info=lambda: kernel_info,
            writers=(stdout, stderr),
            comms=in_process,
            capture=capture,
            snapshots=snapshots,
            kernel_requests=kernel_requests,
            viewers=fork_site,
        )
        register_subshell_magic(shell, io.subshells)
        outbox.put(IoCall(lambda: io.subshells.set_starter(dispatcher.start_subshell)))
        # The profile's extensions and start-up code, before the first request (the io
        # thread answers kernel_info meanwhile; other requests wait for the shell).
        startup.run(profile, shell)
        log.info(
            "mpkernel %s ready (session %s, pid %d)",
            mpkernel.__version__,
            self.session,
            os.getpid(),
        )
        # What kernels killed together with their janitor left, off the way of requests.
        kernel_dirs.sweep_in_background()
        dispatcher.run()

        try:
            engine.close()
        except Exception:  # the kernel is ending: IPython's shutdown must not stop that
            log.exception("IPython shutdown failed")
        outbox.put(Stop())
        io.join(timeout=5)
        if io.reaper is not None:
            io.reaper.join(timeout=5)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        capture.stop()
        fork_site.close()
        ctx.term()
        dirs.remove()
        hb.join(timeout=1)
        return 0
