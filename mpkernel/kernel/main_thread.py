"""The main thread's parts: IPython's shell, in-process and worker comms, snapshots, viewers,
kernel requests and the shell dispatcher, wired to the io thread; then serving requests
until shutdown. Built after the io thread runs, since importing IPython is the slowest part
of start-up and the io thread answers kernel_info, control and comms meanwhile."""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType
from typing import TYPE_CHECKING

import mpkernel
from mpkernel import interrupt_shield, kernel_dirs
from mpkernel.comms import api as comms
from mpkernel.debugger.cells import CellFiles
from mpkernel.debugger.namespace import in_debugger
from mpkernel.engine import startup
from mpkernel.engine.compat import install_import_hooks, mark_kernel_app, use_interruptible_pdb
from mpkernel.engine.debugging import cell_compiler, debugger_parts
from mpkernel.engine.execute import ExecutionEngine
from mpkernel.engine.inprocess import InProcessComms
from mpkernel.engine.kernel_object import KernelObject
from mpkernel.engine.kernel_requests import KernelRequests
from mpkernel.engine.magics import register_subshell_magic
from mpkernel.engine.shell import ShellDispatcher
from mpkernel.funnel.items import IoCall
from mpkernel.interrupt_wake import InterruptWake
from mpkernel.kernel.io_loop import KernelIO, terminate_children
from mpkernel.kernel.parts import KernelSetup, ThreadLink
from mpkernel.snapshots.dispatch import SnapshotDispatcher
from mpkernel.snapshots.on_demand import OnDemandBuilder
from mpkernel.supervision.fork import ForkSite

if TYPE_CHECKING:
    from pathlib import Path

    from mpkernel.kernel_dirs import KernelDirs
    from mpkernel.snapshots.builder import SnapshotBuilder

log = logging.getLogger(__name__)


class MainThread:
    """What serves the shell on the main thread, built in dependency order."""

    def __init__(
        self,
        io: KernelIO,
        link: ThreadLink,
        setup: KernelSetup,
        snapshot_dispatch: SnapshotDispatcher,
        dirs: KernelDirs,
        connection_file: Path | None,
    ) -> None:
        self._io = io
        self._link = link
        self._dirs = dirs
        config, outbox = setup.config, link.outbox
        self.cells = CellFiles(dirs.cells) if setup.debugger_enabled else None
        self._profile = startup.load()
        compiler = cell_compiler(self.cells) if self.cells else None
        self.engine = engine = ExecutionEngine(
            outbox, link.capture, compiler, startup=self._profile
        )
        in_process = InProcessComms(outbox, engine.context, link.capture)
        in_process.install()
        self.shell = shell = engine.shell
        shell.kernel = KernelObject(
            shell,
            in_process.manager,
            outbox,
            setup.kernel_info,
            setup.session,
            current_parent=engine.context.parent_message,
            before_publish=link.capture.collect,
        )
        mark_kernel_app(shell.config, connection_file)
        install_import_hooks()
        use_interruptible_pdb()
        if self.cells is not None:
            parts = debugger_parts(shell, self.cells)
            outbox.put(IoCall(lambda: io.debugger.open(parts)))
        self.fork_site = ForkSite(config, outbox, shell.user_ns, dirs.forks, setup.kernel_id)

        def make_snapshot_builder() -> SnapshotBuilder:
            from mpkernel.snapshots.builder import SnapshotBuilder

            return SnapshotBuilder(
                shell.user_ns,
                shell.user_ns_hidden,
                config.kernel.post_execute_budget_ms,
                snapshot_dispatch.wanted,
                config.kernel.preview_min_bytes,
            )

        snapshots = OnDemandBuilder(make_snapshot_builder, snapshot_dispatch.wanted)
        comms.activate(
            comms.BackendComms(
                outbox,
                engine.context,
                config,
                shell.user_ns,
                viewer_as_of=lambda: snapshots.viewer_as_of(in_execution=True),
                viewers=self.fork_site,
            )
        )
        kernel_requests = KernelRequests(
            engine,
            outbox,
            snapshots,
            lambda target: config.worker_for_target(target) is not None,
            self.fork_site,
        )
        self.dispatcher = ShellDispatcher(
            engine,
            outbox,
            link.work,
            kernel_info=lambda: setup.kernel_info,
            writers=(link.stdout, link.stderr),
            comms=in_process,
            capture=link.capture,
            snapshots=snapshots,
            kernel_requests=kernel_requests,
            viewers=self.fork_site,
        )
        register_subshell_magic(shell, io.subshells)
        dispatcher = self.dispatcher
        outbox.put(IoCall(lambda: io.subshells.set_starter(dispatcher.start_subshell)))

    # -- signals (main thread) ----------------------------------------------------------------
    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if not self.engine.executing:
            log.info("SIGINT with no user code running: ignored")
        elif in_debugger(frame):
            io, interrupt = self._io, self._link.interrupt_main
            self._link.outbox.put(IoCall(lambda: io.debugger.resume_then(interrupt)))
        elif not interrupt_shield.deflect():
            raise KeyboardInterrupt

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        log.info("SIGTERM: stopping children and exiting")
        terminate_children(grace_s=0.5, spare=(self._dirs.janitor_pid,))
        self._dirs.remove()  # the workers are gone: nobody uses the pipes or snapshots
        os._exit(0)

    # -- serving ---------------------------------------------------------------------------------
    def serve(self, session: str) -> None:
        """Take the signals, run the profile's start-up code, serve the shell until
        shutdown, then close IPython."""
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        wake = InterruptWake()
        wake.install()
        self.shell.events.register("pre_execute", wake.ensure)
        # The profile's extensions and start-up code, before the first request (the io
        # thread answers kernel_info meanwhile; other requests wait for the shell).
        startup.run(self._profile, self.shell)
        log.info(
            "mpkernel %s ready (session %s, pid %d)", mpkernel.__version__, session, os.getpid()
        )
        # What kernels killed together with their janitor left, off the way of requests.
        kernel_dirs.sweep_in_background()
        self.dispatcher.run()
        try:
            self.engine.close()
        except Exception:  # the kernel is ending: IPython's shutdown must not stop that
            log.exception("IPython shutdown failed")
