"""Control requests, answered by the io thread even while user code runs.

kernel_info, interrupt and shutdown never wait for the main thread. Each request is
bracketed by busy/idle on IOPub like ipykernel does (servers watch IOPub traffic to see
that a kernel is alive); those statuses are plain IOPub messages, not the shell bracket,
so they do not change where fd-level output is attributed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mpkernel.funnel.items import Publish, Reply
from mpkernel.kernel.work import reply_type_for
from mpkernel.wire import Message

log = logging.getLogger(__name__)

Emit = Callable[[Publish | Reply], None]


class ControlHandler:
    def __init__(
        self,
        kernel_info: Callable[[], dict[str, Any]],
        interrupt: Callable[[], None],
        shutdown: Callable[[bool], None],
    ) -> None:
        self._kernel_info = kernel_info
        self._interrupt = interrupt
        self._shutdown = shutdown

    def handle(self, msg: Message[dict[str, Any]], emit: Emit) -> None:
        parent = msg.header
        emit(Publish("status", {"execution_state": "busy"}, parent))
        after: Callable[[], None] | None = None
        msg_type = msg.msg_type
        content: dict[str, Any] | None
        if msg_type == "kernel_info_request":
            content = self._kernel_info()
        elif msg_type == "interrupt_request":
            self._interrupt()
            content = {"status": "ok"}
        elif msg_type == "shutdown_request":
            restart = bool(msg.content.get("restart", False))
            content = {"status": "ok", "restart": restart}

            # The reply goes out before the kernel starts to wind down.
            def after() -> None:
                self._shutdown(restart)
        else:
            log.warning("unknown control message type %r (msg_id %s)", msg_type, msg.msg_id)
            content = (
                {
                    "status": "error",
                    "ename": "UnknownMessageType",
                    "evalue": f"mpkernel does not handle {msg_type!r} on control",
                    "traceback": [],
                }
                if msg_type.endswith("_request")
                else None
            )
        reply_type = reply_type_for(msg_type)
        if content is not None and reply_type is not None:
            emit(Reply("control", msg.identities, reply_type, content, parent))
            if msg_type == "shutdown_request":
                # ipykernel also broadcasts it, so every client learns of the shutdown.
                emit(Publish("shutdown_reply", content, parent))
        emit(Publish("status", {"execution_state": "idle"}, parent))
        if after is not None:
            after()
