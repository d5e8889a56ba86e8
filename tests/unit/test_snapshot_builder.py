"""The builder through the real dispatcher and store, in one process with real segments:
what a worker sees after each cell (docs/architecture.md section 4, "snapshots")."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from mpkernel.funnel.items import SnapshotReady
from mpkernel.snapshots import builder as builder_module
from mpkernel.snapshots import manifest
from mpkernel.snapshots.background import Job
from mpkernel.snapshots.builder import SnapshotBuilder
from mpkernel.snapshots.codec import Unavailable
from mpkernel.snapshots.dispatch import SnapshotDispatcher
from mpkernel.snapshots.preview import PREVIEW_ROWS, Preview
from mpkernel.snapshots.store import SnapshotStore, WorkerSnapshot


class Pipeline:
    """`run(cell)` executes `cell` in the namespace, then does what the kernel does after
    an execution: build, offer, send to the one worker, apply, acknowledge."""

    def __init__(self, budget_ms: float = 200, preview_min_bytes: int = 1 << 62) -> None:
        self.ns: dict[str, Any] = {"np": np, "pd": pd, "pl": pl}
        self.hidden: set[str] = set()
        self.dispatcher = SnapshotDispatcher()
        # Previews off unless a test turns them on: these tests move whole values.
        self.builder = SnapshotBuilder(
            self.ns, self.hidden, budget_ms, self.dispatcher.wanted, preview_min_bytes
        )
        self.store = SnapshotStore()
        self.dispatcher.worker_ready("w", consumes=True)

    def run(self, cell: str) -> WorkerSnapshot | None:
        """The snapshot the worker took, or None when none was built."""
        exec(cell, self.ns)
        return self.deliver(self.builder.after_execute(cell))

    def deliver(self, item: SnapshotReady | None) -> WorkerSnapshot | None:
        if item is None:
            return None
        taken = None
        for key, msg in self.dispatcher.offer(item):
            taken = self.store.apply(msg)
            self.dispatcher.taken(key, msg.version)
        return taken

    def close(self) -> None:
        self.store.close()
        self.dispatcher.close()


@pytest.fixture
def pipe() -> Iterator[Pipeline]:
    p = Pipeline()
    p.run("x = 1")
    yield p
    p.close()


def taken(snap: WorkerSnapshot | None) -> WorkerSnapshot:
    assert snap is not None, "no snapshot was built"
    return snap


def test_the_first_snapshot_has_every_visible_name(pipe: Pipeline) -> None:
    snap = taken(pipe.store.current)
    assert set(snap) == {"x"}  # np, pd, pl are modules
    assert snap["x"] == 1


def test_a_cell_that_changes_nothing_builds_nothing(pipe: Pipeline) -> None:
    pipe.run("big = np.zeros(1_000_000)")
    assert pipe.run("pass") is None
    assert pipe.run("1 + 1") is None
    assert pipe.run("y_ = x") is not None  # a new name


def test_rebinding(pipe: Pipeline) -> None:
    snap = taken(pipe.run("x = 2"))
    assert snap.changed == {"x"}
    assert snap["x"] == 2


@pytest.mark.parametrize(
    ("setup", "mutation", "name", "check"),
    [
        ("lst = [1]", "lst.append(2)", "lst", "lst == [1, 2]"),
        ("d = {}", "d['k'] = 'v'", "d", "d == {'k': 'v'}"),
        ("lst = [[0]]", "lst[0][0] = 5", "lst", "lst == [[5]]"),
        (
            "df = pd.DataFrame({'a': np.arange(300_000.0)})",
            "df.loc[0, 'a'] = 1.5",
            "df",
            "df.loc[0, 'a'] == 1.5",
        ),
        ("arr = np.zeros(500_000)", "arr[-1] = 3", "arr", "arr[-1] == 3"),
    ],
)
def test_in_place_mutation_is_seen(
    pipe: Pipeline, setup: str, mutation: str, name: str, check: str
) -> None:
    pipe.run(setup)
    snap = taken(pipe.run(mutation))
    assert snap.changed == {name}
    assert eval(check, {}, {name: snap[name]})


def test_mutation_through_an_alias_changes_both_names(pipe: Pipeline) -> None:
    pipe.run("a = [1]; b = a")
    snap = taken(pipe.run("b.append(2)"))
    assert snap.changed == {"a", "b"}
    assert snap["a"] == [1, 2]


def test_mutation_by_a_called_function_is_seen(pipe: Pipeline) -> None:
    pipe.run("log = []\ndef note(v):\n    log.append(v)\n")
    snap = taken(pipe.run("note(3)"))
    assert "log" in snap.changed
    assert snap["log"] == [3]


def test_mutation_of_an_item_bound_to_another_name(pipe: Pipeline) -> None:
    pipe.run("inner = [0]; outer = {'k': inner}")
    snap = taken(pipe.run("outer['k'].append(1)"))
    assert {"inner", "outer"} <= snap.changed
    assert snap["inner"] == [0, 1]


def test_deleting_a_name_removes_it(pipe: Pipeline) -> None:
    snap = taken(pipe.run("del x"))
    assert snap.removed == {"x"}
    assert "x" not in snap


def test_a_dynamic_cell_gets_an_identity_scan(pipe: Pipeline) -> None:
    snap = taken(pipe.run("exec('z = 5')"))
    assert snap["z"] == 5
    snap = taken(pipe.run("globals()['z'] = 6"))
    assert snap["z"] == 6


def test_hidden_names_are_left_out(pipe: Pipeline) -> None:
    pipe.hidden.add("secret")
    cell = "secret = 1; In = []; Out = {}; _ = 1; __ = 2; _5 = 3; _i = ''; _i7 = ''; _ih = []"
    snap = taken(pipe.run(cell + "; shown = 1"))
    assert set(snap) == {"x", "shown"}


def test_an_unchanged_value_is_not_sent_again(pipe: Pipeline) -> None:
    snap = taken(pipe.run("arr = np.arange(1_000_000.0)"))
    first = snap.info("arr")
    held = pipe.dispatcher.held_segments()
    assert pipe.run("arr.sum()") is None  # checked (the cell names it): same fingerprint
    snap = taken(pipe.run("other = 1"))
    assert snap.info("arr") == first
    assert "arr" not in snap.changed
    assert pipe.dispatcher.held_segments() == held


def test_equal_buffers_share_one_segment(pipe: Pipeline) -> None:
    snap = taken(pipe.run("a1 = np.arange(1_000_000.0); a2 = a1.copy()"))
    assert snap.info("a1").buffers == snap.info("a2").buffers


def test_arrays_cross_out_of_band(pipe: Pipeline) -> None:
    snap = taken(
        pipe.run(
            "df = pd.DataFrame({'a': np.arange(400_000.0), 's': [str(i) for i in range(400_000)]})"
            "\npf = pl.DataFrame({'a': np.arange(400_000)})"
        )
    )
    # pandas 3 strings are Arrow buffers; pandas 2's are Python objects, pickled in band.
    small_streams = ("df", "pf") if int(pd.__version__.split(".")[0]) >= 3 else ("pf",)
    for name in ("df", "pf"):
        info = snap.info(name)
        assert info.buffers, f"{name}: no out-of-band buffer"
        if name in small_streams:
            assert isinstance(info.meta, bytes)
            assert len(info.meta) < 10_000
    assert snap["df"]["s"].iloc[-1] == "399999"
    assert isinstance(snap["pf"], pl.DataFrame)
    assert snap["pf"]["a"].sum() == sum(range(400_000))


def test_unpicklable_objects_cross_as_descriptors(pipe: Pipeline) -> None:
    snap = taken(pipe.run("import threading\ng = (i for i in ()); lock = threading.Lock()"))
    assert {"g", "lock"} <= snap.unavailable
    g = snap["g"]
    assert isinstance(g, Unavailable)
    assert g.type_name == "generator"
    assert "pickle" in g.reason
    assert g.summary


def test_functions_stay_in_the_kernel(pipe: Pipeline) -> None:
    snap = taken(pipe.run("def f(): return 1"))
    value = snap["f"]
    assert isinstance(value, Unavailable)
    assert "stay in the kernel" in value.reason


def test_over_budget_data_is_unevaluated_then_follows(pipe: Pipeline) -> None:
    slow = Pipeline(budget_ms=0)
    try:
        snap = taken(slow.run("big = np.arange(3_000_000.0)"))
        assert "big" in snap.changed
        # However it is marked, reading it waits for the data rather than showing old data.
        assert snap["big"][-1] == 2_999_999.0
        assert snap.ready("big")
        snap = taken(slow.run("big[-1] = -1.0"))
        assert snap["big"][-1] == -1.0
        snap = taken(slow.run("lst = [{'i': i} for i in range(60_000)]"))
        assert "lst" in snap.unevaluated or snap.ready("lst")
        assert snap["lst"][-1] == {"i": 59_999}
    finally:
        slow.close()


def test_deferred_work_is_cancelled_when_the_value_changes_again() -> None:
    slow = Pipeline(budget_ms=0)
    try:
        for i in range(5):
            snap = taken(slow.run(f"big = np.full(4_000_000, {i}.0)"))
        assert snap["big"][0] == 4.0
    finally:
        slow.close()


def test_nothing_is_built_while_no_worker_wants_snapshots() -> None:
    ns: dict[str, Any] = {"x": 1}
    wanted = [False]
    builder = SnapshotBuilder(ns, set(), 200, lambda: wanted[0])
    assert builder.after_execute("x = 2") is None
    ns["y"] = [1]
    assert builder.after_execute("y.append(2)") is None
    wanted[0] = True
    item = builder.after_execute("pass")  # the first one wanted is complete
    assert item is not None
    _, _, entries = manifest.unpack(item.payload)
    assert set(entries) == {"x", "y"}


def test_now_builds_even_when_nothing_changed(pipe: Pipeline) -> None:
    before = pipe.builder.version
    snap = taken(pipe.deliver(pipe.builder.now()))
    assert snap.version == before + 1
    assert snap.changed == frozenset()


def test_a_pass_does_not_look_at_values() -> None:
    encoded = []

    class Counted:
        def __reduce__(self) -> Any:
            encoded.append(1)
            return (list, ())

    p = Pipeline()
    try:
        p.ns["counted"] = Counted()
        p.run("x = 1")  # the first snapshot checks every name
        assert encoded == [1]
        assert p.run("pass") is None
        assert p.run("x = 3") is not None
        assert encoded == [1]
        p.run("counted")
        assert encoded == [1, 1]
    finally:
        p.close()


def test_segments_are_freed_when_superseded(pipe: Pipeline) -> None:
    pipe.run("arr = np.zeros(2_000_000)")
    first = pipe.dispatcher.held_segments()
    pipe.run("arr = np.ones(2_000_000)")
    assert not first & pipe.dispatcher.held_segments()
    assert pipe.dispatcher.freed()
    assert all(not Path(p).exists() for p in first)


def test_reading_a_value_whose_write_is_pending_keeps_the_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every new buffer is written in the background (as if copying were slow), and the
    # background thread is held, so the second cell runs while the write is queued.
    monkeypatch.setattr(builder_module, "_COPY_BYTES_PER_S", 1.0)
    p = Pipeline()
    try:
        p.run("arr = np.zeros(2_000_000)")
        release = threading.Event()
        p.builder._background.submit(Job("hold", lambda job: release.wait(30)))
        snap = taken(p.run("arr[0] = 5.0"))
        assert snap.unevaluated == {"arr"}
        assert p.run("arr.shape") is None  # same content: nothing new, the write goes on
        release.set()
        assert p.store.current is not None
        assert p.store.current["arr"][0] == 5.0
    finally:
        release.set()
        p.close()


# -- a viewer's object from the snapshot's shared memory ------------------------------------
def segment_files(pipe: Pipeline) -> set[Path]:
    directory = pipe.builder._segment_dir()
    return set(directory.iterdir())


def test_a_viewer_gets_the_snapshot_entry_without_a_copy(pipe: Pipeline) -> None:
    """A value the snapshot already holds crosses to a viewer by new names of its
    segments (hard links, no data written); the worker unlinks them once mapped."""
    from mpkernel.snapshots import codec

    pipe.run("big = np.arange(2_000_000, dtype=np.float64)")
    value = pipe.ns["big"]
    entry = pipe.builder.current_entry("big", value)
    assert entry is not None
    before = segment_files(pipe)
    payload = codec.encode_entry(entry)
    assert payload is not None
    assert len(payload) < 1000
    linked = segment_files(pipe) - before
    assert linked
    assert all(p.stat().st_nlink == 2 for p in linked)
    back = codec.decode_object(payload)
    assert np.array_equal(back, value)
    assert segment_files(pipe) == before  # the worker unlinked its names once mapped
    assert all(Path(p).exists() for p in entry.segment_paths())  # the snapshot's stay


def test_no_entry_for_a_value_the_snapshot_does_not_hold(pipe: Pipeline) -> None:
    pipe.run("a = np.zeros(300_000)")
    assert pipe.builder.current_entry("a", np.zeros(3)) is None  # another object
    pipe.ns["a"] = np.ones(300_000)  # rebound since the last snapshot
    assert pipe.builder.current_entry("a", pipe.ns["a"]) is None
    assert pipe.builder.current_entry("nope", 1) is None


def test_an_entry_whose_segments_are_gone_is_encoded_again(pipe: Pipeline) -> None:
    from mpkernel.snapshots import codec

    pipe.run("gone = np.arange(300_000)")
    entry = pipe.builder.current_entry("gone", pipe.ns["gone"])
    assert entry is not None
    for path in entry.segment_paths():
        Path(path).unlink()
    before = segment_files(pipe)
    assert codec.encode_entry(entry) is None
    assert segment_files(pipe) == before  # no link left behind


def test_an_on_demand_snapshot_makes_entries_current() -> None:
    """A pane opened after the data was made asks for a snapshot of now: a viewer opened
    right after it (no execution between) gets that snapshot's entry."""
    p = Pipeline()
    try:
        exec("made_before = np.arange(300_000)", p.ns)
        p.deliver(p.builder.now())
        assert p.builder.current_entry("made_before", p.ns["made_before"]) is not None
    finally:
        p.close()


