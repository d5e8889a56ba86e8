"""Latest wins: at most one snapshot in flight per worker, one waiting, and segments freed
as soon as no snapshot that still matters names them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mpkernel.funnel.items import SnapshotReady
from mpkernel.snapshots import manifest, segments
from mpkernel.snapshots.dispatch import SnapshotDispatcher
from mpkernel.snapshots.manifest import EntryRef
from mpkernel.supervision import ipc


@pytest.fixture
def directory() -> Iterator[Path]:
    yield segments.kernel_dir()
    segments.remove_kernel_dir()


def snapshot(version: int, *paths: str) -> SnapshotReady:
    entries = {
        f"v{i}": EntryRef(i, manifest.OBJECT, "bytes", 1, b"", ((p, 0),))
        for i, p in enumerate(paths)
    }
    return SnapshotReady(version, manifest.pack(version, entries))


def segment(directory: Path) -> str:
    return segments.write_segment(directory, [b"data"])


def versions(sends: list[tuple[str, ipc.Snapshot]]) -> list[tuple[str, int]]:
    return [(key, msg.version) for key, msg in sends]


def test_nobody_wants_snapshots_until_a_consumer_is_ready() -> None:
    d = SnapshotDispatcher()
    assert not d.wanted()
    assert d.worker_ready("plain", consumes=False) == []
    assert not d.wanted()
    d.worker_ready("c", consumes=True)
    assert d.wanted()
    d.worker_gone("c")
    assert not d.wanted()


def test_one_in_flight_and_the_newest_waiting(directory: Path) -> None:
    d = SnapshotDispatcher()
    d.worker_ready("w", consumes=True)
    assert versions(d.offer(snapshot(1))) == [("w", 1)]
    assert d.offer(snapshot(2)) == []
    assert d.offer(snapshot(3)) == []  # supersedes 2, which is never sent
    assert versions(d.taken("w", 1)) == [("w", 3)]
    assert d.taken("w", 3) == []
    assert versions(d.offer(snapshot(4))) == [("w", 4)]


def test_each_worker_has_its_own_pace(directory: Path) -> None:
    d = SnapshotDispatcher()
    d.worker_ready("a", consumes=True)
    d.worker_ready("b", consumes=True)
    assert sorted(versions(d.offer(snapshot(1)))) == [("a", 1), ("b", 1)]
    d.taken("a", 1)
    assert versions(d.offer(snapshot(2))) == [("a", 2)]
    assert versions(d.taken("b", 1)) == [("b", 2)]


def test_a_new_consumer_gets_the_latest_at_once(directory: Path) -> None:
    d = SnapshotDispatcher()
    d.worker_ready("a", consumes=True)
    d.offer(snapshot(1))
    d.offer(snapshot(2))
    assert versions(d.worker_ready("b", consumes=True)) == [("b", 2)]


def test_a_latest_built_before_a_pause_is_not_handed_out(directory: Path) -> None:
    # Nobody consumed for a while, so the builder stopped looking: that latest may be stale.
    d = SnapshotDispatcher()
    d.worker_ready("a", consumes=True)
    d.offer(snapshot(1))
    d.worker_gone("a")
    assert d.worker_ready("b", consumes=True) == []
    assert versions(d.offer(snapshot(2))) == [("b", 2)]


def test_a_stale_acknowledgement_changes_nothing(directory: Path) -> None:
    d = SnapshotDispatcher()
    d.worker_ready("w", consumes=True)
    d.offer(snapshot(1))
    d.offer(snapshot(2))
    assert d.taken("w", 7) == []
    assert d.taken("other", 1) == []
    assert versions(d.taken("w", 1)) == [("w", 2)]


def test_superseded_segments_are_unlinked(directory: Path) -> None:
    d = SnapshotDispatcher()
    d.worker_ready("w", consumes=True)
    s1, s2, s3, shared = (segment(directory) for _ in range(4))
    d.offer(snapshot(1, s1, shared))  # in flight
    d.offer(snapshot(2, s2, shared))  # waiting
    d.offer(snapshot(3, s3, shared))  # replaces 2: s2 was only there
    assert d.freed()
    assert not Path(s2).exists()
    assert Path(s1).exists(), "in flight: the worker may not have opened it yet"
    d.taken("w", 1)  # the worker opened s1 (pinned it); 3 is now in flight
    assert d.freed()
    assert not Path(s1).exists()
    assert Path(s3).exists()
    assert Path(shared).exists()
    assert d.held_segments() == {s3, shared}


def test_a_dead_worker_frees_what_only_it_was_sent(directory: Path) -> None:
    d = SnapshotDispatcher()
    d.worker_ready("w", consumes=True)
    s1, s2 = segment(directory), segment(directory)
    d.offer(snapshot(1, s1))
    d.offer(snapshot(2, s2))
    d.offer(snapshot(3, s2))
    assert Path(s1).exists()
    d.worker_gone("w")
    assert d.freed()
    assert not Path(s1).exists()
    assert Path(s2).exists(), "the latest is kept for the next consumer"


def test_close_frees_everything_of_this_kernel(directory: Path) -> None:
    d = SnapshotDispatcher()
    d.worker_ready("w", consumes=True)
    s1 = segment(directory)
    stray = segment(directory)  # a one-off object nobody attached
    d.offer(snapshot(1, s1))
    d.close()
    assert not Path(s1).exists()
    assert not Path(stray).exists()
    assert not directory.exists()


def test_a_payload_that_is_not_a_manifest_is_dropped() -> None:
    d = SnapshotDispatcher()
    d.worker_ready("w", consumes=True)
    assert d.offer(SnapshotReady(1, b"garbage")) == []
