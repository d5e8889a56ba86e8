"""JSON-RPC 2.0 as Positron's comms use it: the codes, what a comm message is, replies.

A comm message whose data has a string `method` is a request (invariant I4); one whose
`method` is not a string is an invalid request. Positron sends
no `id`: it matches the reply by the Jupyter parent header. An `id`, when present, is
echoed in the reply; a reply to a request without one carries none. Data with an `id` and
a `result` or `error` (and no `method`) answers a request the kernel sent to the frontend.

Pure values and functions: used by the comm router (io thread) and by worker runtimes.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

from mpkernel.wire import json_bytes

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603

Kind = Literal["request", "invalid", "answer", "data"]


def classify(data: object) -> Kind:
    """What a comm message's data is: a request, a request without a usable `method`
    (answered with -32600), an answer to a kernel-sent request, or plain data for the
    handler's `on_message`."""
    if isinstance(data, dict):
        if "method" in data:
            return "request" if isinstance(data["method"], str) else "invalid"
        if "id" in data and ("result" in data or "error" in data):
            return "answer"
    return "data"


def request_id_json(request: dict[str, Any]) -> str | None:
    """The request's `id` as JSON text, or None when it has none (Positron's shape)."""
    return json.dumps(request["id"]) if "id" in request else None


def _with_id(rpc_id_json: str | None) -> bytes:
    return b"" if rpc_id_json is None else b',"id":' + rpc_id_json.encode()


def error_reply(rpc_id_json: str | None, code: int, message: str) -> bytes:
    """`{"jsonrpc":"2.0","error":{...}}`, with the request's `id` only if it had one."""
    error = json_bytes({"code": code, "message": message})
    return b'{"jsonrpc":"2.0"' + _with_id(rpc_id_json) + b',"error":' + error + b"}"


def result_reply(rpc_id_json: str | None, result: Any) -> bytes:
    """`{"jsonrpc":"2.0","result":...}`, with the request's `id` only if it had one."""
    return b'{"jsonrpc":"2.0"' + _with_id(rpc_id_json) + b',"result":' + json_bytes(result) + b"}"
