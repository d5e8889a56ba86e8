"""Io thread: hand snapshots to the workers that consume them, newest only.

Interface used by the comm router; the implementation is being written.
"""

from __future__ import annotations

from mpkernel.funnel.items import SnapshotReady
from mpkernel.supervision import ipc


class SnapshotDispatcher:
    """Per consuming worker: at most one snapshot in flight, at most one waiting (the
    newest; a newer one supersedes it and what only it referenced is freed)."""

    def __init__(self) -> None:
        self._consumers: set[str] = set()

    def wanted(self) -> bool:
        """Whether any worker consumes snapshots (read from the main thread)."""
        return bool(self._consumers)

    def worker_ready(self, key: str, consumes: bool) -> list[tuple[str, ipc.Snapshot]]:
        """A worker is ready; a consumer is sent the latest snapshot at once."""
        if consumes:
            self._consumers.add(key)
        return []

    def worker_gone(self, key: str) -> None:
        self._consumers.discard(key)

    def offer(self, item: SnapshotReady) -> list[tuple[str, ipc.Snapshot]]:
        """A new snapshot from the main thread: what to send to whom now."""
        raise NotImplementedError

    def taken(self, key: str, version: int) -> list[tuple[str, ipc.Snapshot]]:
        """A worker acknowledged `version`: what to send it next."""
        raise NotImplementedError

    def close(self) -> None:
        """Kernel shutdown: free every shared-memory segment still held."""
