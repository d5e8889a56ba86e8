"""`get_ipython().kernel`: the parts of ipykernel's Kernel object that libraries use.

Libraries written for ipykernel reach for the kernel object to find the request being served
(ipywidgets' Output widget captures by its msg_id), the comm manager, and sometimes to
publish on IOPub themselves (`kernel.session.send(kernel.iopub_socket, ...)`). This object
gives them those, backed by mpkernel's own pieces: the parent is the request the main
thread is serving, publishing is a funnel item (ordered with the prints around it, I1, I2).

What ipykernel's Kernel has and this does not (its sockets, `do_one_iteration`, its
event loop and handler tables) is absent on purpose: code that needs those is driving
ipykernel's internals, and a stand-in would only fail later and less clearly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from comm.base_comm import CommManager

from mpkernel.funnel.items import Publish
from mpkernel.funnel.outbox import Outbox
from mpkernel.wire import Header, Message

log = logging.getLogger(__name__)


def message_as_dict(msg: Message[dict[str, Any]]) -> dict[str, Any]:
    """A decoded message as jupyter_client's dict form (what `get_parent()` returns)."""
    return {
        "header": msg.header.as_dict(),
        "msg_id": msg.msg_id,
        "msg_type": msg.msg_type,
        "parent_header": msg.parent_header.as_dict() if msg.parent_header else {},
        "metadata": dict(msg.metadata),
        "content": msg.content,
        "buffers": list(msg.buffers),
    }


def header_of(parent: Mapping[str, Any] | None) -> Header | None:
    """The header of a parent given as a message dict, or as a bare header dict."""
    if not parent:
        return None
    raw = parent.get("header", parent)
    if not isinstance(raw, Mapping) or "msg_id" not in raw:
        return None
    return Header.from_dict(raw)


class IOPubSocket:
    """What `kernel.iopub_socket` is: a name for the IOPub channel that `session.send`
    understands. mpkernel's IOPub socket belongs to its io thread; nothing else writes to
    it, so this is not a socket."""

    def __repr__(self) -> str:
        return "<mpkernel IOPub (publish with kernel.session.send)>"


class KernelSession:
    """`kernel.session`: the kernel's session id and a `send` that publishes on IOPub."""

    def __init__(
        self,
        session_id: str,
        username: str,
        iopub: IOPubSocket,
        publish: Callable[[Publish], None],
        current_parent: Callable[[], Mapping[str, Any]],
    ) -> None:
        self.session = session_id
        self.username = username
        self._iopub = iopub
        self._publish = publish
        self._current_parent = current_parent

    def send(
        self,
        stream: Any,
        msg_or_type: str | Mapping[str, Any],
        content: Mapping[str, Any] | None = None,
        parent: Mapping[str, Any] | None = None,
        ident: Any = None,
        buffers: Sequence[bytes | memoryview] | None = None,
        track: bool = False,
        header: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Publish one message on IOPub, parented to `parent` (a message or header dict).

        Only IOPub is reachable: replies on shell or control belong to the request
        handlers, so a `stream` other than `kernel.iopub_socket` is a `ValueError`.
        """
        if stream is not self._iopub:
            raise ValueError(
                "mpkernel's kernel.session.send publishes on kernel.iopub_socket only; "
                f"got {stream!r}"
            )
        if isinstance(msg_or_type, Mapping):
            msg_type = str(msg_or_type.get("msg_type") or msg_or_type["header"]["msg_type"])
            content = msg_or_type.get("content", content)
            parent = msg_or_type.get("parent_header", parent)
            metadata = msg_or_type.get("metadata", metadata)
        else:
            msg_type = msg_or_type
        item = Publish(
            msg_type,
            dict(content or {}),
            header_of(parent if parent is not None else self._current_parent()),
            dict(metadata or {}),
            tuple(bytes(b) for b in buffers) if buffers else (),
        )
        self._publish(item)
        return {"msg_type": msg_type, "content": item.content, "metadata": item.metadata}


class KernelObject:
    """`get_ipython().kernel` (see the module docstring for what it holds and why)."""

    implementation = "mpkernel"

    def __init__(
        self,
        shell: Any,
        comm_manager: CommManager,
        outbox: Outbox,
        kernel_info: Mapping[str, Any],
        session_id: str,
        current_parent: Callable[[], Mapping[str, Any]],
        before_publish: Callable[[Header | None], None],
    ) -> None:
        self.shell = shell
        self.comm_manager = comm_manager
        self.iopub_socket = IOPubSocket()
        self.log = logging.getLogger("mpkernel.user")
        self._kernel_info = dict(kernel_info)
        self._current_parent = current_parent

        def publish(item: Publish) -> None:
            # Text written to fd 1/2 before this message goes out before it (I1).
            before_publish(item.parent)
            outbox.put(item)

        self.session = KernelSession(
            session_id, "kernel", self.iopub_socket, publish, current_parent
        )

    @property
    def kernel_info(self) -> dict[str, Any]:
        return dict(self._kernel_info)

    @property
    def implementation_version(self) -> str:
        return str(self._kernel_info.get("implementation_version", ""))

    @property
    def language_info(self) -> dict[str, Any]:
        return dict(self._kernel_info.get("language_info", {}))

    @property
    def execution_count(self) -> int:
        return int(self.shell.execution_count)

    def get_parent(self, channel: str | None = None) -> dict[str, Any]:
        """The request being served (on shell: control requests never run user code)."""
        return dict(self._current_parent()) if channel in (None, "shell") else {}

    @property
    def _parent_header(self) -> dict[str, Any]:
        # ipykernel < 6 spelling, still read by libraries that support old kernels.
        return self.get_parent()

    def send_response(
        self,
        stream: Any,
        msg_or_type: str | Mapping[str, Any],
        content: Mapping[str, Any] | None = None,
        ident: Any = None,
        buffers: Sequence[bytes | memoryview] | None = None,
        track: bool = False,
        header: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        channel: str | None = None,
    ) -> dict[str, Any]:
        parent = self.get_parent(channel)
        return self.session.send(
            stream, msg_or_type, content, parent, ident, buffers, track, header, metadata
        )
