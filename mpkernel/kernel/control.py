"""Control requests, answered by the io thread even while user code runs.

kernel_info, interrupt, shutdown, usage and the subshell requests (JEP 91:
create/delete/list, with ipykernel 7's reply shapes) never wait for the main thread. Each request is
bracketed by busy/idle on IOPub like ipykernel does (servers watch IOPub traffic to see
that a kernel is alive); those statuses are plain IOPub messages, not the shell bracket,
so they do not change where fd-level output is attributed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mpkernel.funnel.items import Publish, Reply
from mpkernel.kernel.subshells import SubshellRegistry, UnknownSubshellError
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
        subshells: SubshellRegistry | None = None,
        usage: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._kernel_info = kernel_info
        self._interrupt = interrupt
        self._shutdown = shutdown
        self._subshells = subshells if subshells is not None else SubshellRegistry()
        self._usage = usage

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
        elif msg_type == "create_subshell_request":
            content = {"status": "ok", "subshell_id": self._subshells.create()}
        elif msg_type == "delete_subshell_request":
            content = self._delete_subshell(msg.content.get("subshell_id"))
        elif msg_type == "list_subshell_request":
            content = {"status": "ok", "subshell_id": self._subshells.ids()}
        elif msg_type == "usage_request" and self._usage is not None:
            content = self._usage()
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

    def _delete_subshell(self, subshell_id: object) -> dict[str, Any]:
        if not isinstance(subshell_id, str):
            error: Exception = ValueError(f"subshell_id must be a string, not {subshell_id!r}")
        else:
            try:
                self._subshells.delete(subshell_id)
            except UnknownSubshellError as e:
                error = e
            else:
                return {"status": "ok"}
        log.warning("delete_subshell_request refused: %s", error)
        return {
            "status": "error",
            "ename": type(error).__name__,
            "evalue": str(error),
            "traceback": [],
        }
