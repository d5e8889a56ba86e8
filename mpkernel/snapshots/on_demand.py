"""The snapshot builder as the engine holds it: loaded the first time a worker wants one.

A kernel whose frontend never opens a comm that consumes snapshots never imports the
machinery (pickle-5 codec, shared memory, fingerprints), so start-up does not pay for it;
the first build after a consumer appears is complete, as for any new builder. Main thread.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from typing import TYPE_CHECKING, Any

from mpkernel.funnel.items import SnapshotReady

if TYPE_CHECKING:
    from mpkernel.snapshots.builder import SnapshotBuilder


class OnDemandBuilder:
    """`SnapshotBuilder`'s interface; builds it on first use."""

    def __init__(
        self,
        user_ns: Mapping[str, Any],
        hidden: Container[str],
        budget_ms: float,
        wanted: Callable[[], bool],
    ) -> None:
        self._args = (user_ns, hidden, budget_ms, wanted)
        self._wanted = wanted
        self._builder: SnapshotBuilder | None = None

    def _get(self) -> SnapshotBuilder:
        if self._builder is None:
            from mpkernel.snapshots.builder import SnapshotBuilder

            self._builder = SnapshotBuilder(*self._args)
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
