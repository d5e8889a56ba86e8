"""Shell dispatch on the main thread: one handler per request type, always bracketed.

The io thread decodes shell requests and puts them in the work queue; this module takes
them one at a time, in order, and for each one queues: busy, then the reply (or an error
reply if the handler raised), then idle (I3). Output produced while handling travels the
same outbox between busy and the reply, so its order is fixed by construction.

A subshell is served by a dispatcher of its own on a thread of its own (`serve_subshell`),
with its own work queue and abort window, in the same shell and namespace; what only the
main thread may do after a cell (snapshots for the workers, viewers' forks) it asks of the
main thread, which does it between its own requests (docs/subshells.md).
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mpkernel.engine.execute import ExecutionEngine
from mpkernel.engine.inprocess import InProcessComms
from mpkernel.engine.kernel_requests import KernelRequests
from mpkernel.funnel.capture import FdCapture, FunnelWriter
from mpkernel.funnel.items import CommInfo, DrainShell, Reply, Status
from mpkernel.funnel.outbox import Outbox
from mpkernel.kernel.work import (
    AbortUntil,
    KernelWork,
    MainCall,
    SnapshotWork,
    StopWork,
    WorkItem,
    reply_type_for,
)
from mpkernel.snapshots.on_demand import OnDemandBuilder
from mpkernel.wire import Header, Message

if TYPE_CHECKING:
    from mpkernel.supervision.fork import ForkSite

log = logging.getLogger(__name__)


# A handler returns the reply content, or None when there is no reply to send (comm
# messages) or someone else sends it (comm_info: the io thread).
Handler = Callable[[Message[dict[str, Any]]], dict[str, Any] | None]


def error_content(exc: BaseException) -> dict[str, Any]:
    return {
        "status": "error",
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


class ShellDispatcher:
    """Serves shell requests on the main thread, in arrival order."""

    def __init__(
        self,
        engine: ExecutionEngine,
        outbox: Outbox,
        work: queue.SimpleQueue[WorkItem],
        kernel_info: Callable[[], dict[str, Any]],
        writers: tuple[FunnelWriter, FunnelWriter],
        comms: InProcessComms,
        capture: FdCapture,
        snapshots: OnDemandBuilder,
        kernel_requests: KernelRequests,
        viewers: ForkSite | None = None,
        subshell_id: str | None = None,
        main_work: queue.SimpleQueue[WorkItem] | None = None,
    ) -> None:
        """`subshell_id`: the subshell this dispatcher serves (None: the main shell);
        `main_work`: the main shell's queue, for what a subshell asks of the main thread."""
        self._subshell_id = subshell_id
        self._main_work = main_work
        self._kernel_info = kernel_info
        self._comms = comms
        self._capture = capture
        self._snapshots = snapshots
        self._viewers = viewers
        self._kernel_requests = kernel_requests
        self._engine = engine
        self._outbox = outbox
        self._work = work
        self._writers = writers
        engine.context.writers = writers
        self._aborting: AbortUntil | None = None
        self._handlers: dict[str, Handler] = {
            "execute_request": self._execute,
            "complete_request": self._complete,
            "inspect_request": self._inspect,
            "history_request": self._history,
            "is_complete_request": self._is_complete,
            "kernel_info_request": lambda _msg: kernel_info(),
            "comm_info_request": self._comm_info_request,
            "comm_open": self._comm_handler(comms.comm_open),
            "comm_msg": self._comm_handler(comms.comm_msg),
            "comm_close": self._comm_handler(comms.comm_close),
        }

    def run(self) -> None:
        """Serve until a `StopWork` arrives."""
        while True:
            try:
                item = self._work.get()
            except KeyboardInterrupt:
                # An interrupt while idle has nothing to interrupt.
                continue
            if isinstance(item, StopWork):
                return
            if isinstance(item, AbortUntil):
                if item is self._aborting:
                    self._aborting = None
                continue
            try:
                if isinstance(item, KernelWork):
                    self._kernel_requests.serve(item)
                elif isinstance(item, SnapshotWork):
                    self._snapshot_now()
                elif isinstance(item, MainCall):
                    item.fn()
                else:
                    self.handle(item.message)
            except KeyboardInterrupt:
                log.warning("interrupt arrived outside user code; ignored")

    def start_subshell(
        self, subshell_id: str, work: queue.SimpleQueue[WorkItem]
    ) -> threading.Thread:
        """Start the thread that serves subshell `subshell_id` from `work`: a dispatcher with
        this one's parts (the main shell's), its own queue and abort window. Called by the
        io thread, whose signal mask (SIGINT and SIGTERM blocked) the thread takes."""
        subshell = ShellDispatcher(
            self._engine,
            self._outbox,
            work,
            self._kernel_info,
            self._writers,
            self._comms,
            self._capture,
            self._snapshots,
            self._kernel_requests,
            self._viewers,
            subshell_id=subshell_id,
            main_work=self._work,
        )
        thread = threading.Thread(
            target=subshell.serve_subshell, name=f"mpkernel-subshell-{subshell_id[:8]}", daemon=True
        )
        thread.start()
        return thread

    def serve_subshell(self) -> None:
        """The body of a subshell's thread: serve its queue until its `StopWork`."""
        ident = threading.get_ident()
        context = self._engine.context
        context.attach()
        self._capture.ignore_thread(ident)
        try:
            self.run()
        finally:
            context.detach()
            self._capture.ignore_thread(ident, ignored=False)

    def _snapshot_now(self) -> None:
        try:
            snapshot = self._snapshots.now()
        except Exception:  # a snapshot bug must not stop the serving of requests
            log.exception("snapshot for a new consumer failed; it gets the next one")
            return
        self._outbox.put(snapshot)

    def handle(self, msg: Message[dict[str, Any]]) -> None:
        parent = msg.header
        # Text written to fd 1/2 since the last request belongs to that one.
        self._capture.collect(self._writers[0].parent)
        self._engine.context.serve(msg)
        self._outbox.put(Status("busy", parent))
        reply_type = reply_type_for(msg.msg_type)
        content: dict[str, Any] | None
        if self._aborting is not None and msg.msg_type == "execute_request":
            content = {"status": "aborted", "execution_count": self._engine.shell.execution_count}
        else:
            handler = self._handlers.get(msg.msg_type)
            if handler is None:
                log.warning("unknown shell message type %r (msg_id %s)", msg.msg_type, msg.msg_id)
                content = (
                    {
                        "status": "error",
                        "ename": "UnknownMessageType",
                        "evalue": f"mpkernel does not handle {msg.msg_type!r}",
                        "traceback": [],
                    }
                    if reply_type
                    else None
                )
            else:
                try:
                    content = handler(msg)
                except (Exception, KeyboardInterrupt) as exc:
                    log.exception("handler for %s failed", msg.msg_type)
                    content = error_content(exc)
        self._capture.collect(parent)
        if content is not None and reply_type is not None:
            self._outbox.put(
                Reply(
                    "shell",
                    msg.identities,
                    reply_type,
                    content,
                    parent,
                    {"status": content.get("status", "ok")},
                )
            )
        self._outbox.put(Status("idle", parent))

    # -- handlers --------------------------------------------------------------------
    def _execute(self, msg: Message[dict[str, Any]]) -> dict[str, Any]:
        reply = self._engine.execute(msg.content)
        # Inside the request's bracket: a worker that shows the namespace hears of the
        # change before the frontend sees this cell's idle.
        code = str(msg.content.get("code", ""))
        if self._subshell_id is None:
            self._after_cell(code, msg.header, in_bracket=True)
        elif self._main_work is not None:
            # The snapshot builder and the viewers' forks are the main thread's: they follow
            # a subshell's cell once the main shell is between requests, outside its bracket.
            header = msg.header
            self._main_work.put(MainCall(lambda: self._after_cell(code, header, False)))
        if reply["status"] == "error" and msg.content.get("stop_on_error", True):
            # Abort what the frontend queued behind the failed cell, as ipykernel does:
            # the io thread moves every request it has into the queue, then the marker.
            marker = AbortUntil()
            self._aborting = marker
            self._outbox.put(DrainShell(marker, self._subshell_id))
        return reply

    def _after_cell(self, code: str, header: Header, in_bracket: bool) -> None:
        """Main thread, after a cell of `header` ran: the workers' snapshot and the viewers."""
        snapshot = self._snapshots.after_execute(code)
        if snapshot is not None:
            self._outbox.put(snapshot._replace(parent=header if in_bracket else None))
        if self._viewers is not None:
            # Outside the bracket: a viewer's fresh fork tells its frontend by an event.
            self._viewers.after_execute(code, header)

    def _complete(self, msg: Message[dict[str, Any]]) -> dict[str, Any]:
        c = msg.content
        return self._engine.complete(str(c.get("code", "")), _opt_int(c, "cursor_pos"))

    def _inspect(self, msg: Message[dict[str, Any]]) -> dict[str, Any]:
        c = msg.content
        return self._engine.inspect(
            str(c.get("code", "")), _opt_int(c, "cursor_pos"), int(c.get("detail_level", 0))
        )

    def _history(self, msg: Message[dict[str, Any]]) -> dict[str, Any]:
        return self._engine.history(msg.content)

    def _is_complete(self, msg: Message[dict[str, Any]]) -> dict[str, Any]:
        return self._engine.is_complete(str(msg.content.get("code", "")))

    def _comm_info_request(self, msg: Message[dict[str, Any]]) -> None:
        # The io thread answers from its registry once it has processed every comm
        # registration queued before this item.
        target = msg.content.get("target_name")
        self._outbox.put(
            CommInfo(
                msg.identities, msg.header, target if isinstance(target, str) and target else None
            )
        )

    @staticmethod
    def _comm_handler(fn: Callable[[Message[dict[str, Any]]], None]) -> Handler:
        def handle(msg: Message[dict[str, Any]]) -> None:
            fn(msg)

        return handle


def _opt_int(content: Mapping[str, Any], key: str) -> int | None:
    value = content.get(key)
    return int(value) if value is not None else None
