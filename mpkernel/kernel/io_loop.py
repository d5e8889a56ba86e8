"""The io thread (`mpkernel-io`): the only thread that touches shell, control, stdin and
IOPub. It polls them together with the outbox wakeup fd and the captured fd 1/2 pipes;
what it sends is signed and framed by `frontend.FrontendSender`.

One loop iteration, in this order:
1. handle control requests (never wait for the main thread),
2. if a fd 1/2 pipe is readable, queue its text (see `capture`), then drain the outbox
   through the funnel (I1-I3, I8),
3. move shell requests to the main thread's work queue,
4. route stdin replies to the waiting `input()` (`stdin_channel`),
5. welcome each IOPub subscription (I7); count the frontends present (`presence`),
6. flush the stream buffer if its timer ran out (I2).

Errors: a `WireError` (the peer's fault) is logged and the frames dropped. Any other
exception while handling one message is logged and the loop goes on (the one
per-message `except Exception` of the main process). If the loop itself dies, ordering
can no longer be guaranteed, so the process exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

import zmq

from mpkernel.comms.router import CommRouter
from mpkernel.debugger.door import DebuggerDoor, DebuggerParts
from mpkernel.funnel.activity import KernelActivity
from mpkernel.funnel.iopub import IOPubFunnel
from mpkernel.funnel.items import (
    CommItem,
    DrainShell,
    InputRequest,
    IoCall,
    Publish,
    PublishRaw,
    Reply,
)
from mpkernel.kernel.control import ControlHandler
from mpkernel.kernel.frontend import decode_or_log, describe
from mpkernel.kernel.parts import FrontendWires, KernelSetup, ThreadLink
from mpkernel.kernel.presence import FrontendPresence
from mpkernel.kernel.sockets import close_sockets
from mpkernel.kernel.stdin_channel import StdinChannel
from mpkernel.kernel.subshells import SubshellRegistry, UnknownSubshellError, subshell_id_of
from mpkernel.kernel.usage import UsageMeter
from mpkernel.kernel.work import MainCall, ShellWork, StopWork, reply_type_for
from mpkernel.kernel.worker_link import WorkerLink
from mpkernel.monitor_events import recv_event
from mpkernel.multipart import NOBLOCK, recv_frames
from mpkernel.snapshots.dispatch import SnapshotDispatcher
from mpkernel.supervision.supervisor import WorkerSupervisor
from mpkernel.threads import hidden_from_debugger
from mpkernel.wire import Header, Message

if TYPE_CHECKING:
    from mpkernel.debugger.session import DebugSession

log = logging.getLogger(__name__)

COMM_TYPES = frozenset(("comm_open", "comm_msg", "comm_close"))
SHUTDOWN_GRACE_S = 3.0
HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


def terminate_children(grace_s: float = 1.0, spare: Collection[int | None] = ()) -> None:
    """Terminate every descendant of this process but `spare` (pids), then kill what is
    left; reap all."""
    import psutil  # at the end of the kernel only

    try:
        children = [p for p in psutil.Process().children(recursive=True) if p.pid not in spare]
    except psutil.Error:
        return
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=grace_s)


class KernelIO(threading.Thread):
    """Owner of the frontend sockets and consumer of the outbox."""

    def __init__(
        self,
        wires: FrontendWires,
        link: ThreadLink,
        setup: KernelSetup,
        snapshots: SnapshotDispatcher,
    ) -> None:
        super().__init__(name="mpkernel-io", daemon=True)
        hidden_from_debugger(self)
        self._sockets = sockets = wires.sockets
        self._sender = sender = wires.sender
        self._signer = wires.signer
        self._outbox = link.outbox
        self._work = work = link.work
        self._capture = link.capture
        self._fd_parent = link.fd_parent
        self._workers_dir = setup.workers_dir
        self._kernel_id = setup.kernel_id
        self._janitor_pid = setup.janitor_pid
        config, interrupt_main = setup.config, link.interrupt_main
        kernel_info = setup.kernel_info
        self._funnel = IOPubFunnel(self)
        self._activity = KernelActivity()
        self.subshells = SubshellRegistry()
        self._usage = UsageMeter()
        self._control = ControlHandler(
            lambda: kernel_info,
            interrupt_main,
            self._begin_shutdown,
            self.subshells,
            self._usage_reply,
        )
        self._interrupt_main = interrupt_main
        self._running = True
        self._shutdown_deadline: float | None = None
        self.shutdown_requested = threading.Event()
        self._ctx = setup.ctx
        self._config = config
        self._link = WorkerLink(self._funnel.handle, work)
        self.router = CommRouter(
            config, self._link, snapshots, self._health_extra, lambda: self.subscribers > 0
        )
        self._presence = FrontendPresence(
            config.kernel, self._frontend_gone, self.router.close_for_disconnect
        )
        self._stdin = StdinChannel(sockets.stdin, sender.frames, sender.make_header)
        self._snapshots = snapshots
        self.supervisor: WorkerSupervisor | None = None
        self.restart_requested = False
        self._main_stuck = False
        self.reaper: threading.Thread | None = None
        self._poller: zmq.Poller | None = None
        self.debugger = DebuggerDoor(
            setup.debugger_enabled, self._funnel.handle, self._debug_session
        )

    # -- thread body -------------------------------------------------------------------
    def run(self) -> None:
        # Process-directed SIGINT must land on the main thread, where user code runs.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self._loop()
        except BaseException:
            log.critical("the io thread failed; output ordering is lost, exiting", exc_info=True)
            os._exit(1)
        self._close_sockets()
        if self._main_stuck:
            # User code ignored the interrupt; everything owed was sent long ago.
            log.warning("exiting without the main thread")
            os._exit(0)

    def _close_sockets(self) -> None:
        self.debugger.close()
        close_sockets(self._sockets)

    # -- debugger ------------------------------------------------------------------------
    def _debug_session(self, parts: DebuggerParts) -> DebugSession:
        from mpkernel.debugger.session import DebugSession  # once the debugger is used

        assert self._poller is not None, "parts arrive through the outbox, drained by the loop"
        return DebugSession(
            self._ctx,
            self._poller,
            self._funnel.handle,
            self._run_on_main,
            self._before_debug_event,
            parts.start_debugpy,
            parts.view,
            parts.rich_repr,
            parts.kernel_files,
            parts.cells,
        )

    def _run_on_main(
        self, fn: Callable[[], Any], then: Callable[[Any, BaseException | None], None]
    ) -> None:
        outbox = self._outbox

        def call() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - an interrupt too: the answer
                error = exc
            outbox.put(IoCall(lambda: then(result, error)))

        self._work.put(MainCall(call))

    def _before_debug_event(self) -> None:
        # What the main thread wrote before it stopped goes out before the stop (I1, I2).
        self._capture.collect(self._fd_parent())
        self._drain_outbox()

    def _usage_reply(self) -> dict[str, Any]:
        workers: list[tuple[str, int]] = []
        if self.supervisor is not None:
            workers = [
                (handle.name, handle.pid)
                for handle in self.supervisor.handles.values()
                if handle.pid is not None and handle.state != "dead"
            ]
        return self._usage.reply(workers)

    def _health_extra(self) -> dict[str, Any]:
        return {
            "iopub_subscribers": self.subscribers,
            "iopub_departures": self._presence.departures,
        }

    def _loop(self) -> None:
        s = self._sockets
        poller = self._poller = zmq.Poller()
        supervisor = self.supervisor = WorkerSupervisor(
            self._ctx,
            poller,
            self._link,
            self._config.kernel.log_level,
            rundir=self._workers_dir,
            kernel_id=self._kernel_id,
        )
        self._link.attach(self.router, supervisor)
        for sock in (s.control, s.shell, s.stdin, s.iopub):
            poller.register(sock, zmq.POLLIN)
        # Who is connected comes from the socket monitor, in real time: a reconnect right
        # after a departure could otherwise be counted before it (XPUB reports departures
        # later than subscriptions), and the disconnect would be missed.
        peers_monitor = s.iopub_peers
        poller.register(peers_monitor, zmq.POLLIN)
        poller.register(self._outbox.fileno(), zmq.POLLIN)
        for fd in self._capture.read_fds:
            poller.register(fd, zmq.POLLIN)
        funnel = self._funnel
        while self._running:
            timeout = funnel.timeout_ms()
            for other in (
                supervisor.timeout_ms(),
                self._presence.timeout_ms(time.monotonic()),
                self.router.timeout_ms(time.monotonic()),
            ):
                if other is not None:
                    timeout = other if timeout is None else min(timeout, other)
            if self._shutdown_deadline is not None:
                left = max(0, int((self._shutdown_deadline - time.monotonic()) * 1000) + 1)
                timeout = left if timeout is None else min(timeout, left)
                if left <= 1:
                    log.warning(
                        "main thread did not finish within %.1fs of shutdown", SHUTDOWN_GRACE_S
                    )
                    self._main_stuck = True
                    break
            events = dict(poller.poll(timeout))
            if s.control in events:
                self._recv_all(s.control, self._on_control)
            if self._capture_ready(events):
                # Text nobody on the main thread has claimed yet (e.g. a subprocess that
                # outlives its cell): it joins the queue behind what is already there.
                self._capture.collect(self._fd_parent())
            self._drain_outbox()
            self.debugger.on_events(events)
            if s.shell in events:
                self._recv_all(s.shell, self._on_shell)
            if s.stdin in events:
                self._recv_all(s.stdin, self._on_stdin)
            if peers_monitor in events:
                self._on_iopub_peers(peers_monitor)
            if s.iopub in events:
                self._sender.on_subscriptions()
            supervisor.handle_events(events)
            supervisor.on_timer()
            self._link.kill_overdue()
            self.router.on_timer(time.monotonic())
            funnel.flush_due()
            self._arm_stream_timer()
        funnel.flush()
        supervisor.shutdown()
        self._snapshots.close()
        s.iopub.disable_monitor()

    def _drain_outbox(self) -> None:
        for item in self._outbox.drain():
            try:
                self._funnel.handle(item)
            except Exception:  # per item: one that cannot be sent never stops the funnel
                log.exception("could not send %s", type(item).__name__)

    def _arm_stream_timer(self) -> None:
        """Tell producers whether stream text needs a wakeup (see `Outbox.put`).

        Disarming is followed by one more drain: text put while the flag was still set
        (so without a wakeup) is taken now; text put after it wakes us.
        """
        outbox = self._outbox
        while True:
            armed = self._funnel.timeout_ms() is not None
            outbox.stream_timer_armed = armed
            if armed or outbox.empty():
                return
            self._drain_outbox()

    def _capture_ready(self, events: dict[Any, int]) -> bool:
        return any(fd in events for fd in self._capture.read_fds)

    def _recv_all(self, sock: zmq.Socket[bytes], handle: Callable[[list[bytes]], None]) -> None:
        while True:
            try:
                frames = recv_frames(sock, NOBLOCK)
            except zmq.Again:
                return
            try:
                handle(frames)
            except Exception:  # per message: one we cannot handle is logged and dropped
                log.exception("failed to handle a message (%s)", describe(frames))

    # -- inbound -----------------------------------------------------------------------
    def _on_control(self, frames: list[bytes]) -> None:
        msg = decode_or_log("control", frames, self._signer)
        if msg is None:
            return
        if msg.msg_type == "debug_request":
            self.debugger.request(msg)
        else:
            self._control.handle(msg, self._funnel.handle)

    def _on_shell(self, frames: list[bytes]) -> None:
        msg = decode_or_log("shell", frames, self._signer)
        if msg is None:
            return
        if msg.msg_type == "shutdown_request":
            # Deprecated on shell since 5.4 but still sent by old clients.
            self._control.handle(msg, self._shell_reply_emitter)
            return
        if msg.msg_type in COMM_TYPES and self.router.route_shell(msg, time.monotonic()):
            # A worker's comm, whichever shell the message came on.
            return
        subshell_id = subshell_id_of(msg.header)
        if subshell_id is None:
            work = self._work
        else:
            try:
                work = self.subshells.work_for(subshell_id)
            except UnknownSubshellError as e:
                self._refuse_unknown_subshell(msg, e)
                return
        if msg.msg_type == "kernel_info_request" and work.empty():
            # Nothing is queued ahead of it on its shell, and its reply is static: answered
            # now, even while that shell runs a cell (a frontend that connects to a busy
            # kernel learns at once what it supports, subshells included). Its reply can
            # overtake only the reply of the request being run.
            self._control.handle(msg, self._shell_reply_emitter)
            return
        work.put(ShellWork(msg))

    def _refuse_unknown_subshell(
        self, msg: Message[dict[str, Any]], error: UnknownSubshellError
    ) -> None:
        """Busy, an error reply (for a request), idle: a client that waits for the idle of
        a comm message (no reply) learns of the failure too (ipykernel 7.4 does the same)."""
        log.warning("cannot handle %s %s: %s", msg.msg_type, msg.msg_id, error)
        emit = self._shell_reply_emitter
        emit(Publish("status", {"execution_state": "busy"}, msg.header))
        reply_type = reply_type_for(msg.msg_type)
        if reply_type is not None:
            content = {
                "status": "error",
                "ename": type(error).__name__,
                "evalue": str(error),
                "traceback": [],
            }
            emit(Reply("shell", msg.identities, reply_type, content, msg.header))
        emit(Publish("status", {"execution_state": "idle"}, msg.header))

    def _shell_reply_emitter(self, item: Publish | Reply) -> None:
        if isinstance(item, Reply):
            item = Reply(
                "shell", item.identities, item.msg_type, item.content, item.parent, item.metadata
            )
        self._funnel.handle(item)

    def _on_stdin(self, frames: list[bytes]) -> None:
        msg = decode_or_log("stdin", frames, self._signer)
        if msg is not None:
            self._stdin.on_reply(msg)

    def _on_iopub_peers(self, monitor: zmq.Socket[bytes]) -> None:
        """Connection events of the IOPub socket: the frontends present, in real time."""
        while True:
            try:
                event = recv_event(monitor)
            except zmq.Again:
                return
            kind = event.event
            if kind == zmq.EVENT_ACCEPTED:
                self._presence.accepted(event.value)
            elif kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._presence.handshake_succeeded()
            elif kind & HANDSHAKE_FAILED:
                self._presence.handshake_failed()
            elif kind == zmq.EVENT_DISCONNECTED:
                self._presence.disconnected(event.value, time.monotonic())

    @property
    def subscribers(self) -> int:
        return self._presence.subscribers

    def _frontend_gone(self) -> None:
        """The last IOPub subscriber left: nothing may wait on the frontend any more."""
        self._stdin.fail("input() cannot be answered: the frontend disconnected")
        self.router.frontend_gone("frontend_disconnected")

    # -- FunnelSink --------------------------------------------------------------------
    def publish(self, item: Publish) -> None:
        self._sender.publish(item.msg_type, item.content, item.parent, item.metadata, item.buffers)
        if item.msg_type == "status" and item.parent is not None:
            state = item.content["execution_state"]
            kernel_state = self._activity.kernel_status_after(state, item.parent.msg_id)
            if kernel_state is not None:
                self._sender.publish("status", {"execution_state": kernel_state}, None)

    def reply(self, item: Reply) -> None:
        self._sender.reply(
            item.channel, item.identities, item.msg_type, item.content, item.parent, item.metadata
        )

    def publish_raw(self, item: PublishRaw) -> None:
        self._sender.publish_json(item.msg_type, item.content_json, item.parent, item.buffers)

    def comm_item(self, item: CommItem) -> None:
        self.router.comm_item(item, time.monotonic())

    def idle_may_go(self, parent: Header | None) -> bool:
        return self.router.idle_may_go(parent)

    def request_input(self, item: InputRequest) -> None:
        self._stdin.request(item)

    def drain_shell(self, item: DrainShell) -> None:
        self._recv_all(self._sockets.shell, self._on_shell)
        if item.subshell_id is None:
            self._work.put(item.marker)  # type: ignore[arg-type]
            return
        # A subshell deleted meanwhile serves nothing any more.
        with contextlib.suppress(UnknownSubshellError):
            self.subshells.work_for(item.subshell_id).put(item.marker)  # type: ignore[arg-type]

    def stop(self) -> None:
        self._running = False

    # -- shutdown ------------------------------------------------------------------------
    def begin_shutdown(self, restart: bool) -> None:
        """Shut down as a shutdown_request would (io thread)."""
        self._begin_shutdown(restart)

    def _begin_shutdown(self, restart: bool) -> None:
        if self._shutdown_deadline is not None:
            return
        log.info("shutdown requested (restart=%s)", restart)
        self.restart_requested = restart
        self._shutdown_deadline = time.monotonic() + SHUTDOWN_GRACE_S
        self.shutdown_requested.set()
        self._work.put(StopWork())
        self.subshells.stop_all()
        if self.supervisor is not None:
            self.supervisor.begin_shutdown()
        self._interrupt_main()
        self._stdin.fail("the kernel is shutting down")
        self.reaper = hidden_from_debugger(
            threading.Thread(
                target=terminate_children,
                kwargs={"spare": (self._janitor_pid,)},
                name="mpkernel-reaper",
                daemon=True,
            )
        )
        self.reaper.start()
