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

    @property
    def version(self) -> int:
        """The version of the latest snapshot built (0: none yet)."""
        return 0 if self._builder is None else self._builder.version

    @property
    def following(self) -> bool:
        """Whether the builder follows the namespace now (a worker consumes snapshots), so
        that the next execution's changes make the next version."""
        return self._builder is not None and self._builder.following

    def viewer_as_of(self) -> int:
        """For a viewer a cell opens: the snapshot version its object is as of (the one
        that follows this execution), or 0 when no worker follows the namespace yet (its
        first snapshot will then be taken as news)."""
        if self._builder is None or not self._builder.following:
            return 0
        return self._builder.version_after_this_execution()

    def current_entry(self, name: str, value: Any) -> EntryRef | None:
        """`name`'s entry in shared memory if it holds `value` now (never builds one)."""
        if self._builder is None:
            return None
        return self._builder.current_entry(name, value)