def test_a_big_table_crosses_as_a_preview_and_a_cell_naming_it_is_news() -> None:
    pipe = Pipeline(preview_min_bytes=1 << 20)
    try:
        snap = taken(pipe.run("big = pd.DataFrame(np.zeros((200_000, 4))); other = 1"))
        first = snap["big"]
        assert isinstance(first, Preview)
        assert first.shape == (200_000, 4)
        assert first.family == "pandas.DataFrame"
        assert len(first.head) == PREVIEW_ROWS
        assert first.nbytes >= 200_000 * 4 * 8
        # What crossed is the head, not the data.
        assert snap.info("big").nbytes < 1 << 20
        # A cell that does not name it does not touch it...
        assert "big" not in taken(pipe.run("other = 2")).changed
        # ...one that names it may have changed it: news, without its bytes hashed.
        again = taken(pipe.run("big.iloc[150_000, 0] = 1.0"))
        assert "big" in again.changed
        assert again["big"].generation > first.generation
        # Small values still cross whole.
        assert taken(pipe.run("small = np.zeros(10)"))["small"].shape == (10,)
    finally:
        pipe.close()


@pytest.mark.parametrize(
    "make",
    [
        "pl.DataFrame({'a': np.arange(300_000), 's': [str(i) for i in range(300_000)]})",
        "pa.table({'a': np.arange(300_000), 's': [str(i) for i in range(300_000)]})",
        "np.zeros((3000, 300))",
        "pd.Series(np.zeros(300_000))",
    ],
    ids=["polars", "arrow", "numpy-2d", "pandas-series"],
)
def test_a_preview_holds_only_its_head(make: str) -> None:
    import pyarrow as pa

    pipe = Pipeline(preview_min_bytes=1 << 20)
    pipe.ns["pa"] = pa
    try:
        snap = taken(pipe.run(f"value = {make}"))
        shown = snap["value"]
        assert isinstance(shown, Preview)
        assert shown.shape[0] in (300_000, 3000)
        assert snap.info("value").nbytes < 256 << 10  # the head, not the buffers it is cut from
    finally:
        pipe.close()
