"""The worker supervisor: starts worker processes, watches them, enforces limits,
restarts them by policy. Runs on the io thread (its methods are called from the io
loop); it never publishes anything itself: exits and messages go to its `listener`.

    io thread ─ start() ─> multiprocess (forkserver | spawn) ─> worker process
        │   PUSH (per worker, connects to ipc://<rundir>/<id>.in) ──> PULL (binds)
        │   PULL (one socket, bound at every ipc://<rundir>/<id>.out) <─ PUSH
        │   sentinel fd of every worker ── polled ──> exit detected at once
        └── monitor of the PULL: per-endpoint connection counts, so that after an exit
            every frame the dead worker managed to push has been read before the
            listener is told (I6: drain first, then fail what is pending)

Frames on the PULL carry the worker's random token; frames with an unknown token are
dropped with a log line. What to do about an exit or a limit is decided by the pure
functions of `policy`; this module does the I/O around them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import zmq

from mpkernel.config.model import WorkerConfig
from mpkernel.monitor_events import recv_event
from mpkernel.multipart import NOBLOCK, recv_frames, send_frames
from mpkernel.supervision import ipc, zygote
from mpkernel.supervision.errors import WorkerUnavailable
from mpkernel.supervision.fork import ForkedWorker
from mpkernel.supervision.forked_process import ForkedProcess, RawFd
from mpkernel.supervision.policy import (
    ExitKind,
    WorkerExit,
    WorkerHistory,
    WorkerState,
    WorkerStats,
    classify_exit,
    limit_breach,
    on_exit,
    start_failure,
)
from mpkernel.supervision.runtime import WorkerSpec, worker_entry
from mpkernel.threads import hidden_from_debugger
from mpkernel.titles import title
from mpkernel.wakeup import WakeupPipe

if TYPE_CHECKING:
    import psutil

log = logging.getLogger(__name__)

LIMIT_CHECK_S = 0.25
DRAIN_FALLBACK_S = 1.0


@dataclass(eq=False)
class WorkerHandle:
    key: str
    config: WorkerConfig
    wid: str
    token: bytes
    in_addr: str
    out_addr: str
    push: zmq.Socket[bytes]
    started_at: float
    process: Any = None
    alive_w: Any = None
    pid: int | None = None
    state: WorkerState = WorkerState.STARTING
    ready: ipc.Ready | None = None  # what the worker said when it became ready
    outq: list[ipc.ToWorker] = field(default_factory=list)
    kill_reason: str | None = None
    stop_reason: str | None = None  # the kernel sent it StopWorker
    exit: WorkerExit | None = None
    ps: psutil.Process | None = None
    exited_at: float | None = None
    forked: bool = False  # forked from the kernel: its limit counts the pages it owns

    @property
    def name(self) -> str:
        return self.config.name


class SupervisorListener(Protocol):
    def on_worker_ready(self, handle: WorkerHandle, ready: ipc.Ready) -> None: ...

    def on_worker_message(self, handle: WorkerHandle, msg: ipc.FromWorker) -> None: ...

    def on_worker_exit(self, handle: WorkerHandle, exit: WorkerExit, restarting: bool) -> None: ...

    def on_worker_restarted(self, old_key: str, handle: WorkerHandle) -> None: ...


SHUTTING_DOWN = "the kernel is shutting down"


class WorkerSupervisor:
    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        poller: zmq.Poller,
        listener: SupervisorListener,
        log_level: str = "info",
        rundir: Path | None = None,
        kernel_id: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`rundir`: where the worker pipes go, made here (0700; default: a temporary
        directory of its own); `kernel_id` names the workers' processes."""
        self._ctx = ctx
        self._clock = clock
        self._poller = poller
        self._listener = listener
        self._log_level = log_level
        self._kernel_id = kernel_id
        # 0700: only this user can connect to the worker pipes.
        if rundir is None:
            rundir = Path(tempfile.mkdtemp(prefix="mpk-"))
        else:
            rundir.mkdir(mode=0o700)
        self.rundir = rundir
        self.pull = ctx.socket(zmq.PULL)
        self.pull.setsockopt(zmq.RCVHWM, 0)
        self.pull.setsockopt(zmq.LINGER, 0)
        self.monitor = self.pull.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        poller.register(self.pull, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        self.handles: dict[str, WorkerHandle] = {}
        self.records: dict[str, WorkerHistory] = {}
        self._by_token: dict[bytes, WorkerHandle] = {}
        self._by_sentinel: dict[int, WorkerHandle] = {}
        self._connections: dict[str, int] = {}
        self._exiting: list[WorkerHandle] = []
        self._counter = 0
        self._next_limit_check = clock() + LIMIT_CHECK_S
        self._restart_configs: dict[str, WorkerConfig] = {}
        self._spawned: deque[tuple[WorkerHandle, BaseException | None]] = deque()
        # Set once the kernel is shutting down: no worker starts or restarts after that.
        self.closing = False
        self._wakeup = WakeupPipe()
        poller.register(self._wakeup.read_fd, zmq.POLLIN)

    # -- lookup and start ----------------------------------------------------------------
    def record(self, name: str) -> WorkerHistory:
        return self.records.setdefault(name, WorkerHistory())

    def get(self, key: str) -> WorkerHandle | None:
        handle = self.handles.get(key)
        return handle if handle is not None and handle.state.live else None

    def acquire(self, config: WorkerConfig, comm_id: str) -> WorkerHandle:
        """The live worker that serves a new comm on `config`, started if needed."""
        key = f"{config.name}:{comm_id}" if config.processes == "per-comm" else config.name
        handle = self.get(key)
        if handle is not None:
            return handle
        rec = self.record(config.name)
        if rec.disabled_reason is not None:
            raise WorkerUnavailable(rec.disabled_reason)
        if rec.restart_at is not None and config.processes == "shared":
            # A restart is scheduled: do it now, the new comm should not wait for backoff;
            # the comms kept for the restart are reopened as on a timed restart.
            rec.restart_at = None
            rec.restarts += 1
            handle = self.start(config, key)
            self._listener.on_worker_restarted(key, handle)
            return handle
        return self.start(config, key)

    def adopt(self, config: WorkerConfig, comm_id: str, forked: ForkedWorker) -> WorkerHandle:
        """Take a child forked from the kernel for `comm_id` (`fork.ForkSite`) as its
        worker; it is watched, limited and failed like any other. During shutdown the child
        is sent away instead (its liveness pipe closes) and `WorkerUnavailable` raised."""
        if self.closing:
            os.close(forked.alive_w)
            raise WorkerUnavailable(SHUTTING_DOWN)
        spec = forked.spec
        push = self._connect(spec.in_addr)
        self.pull.bind(spec.out_addr)
        wid = spec.in_addr.rsplit("/", 1)[-1].removesuffix(".in")
        key = f"{config.name}:{comm_id}:{wid}"  # a comm's successive forks differ
        handle = WorkerHandle(
            key, config, wid, spec.token, spec.in_addr, spec.out_addr, push, self._clock()
        )
        handle.forked = True
        handle.process = ForkedProcess(forked.pid)
        handle.alive_w = RawFd(forked.alive_w)
        handle.pid = forked.pid
        self.handles[key] = handle
        self._by_token[spec.token] = handle
        self.record(config.name).starts += 1
        self._by_sentinel[handle.process.sentinel] = handle
        self._poller.register(handle.process.sentinel, zmq.POLLIN)
        log.info("adopted worker %s (%s, pid %s, forked)", wid, config.target, forked.pid)
        return handle

    def _connect(self, in_addr: str) -> zmq.Socket[bytes]:
        push = self._ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, 0)
        push.setsockopt(zmq.LINGER, 0)
        # Connect, not bind: a connecting socket has its pipe at once, so messages queue
        # until the worker (which binds) is there, and a send never blocks or fails.
        push.setsockopt(zmq.RECONNECT_IVL, 10)
        push.connect(in_addr)
        return push

    def start(self, config: WorkerConfig, key: str) -> WorkerHandle:
        """Create the worker's pipes and start its process; returns at once.

        `Process.start()` runs on a short-lived thread: with the forkserver it waits until
        the server has preloaded its modules, which must not stall the io thread. Messages
        for the worker queue in its handle until it says Ready.
        """
        if self.closing:
            raise WorkerUnavailable(SHUTTING_DOWN)
        import multiprocess

        zygote.use_in_multiprocess()
        self._counter += 1
        wid = f"{config.name}-{self._counter}"
        token = os.urandom(16)
        in_addr = f"ipc://{self.rundir}/{wid}.in"
        out_addr = f"ipc://{self.rundir}/{wid}.out"
        push = self._connect(in_addr)
        self.pull.bind(out_addr)
        handle = WorkerHandle(key, config, wid, token, in_addr, out_addr, push, self._clock())
        spec = WorkerSpec(
            name=config.name,
            target=config.target,
            handler=config.handler,
            in_addr=in_addr,
            out_addr=out_addr,
            token=token,
            log_level=self._log_level,
            title=title("worker", self._kernel_id, config.name),
        )
        mp = multiprocess.get_context(config.start_method)
        alive_r, alive_w = mp.Pipe(duplex=False)
        handle.alive_w = alive_w
        handle.process = mp.Process(
            target=worker_entry,
            args=(spec, alive_r),
            name=f"mpkernel-worker-{config.name}",
            daemon=True,
        )
        self.handles[key] = handle
        self._by_token[token] = handle
        self.record(config.name).starts += 1
        hidden_from_debugger(
            threading.Thread(
                target=self._spawn,
                args=(handle, alive_r),
                name=f"mpkernel-spawn-{wid}",
                daemon=True,
            )
        ).start()
        return handle

    def _spawn(self, handle: WorkerHandle, alive_r: Any) -> None:
        """Spawner thread: start the process, then hand the result to the io thread."""
        error: BaseException | None = None
        try:
            zygote.main_module_has_a_spec()
            handle.process.start()
        except BaseException as e:  # noqa: BLE001 - reported to the io thread as a crash
            error = e
        finally:
            alive_r.close()
        self._spawned.append((handle, error))
        self._wakeup.wake()

    def _on_spawned(self) -> None:
        self._wakeup.clear()
        while self._spawned:
            handle, error = self._spawned.popleft()
            if error is not None:
                log.error("worker %s could not start: %s", handle.wid, error)
                handle.exit = start_failure(error)
                handle.state = WorkerState.EXITING
                handle.exited_at = self._clock()
                self._exiting.append(handle)
                continue
            process = handle.process
            handle.pid = process.pid
            self._by_sentinel[process.sentinel] = handle
            self._poller.register(process.sentinel, zmq.POLLIN)
            log.info(
                "started worker %s (%s, pid %s, %s)",
                handle.wid,
                handle.config.target,
                process.pid,
                handle.config.start_method,
            )

    def send(self, handle: WorkerHandle, msg: ipc.ToWorker) -> None:
        if handle.state is WorkerState.STARTING:
            handle.outq.append(msg)
        elif handle.state is WorkerState.READY:
            self._push(handle, msg)
        else:
            log.warning("message %s for exited worker %s dropped", type(msg).__name__, handle.wid)

    def _push(self, handle: WorkerHandle, msg: ipc.ToWorker) -> None:
        # Never block the io thread. The socket connects and has no high-water mark, so
        # this does not fail in practice; if it ever did, the worker is gone and what was
        # pending for it is answered by the exit path (I6).
        try:
            send_frames(handle.push, ipc.encode(msg), NOBLOCK)
        except zmq.Again:
            log.warning(
                "worker %s is not reading (exited?): %s dropped", handle.wid, type(msg).__name__
            )

    def begin_shutdown(self) -> None:
        """The kernel is shutting down: every worker is asked to stop, none starts from now
        on (a restart that was scheduled is dropped), and an exit is no longer a crash (the
        kernel's reaper terminates what does not stop in time)."""
        self.closing = True
        self._restart_configs.clear()
        for rec in self.records.values():
            rec.restart_at = None
        for handle in list(self.handles.values()):
            self.stop(handle, "kernel_shutdown")

    def stop(self, handle: WorkerHandle, reason: str) -> None:
        """Ask a worker to exit cleanly (its comms are already closed)."""
        handle.kill_reason = None
        self.send(handle, ipc.StopWorker(reason))
        handle.stop_reason = reason

    def kill(self, handle: WorkerHandle, reason: str) -> None:
        if handle.pid is None or not handle.state.live:
            return
        handle.kill_reason = reason
        log.warning("killing worker %s (pid %s): %s", handle.wid, handle.pid, reason)
        with contextlib.suppress(ProcessLookupError):
            os.kill(handle.pid, signal.SIGKILL)

    # -- events --------------------------------------------------------------------------
    def owns(self, fd_or_socket: Any) -> bool:
        return (
            fd_or_socket is self.pull
            or fd_or_socket is self.monitor
            or fd_or_socket in self._by_sentinel
        )

    def handle_events(self, events: dict[Any, int]) -> None:
        if self._wakeup.read_fd in events:
            self._on_spawned()
        if self.monitor in events:
            self._read_monitor()
        if self.pull in events:
            self._read_pull()
        for fd, handle in list(self._by_sentinel.items()):
            if fd in events:
                self._on_sentinel(fd, handle)
        self._finish_exits()

    def _read_pull(self) -> None:
        while True:
            try:
                frames = recv_frames(self.pull, NOBLOCK)
            except zmq.Again:
                return
            handle = self._by_token.get(frames[0]) if frames else None
            if handle is None:
                log.warning("dropped worker frames with an unknown token (%d frames)", len(frames))
                continue
            try:
                msg = ipc.decode_from_worker(frames[1:])
            except ipc.IpcError as e:
                log.warning("dropped bad frames from worker %s: %s", handle.wid, e)
                continue
            if isinstance(msg, ipc.Ready):
                self._on_ready(handle, msg)
            else:
                self._listener.on_worker_message(handle, msg)

    def _on_ready(self, handle: WorkerHandle, msg: ipc.Ready) -> None:
        if handle.state is not WorkerState.STARTING:
            return
        handle.state = WorkerState.READY
        handle.ready = msg
        import psutil  # a worker's first use of it: not on the kernel's start-up path

        with contextlib.suppress(psutil.Error):
            handle.ps = psutil.Process(msg.pid)
        log.info(
            "worker %s ready in %.0f ms", handle.wid, (self._clock() - handle.started_at) * 1000
        )
        queued, handle.outq = handle.outq, []
        for item in queued:
            self._push(handle, item)
        self._listener.on_worker_ready(handle, msg)

    def _read_monitor(self) -> None:
        while True:
            try:
                event = recv_event(self.monitor)
            except zmq.Again:
                return
            endpoint = event.endpoint.decode()
            if event.event == zmq.EVENT_ACCEPTED:
                self._connections[endpoint] = self._connections.get(endpoint, 0) + 1
            elif event.event == zmq.EVENT_DISCONNECTED:
                self._connections[endpoint] = self._connections.get(endpoint, 0) - 1

    def _on_sentinel(self, fd: int, handle: WorkerHandle) -> None:
        self._poller.unregister(fd)
        del self._by_sentinel[fd]
        handle.process.join(0)
        handle.exit = classify_exit(handle.process.exitcode, handle.stop_reason, handle.kill_reason)
        handle.state = WorkerState.EXITING
        handle.exited_at = self._clock()
        self._exiting.append(handle)

    def _finish_exits(self) -> None:
        if not self._exiting:
            return
        now = self._clock()
        still: list[WorkerHandle] = []
        for handle in self._exiting:
            drained = self._open_connections(handle) <= 0
            if drained or now - (handle.exited_at or now) >= DRAIN_FALLBACK_S:
                # Every connection of the dead worker reported EOF: all it pushed is
                # in the PULL's queue now. Read it before failing what is pending.
                self._read_pull()
                self._finish_exit(handle)
            else:
                still.append(handle)
        self._exiting = still

    def _open_connections(self, handle: WorkerHandle) -> int:
        return self._connections.get(handle.out_addr, 0)

    def _finish_exit(self, handle: WorkerHandle) -> None:
        handle.state = WorkerState.DEAD
        if isinstance(handle.process, ForkedProcess):
            handle.process.close()
        self._by_token.pop(handle.token, None)
        handle.push.close(linger=0)
        with contextlib.suppress(zmq.ZMQError):
            self.pull.unbind(handle.out_addr)
        self._connections.pop(handle.out_addr, None)
        if handle.alive_w is not None:
            handle.alive_w.close()
        exit = handle.exit or classify_exit(None, handle.stop_reason, handle.kill_reason)
        if self.closing and exit.kind is not ExitKind.REQUESTED:
            # The kernel's reaper terminates what did not stop in time: not a crash.
            log.info("worker %s %s during the kernel's shutdown", handle.wid, exit.reason)
        elif exit.kind is ExitKind.REQUESTED:
            log.info("worker %s stopped", handle.wid)
        else:
            target, pid = handle.config.target, handle.pid
            log.error("worker %s (%s, pid %s) %s", handle.wid, target, pid, exit.reason)
        if self.handles.get(handle.key) is handle:
            del self.handles[handle.key]
        rec = self.record(handle.name)
        was_disabled = rec.disabled_reason is not None
        restarting = not self.closing and on_exit(rec, handle.config, exit, self._clock())
        if restarting:
            self._restart_configs[handle.key] = handle.config
        elif rec.disabled_reason is not None and not was_disabled:
            log.error("%s", rec.disabled_reason)
        self._listener.on_worker_exit(handle, exit, restarting)

    # -- timers --------------------------------------------------------------------------
    def timeout_ms(self) -> int | None:
        deadlines: list[float] = []
        if self._exiting:
            deadlines.append(min((h.exited_at or 0) + DRAIN_FALLBACK_S for h in self._exiting))
        if any(self._limits(h) for h in self.handles.values()):
            deadlines.append(self._next_limit_check)
        for config in self._restart_configs.values():
            rec = self.record(config.name)
            if rec.restart_at is not None:
                deadlines.append(rec.restart_at)
        if not deadlines:
            return None
        return max(0, int((min(deadlines) - self._clock()) * 1000) + 1)

    @staticmethod
    def _limits(handle: WorkerHandle) -> bool:
        cfg = handle.config
        return bool(cfg.memory_limit or cfg.cpu_limit_s or cfg.rpc_timeout_s)

    def on_timer(self) -> None:
        now = self._clock()
        self._finish_exits()
        for key, cfg in list(self._restart_configs.items()):
            rec = self.record(cfg.name)
            if rec.restart_at is None:
                del self._restart_configs[key]
            elif rec.restart_at <= now:
                rec.restart_at = None
                del self._restart_configs[key]
                if self.get(key) is None and rec.disabled_reason is None:
                    rec.restarts += 1
                    try:
                        handle = self.start(cfg, key)
                    except WorkerUnavailable as e:
                        rec.disabled_reason = str(e)
                        continue
                    self._listener.on_worker_restarted(key, handle)
        if now >= self._next_limit_check:
            self._next_limit_check = now + LIMIT_CHECK_S
            for handle in list(self.handles.values()):
                if handle.state is WorkerState.READY:
                    self._check_limits(handle)

    def _check_limits(self, handle: WorkerHandle) -> None:
        import psutil

        cfg, ps = handle.config, handle.ps
        if ps is None or not (cfg.memory_limit or cfg.cpu_limit_s):
            return
        try:
            times = ps.cpu_times()
            breach = limit_breach(
                cfg,
                rss=ps.memory_info().rss,
                cpu_s=times.user + times.system,
                forked=handle.forked,
                uss=lambda: ps.memory_full_info().uss,
            )
        except psutil.Error:
            return  # it is exiting: its sentinel says so
        if breach is not None:
            self.kill(handle, breach)

    # -- status and shutdown -------------------------------------------------------------
    def stats(self) -> list[WorkerStats]:
        """Every live worker, then every configured worker with no process now."""
        import psutil

        out: list[WorkerStats] = []
        for handle in self.handles.values():
            rss = cpu = None
            if handle.ps is not None:
                with contextlib.suppress(psutil.Error):
                    rss = handle.ps.memory_info().rss
                    t = handle.ps.cpu_times()
                    cpu = t.user + t.system
            cfg = handle.config
            out.append(
                WorkerStats.of(
                    self.record(handle.name), handle.name, handle.key, handle.state.value,
                    target=cfg.target, pid=handle.pid, rss=rss, memory_limit=cfg.memory_limit,
                    cpu_s=cpu,
                )
            )  # fmt: skip
        live = {h.name for h in self.handles.values()}
        for name, rec in self.records.items():
            if name not in live:
                state = "disabled" if rec.disabled_reason else "stopped"
                out.append(WorkerStats.of(rec, name, name, state))
        return out

    def shutdown(self, grace_s: float = 0.5) -> None:
        """Stop every worker (kernel shutdown): they were sent StopWorker; whatever has not
        exited within `grace_s` is killed. Sockets and the run directory are removed."""
        from multiprocess.connection import wait

        started = [h for h in self.handles.values() if h.pid is not None]
        deadline = time.monotonic() + grace_s
        pending = {h.process.sentinel: h for h in started}
        while pending and (left := deadline - time.monotonic()) > 0:
            for sentinel in wait(list(pending), timeout=left):
                pending.pop(sentinel, None)
        for handle in pending.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(handle.pid, signal.SIGKILL)  # type: ignore[arg-type]
        for handle in started:
            handle.process.join(1)
        for handle in self.handles.values():
            handle.push.close(linger=0)
            if handle.alive_w is not None:
                handle.alive_w.close()
        self.monitor.close(linger=0)
        self.pull.close(linger=0)
        self._wakeup.close()
        with contextlib.suppress(OSError):
            for path in self.rundir.iterdir():
                path.unlink()
            self.rundir.rmdir()
