"""Funnel items: the closed set of things that can be sent to the frontend.

Every thread that wants something to reach the frontend (IOPub, or a reply on a ROUTER
socket, or a stdin prompt) builds one of these values and puts it in the `Outbox`.
Only the io thread consumes them, in order; see `iopub.IOPubFunnel`. Items are plain
immutable values so that the ordering logic can be tested without sockets: NamedTuples,
which are several times cheaper to define than frozen dataclasses (this module is on the
kernel's start-up path) and to build (one or more per message).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from mpkernel.funnel.stdin import InputWaiter
from mpkernel.wire import Header

if TYPE_CHECKING:
    from mpkernel.supervision.fork import ForkedWorker

Channel = Literal["shell", "control"]
ExecutionState = Literal["busy", "idle", "starting"]
StreamName = Literal["stdout", "stderr"]

NO_METADATA: Mapping[str, Any] = MappingProxyType({})


class Status(NamedTuple):
    """`status` on IOPub. Busy/idle bracket one request (I3)."""

    state: ExecutionState
    parent: Header | None


class Stream(NamedTuple):
    """Text written to stdout or stderr; buffered by the funnel (I2)."""

    name: StreamName
    text: str
    parent: Header | None


class Publish(NamedTuple):
    """Any other IOPub message (display_data, execute_result, error, comm_msg, ...)."""

    msg_type: str
    content: Mapping[str, Any]
    parent: Header | None
    metadata: Mapping[str, Any] = NO_METADATA
    buffers: Sequence[bytes] = ()


class Reply(NamedTuple):
    """A reply on shell or control, sent to the peer that made the request."""

    channel: Channel
    identities: Sequence[bytes]
    msg_type: str
    content: Mapping[str, Any]
    parent: Header
    metadata: Mapping[str, Any] = NO_METADATA


class PublishRaw(NamedTuple):
    """An IOPub message whose content is already JSON (comm traffic from workers)."""

    msg_type: str
    content_json: bytes
    parent: Header | None
    buffers: Sequence[bytes] = ()


class CommInfo(NamedTuple):
    """Answer a comm_info_request from the registry as it stands at this point (after
    every comm registration queued before it)."""

    identities: Sequence[bytes]
    parent: Header
    target_name: str | None


class RegisterComm(NamedTuple):
    """An in-process comm (the `comm` package) was opened in the main process."""

    comm_id: str
    target: str


class UnregisterComm(NamedTuple):
    comm_id: str


class OpenBackendComm(NamedTuple):
    """User code (`mpkernel.comms.open`, `mpkernel.view`) or a kernel request asked for a
    comm served by a worker, optionally about an object (`payload`, `mpkernel.snapshots`
    codec)."""

    comm_id: str
    target: str
    data_json: bytes
    parent: Header | None
    payload: bytes = b""
    # The worker, forked from the main thread with the object (`supervision.fork`): the
    # io thread adopts it instead of starting one.
    forked: ForkedWorker | None = None


class ReplaceViewer(NamedTuple):
    """A cell may have changed the table a forked viewer shows (`supervision.fork`): a
    fresh fork (`forked`) takes its comm over, with the handler's saved state; None: the
    variable is gone and the comm closes. `forget()` tells the main thread's list of
    viewers that the comm is closed already."""

    comm_id: str
    forked: ForkedWorker | None
    forget: Callable[[], None]
    parent: Header | None  # the execution after which it was forked: its news is parented


class SnapshotReady(NamedTuple):
    """A snapshot of the user's namespace, built on the main thread, for the workers
    that consume snapshots (`mpkernel.snapshots.dispatch`)."""

    version: int
    payload: bytes
    # The execution it follows, if any: consumers' messages about it are parented to it
    # and its idle waits for them, within the post-execute budget (I3).
    parent: Header | None = None


class KernelAnswerItem(NamedTuple):
    """The main thread's answer to a worker's kernel request; queued behind everything
    the request caused (an `execute_input` for a `del`, say)."""

    worker_key: str
    call_id: str
    result_json: bytes
    error: str | None = None


class Flush(NamedTuple):
    """Publish the buffered stream text now (an explicit `sys.stdout.flush()`)."""


class Barrier(NamedTuple):
    """Set `done` once everything queued before this item has been sent."""

    done: threading.Event


class InputRequest(NamedTuple):
    """An `input_request` for the stdin channel; sent only after all earlier items (I8)."""

    identities: Sequence[bytes]
    parent: Header
    prompt: str
    password: bool
    waiter: InputWaiter


class DrainShell(NamedTuple):
    """Ask the io thread to move every shell request already received into the work
    queue, then enqueue `marker`; used to abort queued executes after an error. The queue is
    the main shell's, or that of the subshell `subshell_id`."""

    marker: object
    subshell_id: str | None = None


class IoCall(NamedTuple):
    """Run `fn` on the io thread once everything queued before it has been sent (the main
    thread's answer to something the io thread asked of it, e.g. a debugger request)."""

    fn: Callable[[], None]


class Stop(NamedTuple):
    """The main thread has finished: the io thread sends what is left and exits."""


# Items the funnel hands to the comm router (the io thread's comm bookkeeping).
CommItem = (
    CommInfo
    | RegisterComm
    | UnregisterComm
    | OpenBackendComm
    | ReplaceViewer
    | SnapshotReady
    | KernelAnswerItem
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
