"""Typed envelopes between the main process and worker processes, and their codec.

Frames on the wire are `[kind, meta_json, payload_json, *buffers]`; worker frames are
prefixed with the worker's token, which the main process checks. Payloads (comm data)
are JSON that the sender encoded once: the main process splices them into the
`comm_msg` content without parsing them again. Parent headers travel as JSON inside the
request and come back unchanged on the reply (I4): no lookup table is needed to parent
a reply.

No thread owns this module: pure values and functions, no zmq.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

NO_PARENT: Final = b""


class IpcError(Exception):
    """A frame list that is not a valid envelope."""


# -- main process -> worker ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OpenComm:
    comm_id: str
    target: str
    data_json: bytes
    parent_json: bytes
    request_id: str | None  # the shell request to acknowledge with Done; None if none
    restored: bool = False  # reopened on a restarted worker


@dataclass(frozen=True, slots=True)
class CommData:
    """A comm_msg from the frontend that is not a JSON-RPC request."""

    comm_id: str
    data_json: bytes
    parent_json: bytes
    request_id: str | None
    buffers: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class RpcRequest:
    comm_id: str
    data_json: bytes
    parent_json: bytes
    request_id: str | None
    buffers: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class CloseComm:
    comm_id: str
    reason: str
    request_id: str | None


@dataclass(frozen=True, slots=True)
class FrontendAnswer:
    """The frontend's answer to a request a handler sent with `request_frontend`."""

    comm_id: str
    rpc_id: str
    data_json: bytes
    request_id: str | None


@dataclass(frozen=True, slots=True)
class FailFrontendRequests:
    """Every pending frontend-bound request fails with `reason` (e.g. disconnect)."""

    reason: str


@dataclass(frozen=True, slots=True)
class StopWorker:
    reason: str


ToWorker = (
    OpenComm
    | CommData
    | RpcRequest
    | CloseComm
    | FrontendAnswer
    | FailFrontendRequests
    | StopWorker
)


# -- worker -> main process ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ready:
    pid: int
    persistent: bool = False  # the handler class keeps its comms across disconnects


@dataclass(frozen=True, slots=True)
class CommSend:
    """comm_msg to the frontend: an event (no parent) or data parented to a request."""

    comm_id: str
    data_json: bytes
    parent_json: bytes
    buffers: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class RpcReply:
    comm_id: str
    rpc_id: str
    data_json: bytes
    parent_json: bytes


@dataclass(frozen=True, slots=True)
class FrontendRequest:
    comm_id: str
    rpc_id: str
    data_json: bytes


@dataclass(frozen=True, slots=True)
class OpenFromWorker:
    """A handler asks the main process to open a backend comm (I5: main publishes it)."""

    comm_id: str
    target: str
    data_json: bytes


@dataclass(frozen=True, slots=True)
class CloseFromWorker:
    comm_id: str
    data_json: bytes


@dataclass(frozen=True, slots=True)
class Done:
    """Everything the worker emitted for `request_id` is ahead of this marker (I3)."""

    request_id: str


@dataclass(frozen=True, slots=True)
class LogLine:
    level: int
    text: str


FromWorker = (
    Ready
    | CommSend
    | RpcReply
    | FrontendRequest
    | OpenFromWorker
    | CloseFromWorker
    | Done
    | LogLine
)

_PAYLOAD_TYPES: Final[dict[str, type]] = {
    cls.__name__: cls
    for cls in (
        OpenComm,
        CommData,
        RpcRequest,
        CloseComm,
        FrontendAnswer,
        FailFrontendRequests,
        StopWorker,
        Ready,
        CommSend,
        RpcReply,
        FrontendRequest,
        OpenFromWorker,
        CloseFromWorker,
        Done,
        LogLine,
    )
}
_BYTES_FIELDS: Final = ("data_json", "parent_json")


def encode(msg: ToWorker | FromWorker) -> list[bytes]:
    """`[kind, meta_json, data_json, parent_json, *buffers]`."""
    meta: dict[str, Any] = {}
    data = parent = b""
    buffers: Sequence[bytes] = ()
    for name in msg.__slots__:
        value = getattr(msg, name)
        if name == "data_json":
            data = value
        elif name == "parent_json":
            parent = value
        elif name == "buffers":
            buffers = value
        else:
            meta[name] = value
    return [type(msg).__name__.encode(), json.dumps(meta).encode(), data, parent, *buffers]


def decode(frames: Sequence[bytes]) -> ToWorker | FromWorker:
    if len(frames) < 4:
        raise IpcError(f"envelope has {len(frames)} frames, expected at least 4")
    cls = _PAYLOAD_TYPES.get(frames[0].decode("ascii", "replace"))
    if cls is None:
        raise IpcError(f"unknown envelope kind {frames[0][:40]!r}")
    try:
        meta = json.loads(frames[1])
    except ValueError as e:
        raise IpcError(f"bad envelope metadata: {e}") from e
    fields = cls.__slots__  # type: ignore[attr-defined]
    if "data_json" in fields:
        meta["data_json"] = bytes(frames[2])
    if "parent_json" in fields:
        meta["parent_json"] = bytes(frames[3])
    if "buffers" in fields:
        meta["buffers"] = tuple(bytes(b) for b in frames[4:])
    try:
        return cls(**meta)  # type: ignore[no-any-return]
    except TypeError as e:
        raise IpcError(f"bad {cls.__name__} envelope: {e}") from e


_TO_WORKER: Final = (
    OpenComm,
    CommData,
    RpcRequest,
    CloseComm,
    FrontendAnswer,
    FailFrontendRequests,
    StopWorker,
)


def decode_to_worker(frames: Sequence[bytes]) -> ToWorker:
    msg = decode(frames)
    if not isinstance(msg, _TO_WORKER):
        raise IpcError(f"{type(msg).__name__} is not a message for a worker")
    return msg


def decode_from_worker(frames: Sequence[bytes]) -> FromWorker:
    msg = decode(frames)
    if isinstance(msg, _TO_WORKER):
        raise IpcError(f"{type(msg).__name__} is not a message from a worker")
    return msg
