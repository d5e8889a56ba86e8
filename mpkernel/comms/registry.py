"""The comm registry: which comms are open and who serves each one.

Owned by the io thread; pure bookkeeping, no I/O. It answers `comm_info_request`
(a missing or empty `target_name` means all comms) and tells the router where a
frontend's comm_msg must go.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Host = Literal["worker", "main", "health"]
Opener = Literal["frontend", "kernel"]


@dataclass(slots=True)
class CommEntry:
    comm_id: str
    target: str
    host: Host
    worker_key: str | None = None  # for host == "worker"
    opened_by: Opener = "frontend"
    open_data_json: bytes = b"{}"  # kept to reopen the comm on a restarted worker
    persistent: bool = False
    state_json: bytes = b""  # the handler's saved state (ipc.SaveState), for a new worker


class CommRegistry:
    def __init__(self) -> None:
        self._entries: dict[str, CommEntry] = {}

    def add(self, entry: CommEntry) -> None:
        self._entries[entry.comm_id] = entry

    def remove(self, comm_id: str) -> CommEntry | None:
        return self._entries.pop(comm_id, None)

    def get(self, comm_id: str) -> CommEntry | None:
        return self._entries.get(comm_id)

    def __contains__(self, comm_id: object) -> bool:
        return comm_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def on_worker(self, worker_key: str) -> list[CommEntry]:
        return [e for e in self._entries.values() if e.worker_key == worker_key]

    def __iter__(self) -> Iterator[CommEntry]:
        return iter(list(self._entries.values()))

    def info(self, target_name: str | None) -> dict[str, dict[str, str]]:
        return {
            e.comm_id: {"target_name": e.target}
            for e in self._entries.values()
            if not target_name or e.target == target_name
        }
