"""In-process comms: the `comm` package (ipywidgets, plotly's FigureWidget, bokeh) hosted
in the main process, as ipykernel does.

Runs on the main thread. `install` points `comm.create_comm` and
`comm.get_comm_manager` (the package's documented hooks for kernels) at this kernel.
Every message such a comm sends is a funnel item put from the main thread, in program
order with the prints around it (I1, I2), parented to the request being served. The io
thread's registry learns of each comm through `RegisterComm`/`UnregisterComm` items that
travel the same outbox just before the comm_open / just after the comm_close.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import comm
from comm.base_comm import BaseComm, CommManager

from mpkernel.engine.kernel_object import message_as_dict
from mpkernel.engine.request_context import RequestContext
from mpkernel.funnel.capture import FdCapture
from mpkernel.funnel.items import Publish, RegisterComm, UnregisterComm
from mpkernel.funnel.outbox import Outbox
from mpkernel.wire import Message

log = logging.getLogger(__name__)


class InProcessComm(BaseComm):
    outbox: Outbox
    context: RequestContext
    capture: FdCapture

    def publish_msg(
        self,
        msg_type: str,
        data: Any = None,
        metadata: Any = None,
        buffers: Any = None,
        **keys: Any,
    ) -> None:
        self.capture.collect(self.context.parent)
        if msg_type == "comm_open":
            self.outbox.put(RegisterComm(self.comm_id, self.target_name))
        content = {"data": {} if data is None else data, "comm_id": self.comm_id, **keys}
        payload = tuple(bytes(b) for b in buffers) if buffers else ()
        self.outbox.put(Publish(msg_type, content, self.context.parent, metadata or {}, payload))
        if msg_type == "comm_close":
            self.outbox.put(UnregisterComm(self.comm_id))


class InProcessComms:
    """The main process's CommManager and the handlers for frontend comm requests."""

    def __init__(self, outbox: Outbox, context: RequestContext, capture: FdCapture) -> None:
        self.outbox = outbox
        self.context = context
        InProcessComm.outbox = outbox
        InProcessComm.context = context
        InProcessComm.capture = capture
        self.manager = CommManager()

    def install(self) -> None:
        manager = self.manager

        def create_comm(*args: Any, **kwargs: Any) -> BaseComm:
            return InProcessComm(*args, **kwargs)

        def get_comm_manager() -> CommManager:
            return manager

        comm.create_comm = create_comm
        comm.get_comm_manager = get_comm_manager

    # CommManager's handlers take ipykernel's (stream, ident, msg) signature; only msg is
    # used, so the first two are None here.
    def comm_open(self, msg: Message[dict[str, Any]]) -> None:
        content: Mapping[str, Any] = msg.content
        comm_id = str(content.get("comm_id", ""))
        target = str(content.get("target_name", ""))
        if target not in self.manager.targets:
            log.warning("comm_open for unknown target %r (comm %s)", target, comm_id)
            self.outbox.put(
                Publish(
                    "comm_close",
                    {
                        "comm_id": comm_id,
                        "data": {
                            "reason": "unknown_target",
                            "message": f"no comm target {target!r}",
                        },
                    },
                    msg.header,
                )
            )
            return
        self.manager.comm_open(None, None, message_as_dict(msg))  # type: ignore[arg-type]
        if comm_id in self.manager.comms:
            self.outbox.put(RegisterComm(comm_id, target))

    def comm_msg(self, msg: Message[dict[str, Any]]) -> None:
        self.manager.comm_msg(None, None, message_as_dict(msg))  # type: ignore[arg-type]

    def comm_close(self, msg: Message[dict[str, Any]]) -> None:
        comm_id = str(msg.content.get("comm_id", ""))
        self.manager.comm_close(None, None, message_as_dict(msg))  # type: ignore[arg-type]
        self.outbox.put(UnregisterComm(comm_id))
