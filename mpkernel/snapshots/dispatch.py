"""Io thread: hand snapshots to the workers that consume them, newest only.

Per consuming worker: at most one snapshot in flight (sent, not yet acknowledged with
`SnapshotTaken`) and at most one waiting; a newer snapshot replaces the waiting one (latest
wins). Manifests are complete, so skipping versions is safe. A worker opens every segment
of a snapshot before it acknowledges it, which pins those files; so a segment is needed
only while it is named by the latest snapshot (a new consumer gets it at once), or by one
in flight or waiting. Every other segment is unlinked as soon as that stops being true:
when superseded, acknowledged, or when its worker is gone (the kernel frees the memory once
the last mapping of it is gone). `close` removes the kernel's whole segment directory,
one-off objects (`codec.encode_object`) included.

The latest snapshot is handed to a new consumer only while it is fresh: once the last
consumer is gone the builder stops looking (`wanted()` is False), so the next consumer
waits for the next snapshot, which the builder makes complete (or for a "snapshot" kernel
request, which makes one at once).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

from mpkernel.funnel.items import SnapshotReady
from mpkernel.supervision import ipc
from mpkernel.threads import hidden_from_debugger
from mpkernel.wire import json_bytes

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Consumer:
    in_flight: SnapshotReady | None = None
    waiting: SnapshotReady | None = None


class SnapshotDispatcher:
    """Per consuming worker: at most one snapshot in flight, at most one waiting (the
    newest; a newer one supersedes it and what only it referenced is freed)."""

    def __init__(self) -> None:
        self._consumers: dict[str, _Consumer] = {}
        self._latest: SnapshotReady | None = None
        self._fresh = False
        self._paths: dict[int, frozenset[str]] = {}  # version -> segments it names
        self._known: set[str] = set()  # every segment seen and not yet unlinked
        self._reaper = _Reaper()

    def wanted(self) -> bool:
        """Whether any worker consumes snapshots (read from the main thread)."""
        return bool(self._consumers)

    def worker_ready(self, key: str, consumes: bool) -> list[tuple[str, ipc.Snapshot]]:
        """A worker is ready; a consumer is sent the latest snapshot at once."""
        self._consumers.pop(key, None)  # a restarted worker starts from nothing
        if not consumes:
            self._collect()
            return []
        consumer = self._consumers[key] = _Consumer()
        sends = []
        if self._latest is not None and self._fresh:
            consumer.in_flight = self._latest
            sends.append((key, _envelope(self._latest)))
        self._collect()
        return sends

    def worker_gone(self, key: str) -> None:
        """A worker exited: what only it was being sent is freed."""
        if self._consumers.pop(key, None) is not None and not self._consumers:
            self._fresh = False
        self._collect()

    def offer(self, item: SnapshotReady) -> list[tuple[str, ipc.Snapshot]]:
        """A new snapshot from the main thread: what to send to whom now."""
        # Here, not at import: the io thread starts before anyone wants a snapshot.
        from mpkernel.snapshots import manifest

        try:
            self._paths[item.version] = manifest.segment_paths(item.payload)
        except manifest.ManifestError:
            log.error("dropped snapshot %d: not a manifest", item.version)
            return []
        self._known |= self._paths[item.version]
        self._latest = item
        self._fresh = True
        sends = []
        for key, consumer in self._consumers.items():
            if consumer.in_flight is None:
                consumer.in_flight = item
                sends.append((key, _envelope(item)))
            else:
                consumer.waiting = item
        self._collect()
        return sends

    def taken(self, key: str, version: int) -> list[tuple[str, ipc.Snapshot]]:
        """A worker acknowledged `version`: what to send it next."""
        consumer = self._consumers.get(key)
        if consumer is None or consumer.in_flight is None:
            return []
        if consumer.in_flight.version != version:
            log.warning(
                "worker %s acknowledged snapshot %d, %d was in flight",
                key,
                version,
                consumer.in_flight.version,
            )
            return []
        consumer.in_flight, consumer.waiting = consumer.waiting, None
        sends = [] if consumer.in_flight is None else [(key, _envelope(consumer.in_flight))]
        self._collect()
        return sends

    def close(self) -> None:
        """Kernel shutdown: free every shared-memory segment still held."""
        self._reaper.stop()
        for path in self._known:
            _unlink(path)
        self._known.clear()
        self._paths.clear()
        self._consumers.clear()
        self._latest = None
        from mpkernel.snapshots import segments

        segments.remove_kernel_dir()

    def held_segments(self) -> frozenset[str]:
        """The segments kept now (for tests and diagnostics)."""
        return frozenset(self._known)

    def freed(self, timeout_s: float = 30.0) -> bool:
        """Wait until every segment released so far is unlinked (for tests and
        diagnostics); whether that happened within `timeout_s`."""
        return self._reaper.sync(timeout_s)

    def _collect(self) -> None:
        live_versions = {
            s.version
            for c in self._consumers.values()
            for s in (c.in_flight, c.waiting)
            if s is not None
        }
        if self._latest is not None:
            live_versions.add(self._latest.version)
        for version in self._paths.keys() - live_versions:
            del self._paths[version]
        live = frozenset().union(*self._paths.values())
        dead = self._known - live
        if dead:
            self._reaper.unlink(dead)
        self._known &= live


def _envelope(item: SnapshotReady) -> ipc.Snapshot:
    parent = item.parent
    if parent is None:
        return ipc.Snapshot(item.version, item.payload)
    return ipc.Snapshot(item.version, item.payload, json_bytes(parent.as_dict()), parent.msg_id)


class _Reaper:
    """Unlinks segments off the io thread: freeing the last reference to an 800 MB tmpfs
    file takes ~35 ms (measured), too long to stall every socket for."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[frozenset[str] | threading.Event | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def unlink(self, paths: set[str]) -> None:
        if self._thread is None:
            self._thread = hidden_from_debugger(
                threading.Thread(target=self._run, name="mpkernel-shm-free", daemon=True)
            )
            self._thread.start()
        self._queue.put(frozenset(paths))

    def sync(self, timeout_s: float) -> bool:
        """Wait until what was queued so far is unlinked; whether it was in time."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout_s)

    def stop(self) -> None:
        """Finish what is queued (kernel shutdown)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
                continue
            for path in item:
                _unlink(path)


def _unlink(path: str) -> None:
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("cannot free snapshot segment %s: %s", path, e)
