"""Typed envelopes between the main process and worker processes, and their codec.

Frames on the wire are `[kind, meta_json, data_json, parent_json, payload, *buffers]`;
worker frames are prefixed with the worker's token, which the main process checks. Comm
data is JSON that the sender encoded once: the main process splices it into the
`comm_msg` content without parsing it again. `payload` carries opaque bytes built by
`mpkernel.snapshots` (a snapshot manifest, or the object a comm is opened about).
Parent headers travel as JSON inside the request and come back unchanged on the reply
(I4): no lookup table is needed to parent a reply.

No thread owns this module: pure values and functions, no zmq. The envelopes are
NamedTuples, immutable like frozen dataclasses but several times cheaper to define (this
module is imported on every start, by the kernel and by each worker) and to build.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final, NamedTuple, cast, get_args

NO_PARENT: Final = b""


class IpcError(Exception):
    """A frame list that is not a valid envelope."""


# -- main process -> worker ------------------------------------------------------------
# The key of the open data under which a comm taken over by a new worker carries the
# state its handler saved (`SaveState`).
RESTORED_STATE: Final = "restored_state"
# The payload of an `OpenComm` whose subject a forked worker already holds.
FORKED_SUBJECT: Final = b"forked"


class OpenComm(NamedTuple):
    comm_id: str
    target: str
    data_json: bytes
    parent_json: bytes
    request_id: str | None  # the shell request to acknowledge with Done; None if none
    restored: bool = False  # reopened on a restarted worker
    payload: bytes = b""  # the object this comm is about (`mpkernel.snapshots` codec), if any


class CommData(NamedTuple):
    """A comm_msg from the frontend that is not a JSON-RPC request."""

    comm_id: str
    data_json: bytes
    parent_json: bytes
    request_id: str | None
    buffers: tuple[bytes, ...] = ()


class RpcRequest(NamedTuple):
    """A JSON-RPC request from the frontend: data with a string `method` (I4). `id` is
    optional (Positron sends none); the reply is parented to `parent_json`."""

    comm_id: str
    data_json: bytes
    parent_json: bytes
    request_id: str | None
    buffers: tuple[bytes, ...] = ()


class CloseComm(NamedTuple):
    comm_id: str
    reason: str
    request_id: str | None


class FrontendAnswer(NamedTuple):
    """The frontend's answer to a request a handler sent with `request_frontend`."""

    comm_id: str
    rpc_id: str
    data_json: bytes
    request_id: str | None


class FailFrontendRequests(NamedTuple):
    """Every pending frontend-bound request fails with `reason` (e.g. disconnect)."""

    reason: str


class CancelRequests(NamedTuple):
    """Cancel the running requests of `comm_id` (all comms if None): a persistent comm
    whose frontend departed keeps its state but not its pending work."""

    reason: str
    comm_id: str | None = None


class KernelAnswer(NamedTuple):
    """The main thread's answer to a `KernelRequest`: a JSON result, or an error."""

    call_id: str
    data_json: bytes
    error: str | None = None


class Snapshot(NamedTuple):
    """The user's namespace as of `version` (built by `mpkernel.snapshots`); the worker
    acknowledges it with `SnapshotTaken` before it is sent a newer one (latest wins)."""

    version: int
    payload: bytes
    parent_json: bytes = NO_PARENT  # the execution it follows: events it causes carry it
    request_id: str | None = None  # that execution: Done once the handlers have seen it


class StopWorker(NamedTuple):
    reason: str


ToWorker = (
    OpenComm
    | CommData
    | RpcRequest
    | CloseComm
    | FrontendAnswer
    | FailFrontendRequests
    | CancelRequests
    | KernelAnswer
    | Snapshot
    | StopWorker
)


# -- worker -> main process ------------------------------------------------------------
class Ready(NamedTuple):
    pid: int
    persistent: bool = False  # the handler class keeps its comms across disconnects
    snapshots: bool = False  # the handler class consumes snapshots of the user's namespace


class CommSend(NamedTuple):
    """comm_msg to the frontend: an event (no parent) or data parented to a request."""

    comm_id: str
    data_json: bytes
    parent_json: bytes
    buffers: tuple[bytes, ...] = ()


class RpcReply(NamedTuple):
    comm_id: str
    rpc_id: str
    data_json: bytes
    parent_json: bytes


class FrontendRequest(NamedTuple):
    comm_id: str
    rpc_id: str
    data_json: bytes


