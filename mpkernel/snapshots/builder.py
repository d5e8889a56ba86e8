"""Main thread: build a snapshot of the user's namespace after an execution.

Interface used by the engine (`ShellDispatcher`); the implementation is being written.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from typing import Any

from mpkernel.funnel.items import SnapshotReady


class SnapshotBuilder:
    """Finds what changed since the last snapshot and encodes it.

    `wanted()` tells whether any worker consumes snapshots now (read on the main thread,
    set by the io thread); while it is False `after_execute` does nothing.
    """

    def __init__(
        self,
        user_ns: Mapping[str, Any],
        hidden: Container[str],
        budget_ms: float,
        wanted: Callable[[], bool],
    ) -> None:
        self._user_ns = user_ns
        self._hidden = hidden
        self._budget_ms = budget_ms
        self._wanted = wanted

    def after_execute(self, cell: str | None) -> SnapshotReady | None:
        """After an execution: the snapshot to send, or None when nothing changed."""
        if not self._wanted():
            return None
        raise NotImplementedError

    def now(self) -> SnapshotReady:
        """On demand (a kernel request): a snapshot with every name checked."""
        raise NotImplementedError
