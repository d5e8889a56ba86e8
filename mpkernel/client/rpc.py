"""Comm RPCs as Positron sends them, and how their answers are recognised.

Single job: the JSON-RPC shapes on a comm, from the frontend's side. A request is comm data
with a string ``method`` and, as Positron sends it, no JSON-RPC ``id``: its reply is the
comm_msg parented to the request (``parent_header.msg_id``) whose data has ``result`` or
``error``. A request may carry an ``id``; the reply then echoes it, and a reply to a request
without one carries none. Events are notifications (``method``, no ``id``); a handler's
request to the frontend has both. Pure values and predicates, no I/O.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from mpkernel.client.messages import Header, Msg, comm_id_of, msg_type, parent_id

#: JSON-RPC error codes (Positron's).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

_rpc_ids = itertools.count(1)


def new_rpc_id() -> int:
    """A JSON-RPC id not used before by this process."""
    return next(_rpc_ids)


def rpc_data(method: str, params: Any = None, rpc_id: Any = None) -> dict[str, Any]:
    """JSON-RPC request data; without an ``id`` (Positron's shape) unless ``rpc_id`` is given.

    ``None`` means "no id": a JSON-RPC ``"id": null`` is not something Positron sends."""
    data: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if rpc_id is not None:
        data["id"] = rpc_id
    if params is not None:
        data["params"] = params
    return data


@dataclass(frozen=True, eq=False)
class RpcRequest:
    """A request as sent: its reply is found by the request's header (``msg_id``), as
    Positron does; ``rpc_id`` is the JSON-RPC id it carried, or None when it carried none."""

    header: Header
    rpc_id: Any = None

    @property
    def msg_id(self) -> str:
        msg_id: str = self.header["msg_id"]
        return msg_id

    def __repr__(self) -> str:
        shape = "no id" if self.rpc_id is None else f"id {self.rpc_id!r}"
        return f"<RPC {self.msg_id} ({shape})>"


def _comm_data(msg: Msg, comm_id: str | None) -> dict[str, Any] | None:
    """The data of a comm_msg (on ``comm_id`` when given) if it is a JSON object."""
    if msg_type(msg) != "comm_msg" or (comm_id is not None and comm_id_of(msg) != comm_id):
        return None
    data = msg["content"]["data"]
    return data if isinstance(data, dict) else None


def is_event(msg: Msg, comm_id: str | None = None) -> bool:
    """A JSON-RPC notification (method, no id) on a comm."""
    data = _comm_data(msg, comm_id)
    return data is not None and "method" in data and "id" not in data


def is_frontend_request(msg: Msg, comm_id: str | None = None) -> bool:
    """A JSON-RPC request from a handler to the frontend (method and id)."""
    data = _comm_data(msg, comm_id)
    return data is not None and "method" in data and "id" in data


def is_response(msg: Msg, comm_id: str | None = None) -> bool:
    """A JSON-RPC response on a comm: ``result`` or ``error``, no ``method``."""
    data = _comm_data(msg, comm_id)
    return data is not None and "method" not in data and ("result" in data or "error" in data)


def is_response_to(msg: Msg, request: RpcRequest, comm_id: str | None = None) -> bool:
    """A JSON-RPC response parented to ``request``: how Positron finds a reply. Says
    nothing about the ``id``; ``id_echoed`` does."""
    return parent_id(msg) == request.msg_id and is_response(msg, comm_id)


def id_echoed(data: dict[str, Any], request: RpcRequest) -> bool:
    """The reply data echoes the request's id: the same id, or none for a request without."""
    if request.rpc_id is None:
        return "id" not in data
    return "id" in data and data["id"] == request.rpc_id


def is_reply(msg: Msg, request: RpcRequest, comm_id: str | None = None) -> bool:
    """The reply to ``request``: a JSON-RPC response parented to it that echoes its id
    (carries none when the request carried none)."""
    return is_response_to(msg, request, comm_id) and id_echoed(msg["content"]["data"], request)


def response_data(
    request_id: Any, result: Any = None, error: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The data of the frontend's answer to a handler's request ``request_id``: a result,
    or ``error`` (``{"code": ..., "message": ...}``) when given."""
    data: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
    if error is not None:
        data["error"] = error
    else:
        data["result"] = result
    return data
