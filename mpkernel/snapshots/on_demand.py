"""The snapshot builder as the engine holds it: loaded the first time a worker wants one.

A kernel whose frontend never opens a comm that consumes snapshots never imports the
machinery (pickle-5 codec, shared memory, fingerprints), so start-up does not pay for it;
the first build after a consumer appears is complete, as for any new builder. Main thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mpkernel.funnel.items import SnapshotReady

if TYPE_CHECKING:
    from mpkernel.snapshots.builder import SnapshotBuilder
    from mpkernel.snapshots.manifest import EntryRef


class OnDemandBuilder:
    """`SnapshotBuilder`'s interface; `make` (which imports and builds it) runs on first
    use, when `wanted()` first says a worker consumes snapshots."""

    def __init__(self, make: Callable[[], SnapshotBuilder], wanted: Callable[[], bool]) -> None:
        self._make = make
        self._wanted = wanted
        self._builder: SnapshotBuilder | None = None

    def _get(self) -> SnapshotBuilder:
        if self._builder is None:
            self._builder = self._make()
        return self._builder

    def after_execute(self, cell: str | None) -> SnapshotReady | None:
        """After an execution: the snapshot to send, or None (nothing changed, or no worker
        wants snapshots)."""
        if self._builder is None and not self._wanted():
            return None
        return self._get().after_execute(cell)

    def now(self) -> SnapshotReady:
        """A snapshot with every name checked (a kernel request, a new consumer)."""
        return self._get().now()

    def viewer_as_of(self, *, in_execution: bool) -> int:
        """The snapshot version a viewer's object is as of: opened by a running cell, the
        one that will follow it (made even if the cell changes nothing); opened between
        executions, the latest. 0 when no worker follows the namespace yet (the viewer
        then takes its first snapshot as news)."""
        builder = self._builder
        if builder is None or not builder.following:
            return 0
        return builder.version_after_this_execution() if in_execution else builder.version

    def current_entry(self, name: str, value: Any) -> EntryRef | None:
        """`name`'s entry in shared memory if it holds `value` now (never builds one)."""
        if self._builder is None:
            return None
        return self._builder.current_entry(name, value)
