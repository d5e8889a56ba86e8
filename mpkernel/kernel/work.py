"""What the io thread hands to the main thread: the shell work queue's items.

Kept apart from `shell` (which imports IPython) so that the io thread's modules load
without IPython, and the io thread can start serving control requests and the heartbeat
while IPython is still being imported on the main thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mpkernel.wire import Message


@dataclass(frozen=True, slots=True)
class ShellWork:
    message: Message[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class KernelWork:
    """A worker's kernel request, served on the main thread between executions."""

    worker_key: str
    call_id: str
    method: str
    params: dict[str, Any]
    parent_json: bytes
    deadline: float  # time.monotonic(); past it the request is answered with an error


@dataclass(frozen=True, slots=True)
class MainCall:
    """Run `fn` on the main thread between requests (the debugger's namespace questions)."""

    fn: Callable[[], None]


class SnapshotWork:
    """A worker that consumes snapshots is ready and there is none to give it: build a
    complete one between executions."""


class StopWork:
    """Put in the work queue to end `ShellDispatcher.run`."""


class AbortUntil:
    """Marker that ends an abort window (see `DrainShell`)."""


WorkItem = ShellWork | KernelWork | MainCall | SnapshotWork | StopWork | AbortUntil


def reply_type_for(msg_type: str) -> str | None:
    if msg_type.endswith("_request"):
        return msg_type[: -len("_request")] + "_reply"
    return None