class OpenFromWorker(NamedTuple):
    """A handler asks the main process to open a backend comm (I5: main publishes it)."""

    comm_id: str
    target: str
    data_json: bytes


class CloseFromWorker(NamedTuple):
    comm_id: str
    data_json: bytes


class SaveState(NamedTuple):
    """A handler's state of its comm (`Comm.save_state`), kept by the main process for
    the worker that takes the comm over (a fresh fork of a viewer, a restart)."""

    comm_id: str
    data_json: bytes


class Done(NamedTuple):
    """Everything the worker emitted for `request_id` is ahead of this marker (I3)."""

    request_id: str


class KernelRequest(NamedTuple):
    """A handler asks the main process for what only it can do (delete names, open a
    viewer on an object, a fresh snapshot); served on the main thread between executions,
    answered with `KernelAnswer`, or with an error once `timeout_s` has passed."""

    call_id: str
    method: str
    data_json: bytes
    parent_json: bytes  # the frontend request that caused it, if any: outputs are parented to it
    timeout_s: float


class SnapshotTaken(NamedTuple):
    version: int


class LogLine(NamedTuple):
    level: int
    text: str


FromWorker = (
    Ready
    | CommSend
    | RpcReply
    | FrontendRequest
    | OpenFromWorker
    | CloseFromWorker
    | SaveState
    | Done
    | KernelRequest
    | SnapshotTaken
    | LogLine
)

_TO_WORKER: Final[tuple[type, ...]] = get_args(ToWorker)
_FROM_WORKER: Final[tuple[type, ...]] = get_args(FromWorker)
_TYPES: Final[dict[bytes, type]] = {cls.__name__.encode(): cls for cls in _TO_WORKER + _FROM_WORKER}
# Fields that travel as frames of their own rather than inside the metadata JSON.
_FRAME_FIELDS: Final = ("data_json", "parent_json", "payload", "buffers")
_META_FIELDS: Final[dict[type, tuple[str, ...]]] = {
    cls: tuple(f for f in cls._fields if f not in _FRAME_FIELDS)  # type: ignore[attr-defined]
    for cls in _TYPES.values()
}
_HEAD_FRAMES: Final = 5


def encode(msg: ToWorker | FromWorker) -> list[bytes]:
    """`[kind, meta_json, data_json, parent_json, payload, *buffers]`."""
    meta = {name: getattr(msg, name) for name in _META_FIELDS[type(msg)]}
    return [
        type(msg).__name__.encode(),
        json.dumps(meta).encode(),
        getattr(msg, "data_json", b""),
        getattr(msg, "parent_json", b""),
        getattr(msg, "payload", b""),
        *getattr(msg, "buffers", ()),
    ]


def decode(frames: Sequence[bytes]) -> ToWorker | FromWorker:
    if len(frames) < _HEAD_FRAMES:
        raise IpcError(f"envelope has {len(frames)} frames, expected at least {_HEAD_FRAMES}")
    cls = _TYPES.get(bytes(frames[0]))
    if cls is None:
        raise IpcError(f"unknown envelope kind {bytes(frames[0][:40])!r}")
    try:
        meta = json.loads(frames[1])
    except ValueError as e:
        raise IpcError(f"bad envelope metadata: {e}") from e
    if not isinstance(meta, dict):
        raise IpcError("envelope metadata is not an object")
    fields = cls._fields  # type: ignore[attr-defined]
    if "data_json" in fields:
        meta["data_json"] = bytes(frames[2])
    if "parent_json" in fields:
        meta["parent_json"] = bytes(frames[3])
    if "payload" in fields:
        meta["payload"] = bytes(frames[4])
    if "buffers" in fields:
        meta["buffers"] = tuple(bytes(b) for b in frames[_HEAD_FRAMES:])
    try:
        return cls(**meta)  # type: ignore[no-any-return]
    except TypeError as e:
        raise IpcError(f"bad {cls.__name__} envelope: {e}") from e


def decode_to_worker(frames: Sequence[bytes]) -> ToWorker:
    msg = decode(frames)
    if not isinstance(msg, _TO_WORKER):
        raise IpcError(f"{type(msg).__name__} is not a message for a worker")
    return cast("ToWorker", msg)  # the tuple of the union's members does not narrow


def decode_from_worker(frames: Sequence[bytes]) -> FromWorker:
    msg = decode(frames)
    if not isinstance(msg, _FROM_WORKER):
        raise IpcError(f"{type(msg).__name__} is not a message from a worker")
    return cast("FromWorker", msg)
