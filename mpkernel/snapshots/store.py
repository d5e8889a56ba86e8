"""Inside a worker: the user's objects as of the latest snapshot.

Interface used by the worker runtime; the implementation is being written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mpkernel.supervision import ipc


class WorkerSnapshot(Mapping[str, Any]):
    """Name -> object as of `version`; `changed`, `removed` and `unevaluated` say what is
    new since the previous snapshot the worker saw."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.changed: frozenset[str] = frozenset()
        self.removed: frozenset[str] = frozenset()
        self.unevaluated: frozenset[str] = frozenset()
        self._objects: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        return self._objects[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._objects)

    def __len__(self) -> int:
        return len(self._objects)


class SnapshotStore:
    def __init__(self) -> None:
        self.current: WorkerSnapshot | None = None

    def apply(self, msg: ipc.Snapshot) -> WorkerSnapshot:
        raise NotImplementedError

    def close(self) -> None:
        """Release every mapping (worker exit)."""
