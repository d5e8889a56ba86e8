"""Kernel subshells (JEP 91): which exist, and the work queue of each.

A subshell is a thread of its own that serves shell requests whose header names its
`subshell_id`, one at a time, in the same IPython shell (and namespace) as the main shell,
concurrently with it. The io thread creates, deletes and lists them (control requests) and
routes each shell request to its subshell's queue; the thread itself is started by the
main thread's `starter` (it needs the shell), handed over once IPython is up: a subshell
created before that keeps its requests queued until its thread starts.

Written by the io thread only; `ids` and `thread_ids` are read by any thread (`%subshell`),
so the table is replaced, never mutated.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from mpkernel.kernel.work import StopWork, WorkItem
from mpkernel.wire import Header

log = logging.getLogger(__name__)

#: starts the thread that serves a subshell's queue (built by the main thread)
Starter = Callable[[str, "queue.SimpleQueue[WorkItem]"], threading.Thread]


class UnknownSubshellError(KeyError):
    """A `subshell_id` that names no subshell of this kernel (ipykernel's name for it)."""

    def __init__(self, subshell_id: str) -> None:
        super().__init__(subshell_id)
        self.subshell_id = subshell_id

    def __str__(self) -> str:
        return f"Unknown subshell_id {self.subshell_id!r}"


@dataclass(slots=True)
class Subshell:
    subshell_id: str
    work: queue.SimpleQueue[WorkItem]
    thread: threading.Thread | None = None


class SubshellRegistry:
    def __init__(self) -> None:
        self._subshells: dict[str, Subshell] = {}
        self._starter: Starter | None = None

    def set_starter(self, starter: Starter) -> None:
        """The main thread can serve subshells now: start the threads of those created so
        far."""
        self._starter = starter
        for subshell in self._subshells.values():
            self._start(subshell)

    def _start(self, subshell: Subshell) -> None:
        if self._starter is not None and subshell.thread is None:
            subshell.thread = self._starter(subshell.subshell_id, subshell.work)

    def create(self) -> str:
        subshell_id = str(uuid.uuid4())
        subshell = Subshell(subshell_id, queue.SimpleQueue())
        self._subshells = {**self._subshells, subshell_id: subshell}
        self._start(subshell)
        log.info("subshell %s created", subshell_id)
        return subshell_id

    def delete(self, subshell_id: str) -> None:
        """Requests the subshell already has are served; its thread then ends."""
        subshell = self._get(subshell_id)
        self._subshells = {k: v for k, v in self._subshells.items() if k != subshell_id}
        subshell.work.put(StopWork())
        log.info("subshell %s deleted", subshell_id)

    def stop_all(self) -> None:
        for subshell_id in list(self._subshells):
            self.delete(subshell_id)

    def ids(self) -> list[str]:
        return list(self._subshells)

    def work_for(self, subshell_id: str) -> queue.SimpleQueue[WorkItem]:
        return self._get(subshell_id).work

    def thread_ids(self) -> dict[int, str]:
        """Thread id -> subshell id, for the subshells whose thread runs."""
        return {
            s.thread.ident: s.subshell_id
            for s in self._subshells.values()
            if s.thread is not None and s.thread.ident is not None
        }

    def _get(self, subshell_id: str) -> Subshell:
        try:
            return self._subshells[subshell_id]
        except KeyError:
            raise UnknownSubshellError(subshell_id) from None


def subshell_id_of(header: Header) -> str | None:
    """The subshell a request's header names: None for the main shell (no `subshell_id`,
    or `null`, which JupyterLab sends, or ""); anything else as a string, so that a value
    of the wrong type is an unknown subshell, not the main shell."""
    value = header.extra.get("subshell_id")
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)
