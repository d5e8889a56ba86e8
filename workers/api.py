"""The handler API: what a comm handler running in a worker process sees.

A handler class serves one comm target; one instance is created per comm. It receives
`on_open`, JSON-RPC requests dispatched to its `rpc_<method>` methods, plain
`on_message` data, and `on_close(reason)`. It talks back through its `Comm`. Handlers
run inside a worker process, one request at a time; they never see zmq or the HMAC key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

# Positron's JSON-RPC error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

CLOSE_REASONS = ("frontend_closed", "frontend_disconnected", "kernel_shutdown", "worker_restart")


class RpcError(Exception):
    """Raise from an `rpc_*` method to answer with this JSON-RPC error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FrontendError(Exception):
    """The frontend answered a `request_frontend` call with an error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message


class FrontendDisconnected(FrontendError):
    """The frontend went away before answering."""

    def __init__(self, message: str = "frontend_disconnected") -> None:
        super().__init__(INTERNAL_ERROR, message)


class Comm(Protocol):
    """A handler's end of its comm."""

    @property
    def comm_id(self) -> str: ...

    @property
    def target(self) -> str: ...

    def send(self, data: Any, buffers: Sequence[bytes] = ()) -> None:
        """Send comm data, parented to the request being handled (if any)."""

    def send_event(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        """Send a JSON-RPC notification (an event: no parent)."""

    def request_frontend(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Ask the frontend and wait for its answer; raises FrontendError/Disconnected."""

    def close(self, data: Any = None) -> None:
        """Close this comm from the backend side."""


class CommHandler:
    """Base class for comm handlers. Override what you need."""

    #: keep this comm across a frontend disconnect
    persistent: ClassVar[bool] = False
    #: a restarted worker can rebuild this comm's state from its open data
    restorable: ClassVar[bool] = False

    def __init__(self, comm: Comm) -> None:
        self.comm = comm

    def on_open(self, data: Any) -> None:
        """The comm was opened, with the `comm_open` data."""

    def on_message(self, data: Any, buffers: Sequence[bytes]) -> None:
        """A comm_msg that is not a JSON-RPC request."""

    def on_close(self, reason: str) -> None:
        """Clean up; `reason` is one of `CLOSE_REASONS`."""
