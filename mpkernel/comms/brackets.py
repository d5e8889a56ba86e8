"""Request brackets for comm traffic (I3): one busy first, one idle last, and the idle only
after every involved worker's `Done(request)`.

Workers send `Done` through the pipe behind their own messages, so once every Done a
request is owed has arrived, all it caused is already in the funnel. An idle that comes
too early (from the router, or from the main thread through `may_idle`) is held and
published by the `settle` that pays the last Done. Io thread only; pure bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable

from mpkernel.funnel.items import FunnelItem, Publish
from mpkernel.wire import Header


class RequestBrackets:
    def __init__(self, emit: Callable[[FunnelItem], None]) -> None:
        self._emit = emit
        self._owed: dict[str, int] = {}
        self._held: dict[str, Header] = {}

    def _status(self, state: str, parent: Header) -> None:
        self._emit(Publish("status", {"execution_state": state}, parent))

    def busy(self, parent: Header) -> None:
        self._status("busy", parent)

    def end(self, parent: Header) -> None:
        """The router has done its part of the request: idle now, or when it is paid."""
        if self.may_idle(parent):
            self._status("idle", parent)

    def may_idle(self, parent: Header | None) -> bool:
        """False (and the idle is held) while Done markers are owed for `parent`."""
        if parent is not None and self._owed.get(parent.msg_id):
            self._held[parent.msg_id] = parent
            return False
        return True

    def owe(self, request_id: str) -> None:
        self._owed[request_id] = self._owed.get(request_id, 0) + 1

    def owes(self, request_id: str) -> bool:
        return bool(self._owed.get(request_id))

    def release(self, request_id: str) -> None:
        """Stop waiting for what is still owed for `request_id`: its held idle goes now, and
        Done markers that arrive later settle nothing."""
        self._owed.pop(request_id, None)
        parent = self._held.pop(request_id, None)
        if parent is not None:
            self._status("idle", parent)

    def settle(self, request_id: str, count: int = 1) -> None:
        """`count` Done markers for `request_id` arrived (or will never come: a crash)."""
        left = self._owed.get(request_id, 0) - count
        if left > 0:
            self._owed[request_id] = left
            return
        self._owed.pop(request_id, None)
        parent = self._held.pop(request_id, None)
        if parent is not None:
            self._status("idle", parent)
