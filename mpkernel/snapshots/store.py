"""Inside a worker: the user's objects as of the latest snapshot.

`SnapshotStore.apply` reads a manifest and opens every segment it names (which pins them:
the main process may unlink them from then on) but maps and decodes nothing: a value is
decoded the first time a handler reads it, from memory mapped copy-on-write (zero copy),
and kept for as long as later snapshots carry the same entry. So a handler that never
reads the 10M-row frame never maps it, and an unchanged frame is never decoded twice.

A value still being written by the main process (it did not fit the post-execute budget)
is listed in `unevaluated`; reading it waits until it is there. A value that did not cross
(`codec.Unavailable`: a function, an unpicklable object, data superseded before it was
written) reads as that descriptor and is listed in `unavailable` when known up front.

Used from the worker runtime's loop thread (`apply`, `close`) and from handler threads
(reads): decoding is done outside the lock, so one slow read never blocks another.
"""

from __future__ import annotations

import contextlib
import resource
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from mpkernel.snapshots import codec, manifest, segments
from mpkernel.snapshots.manifest import EntryRef
from mpkernel.supervision import ipc


class WorkerSnapshot(Mapping[str, Any]):
    """Name -> object as of `version`; `changed`, `removed` and `unevaluated` say what is
    new since the previous snapshot the worker saw."""

    def __init__(
        self,
        version: int,
        entries: Mapping[str, EntryRef] | None = None,
        store: SnapshotStore | None = None,
    ) -> None:
        self.version = version
        self.changed: frozenset[str] = frozenset()
        self.removed: frozenset[str] = frozenset()
        self.unevaluated: frozenset[str] = frozenset()
        self.unavailable: frozenset[str] = frozenset()
        self._entries: dict[str, EntryRef] = dict(entries or {})
        self._store = store
        self._segments: dict[str, segments.Segment] = {}
        self._packed: dict[bytes, EntryRef] = {}  # packed entry -> entry, for the next apply

    def __getitem__(self, name: str) -> Any:
        entry = self._entries[name]
        if self._store is None:
            raise KeyError(name)
        return self._store.value(entry, self._segments)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def info(self, name: str) -> EntryRef:
        """What the manifest says of `name` (type, size) without decoding it."""
        return self._entries[name]

    def ready(self, name: str) -> bool:
        """Whether reading `name` would return at once."""
        return all(self._segments[p].ready() for p in self._entries[name].segment_paths())


class SnapshotStore:
    def __init__(self) -> None:
        self.current: WorkerSnapshot | None = None
        self._segments: dict[str, segments.Segment] = {}
        self._values: dict[int, Any] = {}  # entry_id -> decoded value
        self._live_ids: frozenset[int] = frozenset()
        self._lock = threading.Lock()
        _raise_open_files_limit()

    def apply(self, msg: ipc.Snapshot) -> WorkerSnapshot:
        previous = self.current
        known = previous._packed if previous is not None else None
        version, packed, entries = manifest.unpack(msg.payload, known)
        # Only entries with data in segments need opening and readiness checks.
        stored = {
            n: e.segment_paths()
            for n, e in entries.items()
            if e.buffers or isinstance(e.meta, tuple)
        }
        opened: dict[str, segments.Segment] = {}
        broken: dict[str, str] = {}
        for name, paths in stored.items():
            for path in paths:
                if path in opened:
                    continue
                try:
                    opened[path] = self._segments.get(path) or segments.Segment(path)
                except segments.SegmentError as e:
                    broken[name] = str(e)
        snapshot = WorkerSnapshot(version, entries, self)
        snapshot._segments = opened
        snapshot._packed = {data: entries[name] for name, data in packed.items()}
        before = previous._entries if previous is not None else {}
        snapshot.changed = frozenset(
            n for n, e in entries.items() if n not in before or before[n].entry_id != e.entry_id
        )
        snapshot.removed = frozenset(before.keys() - entries.keys())
        snapshot.unavailable = frozenset(
            n for n, e in entries.items() if e.kind == manifest.UNAVAILABLE
        ) | frozenset(broken)
        snapshot.unevaluated = frozenset(
            n
            for n, paths in stored.items()
            if n not in broken and not all(opened[p].ready() for p in paths)
        )
        live_ids = frozenset(e.entry_id for e in entries.values())
        with self._lock:
            # Segments no longer named stay open while an older snapshot object uses them.
            self._segments = opened
            self._values = {k: v for k, v in self._values.items() if k in live_ids}
            self._live_ids = live_ids
            for name, reason in broken.items():
                self._values[entries[name].entry_id] = codec.Unavailable(
                    entries[name].type_name, entries[name].nbytes, "", reason
                )
            self.current = snapshot
        return snapshot

    def value(self, entry: EntryRef, opened: Mapping[str, segments.Segment]) -> Any:
        """The decoded value of `entry` (decoded once; waits while it is being written)."""
        with self._lock:
            if entry.entry_id in self._values:
                return self._values[entry.entry_id]
        try:
            value = decode_entry(entry, opened)
        except segments.SegmentError as e:
            value = codec.Unavailable(entry.type_name, entry.nbytes, "", str(e))
        with self._lock:
            if entry.entry_id in self._live_ids:
                value = self._values.setdefault(entry.entry_id, value)
        return value

    def close(self) -> None:
        """Release every mapping (worker exit)."""
        with self._lock:
            for segment in self._segments.values():
                segment.close()
            self._segments = {}
            self._values = {}
            self._live_ids = frozenset()
            self.current = None


def decode_entry(entry: EntryRef, opened: Mapping[str, segments.Segment]) -> Any:
    """The value of `entry` from its opened segments (mapped, zero copy)."""
    if isinstance(entry.buffers, str):  # encoded in the background: one segment
        parts = opened[entry.buffers].parts()
        if not parts:
            raise segments.SegmentError(f"snapshot segment {entry.buffers} is empty")
        return codec.decode(parts[0], parts[1:])
    if isinstance(entry.meta, tuple):
        path, index = entry.meta
        meta: bytes | memoryview = _part(opened[path], index)
    else:
        meta = entry.meta
    buffers = [_part(opened[path], index) for path, index in entry.buffers]
    return codec.decode(meta, buffers)


def _part(segment: segments.Segment, index: int) -> memoryview:
    parts = segment.parts()
    if index >= len(parts):
        raise segments.SegmentError(f"snapshot segment {segment.path} has no part {index}")
    return parts[index]


def _raise_open_files_limit() -> None:
    # Each big buffer is one open segment; the default soft limit (often 1024) is low.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
