"""Funnel items: the closed set of things that can be sent to the frontend.

Every thread that wants something to reach the frontend (IOPub, or a reply on a ROUTER
socket, or a stdin prompt) builds one of these values and puts it in the `Outbox`.
Only the io thread consumes them, in order; see `iopub.IOPubFunnel`. Items are plain
immutable values so that the ordering logic can be tested without sockets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from mpkernel.funnel.stdin import InputWaiter
from mpkernel.wire import Header

Channel = Literal["shell", "control"]
ExecutionState = Literal["busy", "idle", "starting"]
StreamName = Literal["stdout", "stderr"]


@dataclass(frozen=True, slots=True)
class Status:
    """`status` on IOPub. Busy/idle bracket one request (I3)."""

    state: ExecutionState
    parent: Header | None


class Stream(NamedTuple):
    """Text written to stdout or stderr; buffered by the funnel (I2).

    A NamedTuple rather than a frozen dataclass: one is built per `write()`, and tuple
    construction is several times cheaper (measured on the 100k-print benchmark).
    """

    name: StreamName
    text: str
    parent: Header | None


@dataclass(frozen=True, slots=True)
class Publish:
    """Any other IOPub message (display_data, execute_result, error, comm_msg, ...)."""

    msg_type: str
    content: Mapping[str, Any]
    parent: Header | None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    buffers: Sequence[bytes] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply on shell or control, sent to the peer that made the request."""

    channel: Channel
    identities: Sequence[bytes]
    msg_type: str
    content: Mapping[str, Any]
    parent: Header
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PublishRaw:
    """An IOPub message whose content is already JSON (comm traffic from workers)."""

    msg_type: str
    content_json: bytes
    parent: Header | None
    buffers: Sequence[bytes] = ()


@dataclass(frozen=True, slots=True)
class CommInfo:
    """Answer a comm_info_request from the registry as it stands at this point (after
    every comm registration queued before it)."""

    identities: Sequence[bytes]
    parent: Header
    target_name: str | None


@dataclass(frozen=True, slots=True)
class RegisterComm:
    """An in-process comm (the `comm` package) was opened in the main process."""

    comm_id: str
    target: str


@dataclass(frozen=True, slots=True)
class UnregisterComm:
    comm_id: str


@dataclass(frozen=True, slots=True)
class OpenBackendComm:
    """User code (`mpkernel.comms.open`, `mpkernel.view`) or a kernel request asked for a
    comm served by a worker, optionally about an object (`payload`, `mpkernel.snapshots`
    codec)."""

    comm_id: str
    target: str
    data_json: bytes
    parent: Header | None
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class SnapshotReady:
    """A snapshot of the user's namespace, built on the main thread, for the workers
    that consume snapshots (`mpkernel.snapshots.dispatch`)."""

    version: int
    payload: bytes
    # The execution it follows, if any: consumers' messages about it are parented to it
    # and its idle waits for them, within the post-execute budget (I3).
    parent: Header | None = None


@dataclass(frozen=True, slots=True)
class KernelAnswerItem:
    """The main thread's answer to a worker's kernel request; queued behind everything
    the request caused (an `execute_input` for a `del`, say)."""

    worker_key: str
    call_id: str
    result_json: bytes
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Flush:
    """Publish the buffered stream text now (an explicit `sys.stdout.flush()`)."""


@dataclass(frozen=True, slots=True)
class Barrier:
    """Set `done` once everything queued before this item has been sent."""

    done: threading.Event


@dataclass(frozen=True, slots=True)
class InputRequest:
    """An `input_request` for the stdin channel; sent only after all earlier items (I8)."""

    identities: Sequence[bytes]
    parent: Header
    prompt: str
    password: bool
    waiter: InputWaiter


@dataclass(frozen=True, slots=True)
class DrainShell:
    """Ask the io thread to move every shell request already received into the work
    queue, then enqueue `marker`; used to abort queued executes after an error."""

    marker: object


@dataclass(frozen=True, slots=True)
class IoCall:
    """Run `fn` on the io thread once everything queued before it has been sent (the main
    thread's answer to something the io thread asked of it, e.g. a debugger request)."""

    fn: Callable[[], None]


@dataclass(frozen=True, slots=True)
class Stop:
    """The main thread has finished: the io thread sends what is left and exits."""


# Items the funnel hands to the comm router (the io thread's comm bookkeeping).
CommItem = (
    CommInfo | RegisterComm | UnregisterComm | OpenBackendComm | SnapshotReady | KernelAnswerItem
)

FunnelItem = (
    Status
    | Stream
    | Publish
    | PublishRaw
    | Reply
    | Flush
    | Barrier
    | InputRequest
    | DrainShell
    | IoCall
    | Stop
    | CommItem
)
