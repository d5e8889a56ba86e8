"""The worker's side: lazy, zero-copy reads; waiting for data still being written; what
changed since the previous snapshot the worker saw."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mpkernel.snapshots import codec, manifest, segments
from mpkernel.snapshots.codec import Unavailable
from mpkernel.snapshots.manifest import EntryRef, ManifestError
from mpkernel.snapshots.store import SnapshotStore
from mpkernel.supervision import ipc


@pytest.fixture
def directory() -> Iterator[Path]:
    yield segments.kernel_dir()
    segments.remove_kernel_dir()


def array_entry(entry_id: int, path: str, arr: np.ndarray) -> EntryRef:
    encoded = codec.encode(arr)
    assert isinstance(encoded, codec.Encoded)
    return EntryRef(
        entry_id, manifest.OBJECT, "numpy.ndarray", arr.nbytes, encoded.meta, ((path, 0),)
    )


def write_array(directory: Path, arr: np.ndarray) -> str:
    encoded = codec.encode(arr)
    assert isinstance(encoded, codec.Encoded)
    assert len(encoded.buffers) == 1
    return segments.write_segment(directory, encoded.buffers)


def inline(entry_id: int, value: object) -> EntryRef:
    encoded = codec.encode(value)
    assert isinstance(encoded, codec.Encoded)
    assert not encoded.buffers
    return EntryRef(entry_id, manifest.OBJECT, type(value).__name__, 1, encoded.meta, ())


def message(version: int, entries: dict[str, EntryRef]) -> ipc.Snapshot:
    return ipc.Snapshot(version, manifest.pack(version, entries))


def test_changed_and_removed_are_relative_to_the_previous_snapshot() -> None:
    store = SnapshotStore()
    s1 = store.apply(message(1, {"a": inline(1, 1), "b": inline(2, 2)}))
    assert s1.changed == {"a", "b"}
    assert s1.removed == frozenset()
    s5 = store.apply(message(5, {"a": inline(1, 1), "c": inline(3, 3)}))
    assert s5.changed == {"c"}
    assert s5.removed == {"b"}
    assert dict(s5) == {"a": 1, "c": 3}


def test_values_are_decoded_once_and_kept_while_unchanged() -> None:
    store = SnapshotStore()
    s1 = store.apply(message(1, {"a": inline(1, [1, 2])}))
    first = s1["a"]
    s2 = store.apply(message(2, {"a": inline(1, [1, 2]), "b": inline(2, 0)}))
    assert s2["a"] is first


def test_arrays_are_mapped_not_copied_and_only_when_read(directory: Path) -> None:
    arr = np.arange(2_000_000, dtype=np.int64)
    path = write_array(directory, arr)
    store = SnapshotStore()
    snap = store.apply(message(1, {"arr": array_entry(1, path, arr)}))
    Path(path).unlink()  # the main process may unlink once the worker took it
    assert snap.info("arr").type_name == "numpy.ndarray"
    value = snap["arr"]
    assert not value.flags.owndata, "decoded from the mapping, not copied"
    assert value.flags.writeable, "copy-on-write: a handler may scratch on it"
    value[0] = -1  # stays private to this worker
    assert int(value[1:].sum()) == int(arr[1:].sum())


def test_reading_data_still_being_written_waits_for_it(directory: Path) -> None:
    arr = np.arange(3_000_000, dtype=np.float64)
    encoded = codec.encode(arr)
    assert isinstance(encoded, codec.Encoded)
    writer = segments.SegmentWriter(directory)
    entry = EntryRef(
        1, manifest.OBJECT, "numpy.ndarray", arr.nbytes, encoded.meta, ((writer.path, 0),)
    )
    store = SnapshotStore()
    snap = store.apply(message(1, {"arr": entry}))
    assert snap.unevaluated == {"arr"}
    assert not snap.ready("arr")
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(snap["arr"]))
    reader.start()
    writer.add(encoded.buffers[0])
    writer.finish()
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert snap.ready("arr")
    value = got[0]
    assert isinstance(value, np.ndarray)
    assert value[-1] == 2_999_999.0


def test_abandoned_data_reads_as_unavailable(directory: Path) -> None:
    writer = segments.SegmentWriter(directory)
    entry = EntryRef(1, manifest.OBJECT, "numpy.ndarray", 8, b"", ((writer.path, 0),))
    store = SnapshotStore()
    snap = store.apply(message(1, {"arr": entry}))
    writer.abandon()
    value = snap["arr"]
    assert isinstance(value, Unavailable)
    assert "superseded" in value.reason


def test_a_missing_segment_reads_as_unavailable(directory: Path) -> None:
    entry = EntryRef(1, manifest.OBJECT, "numpy.ndarray", 8, b"", ((str(directory / "gone"), 0),))
    snap = SnapshotStore().apply(message(1, {"arr": entry}))
    assert snap.unavailable == {"arr"}
    value = snap["arr"]
    assert isinstance(value, Unavailable)
    assert "cannot be opened" in value.reason


def test_a_bad_payload_is_a_clear_error() -> None:
    with pytest.raises(ManifestError):
        SnapshotStore().apply(ipc.Snapshot(1, b"not a manifest"))
    payload = manifest.pack(1, {})
    with pytest.raises(ManifestError):
        SnapshotStore().apply(ipc.Snapshot(1, payload[:-3]))


def test_close_drops_everything() -> None:
    store = SnapshotStore()
    store.apply(message(1, {"a": inline(1, 1)}))
    store.close()
    assert store.current is None
