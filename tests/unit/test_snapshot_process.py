"""Snapshots across a real process boundary: a spawned worker maps what the main process
wrote, waits on data still being written, and its exit frees what only it held."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mpkernel.snapshots import segments
from mpkernel.snapshots.builder import SnapshotBuilder
from mpkernel.snapshots.dispatch import SnapshotDispatcher
from mpkernel.supervision import ipc

DEADLINE_S = 60  # a hang guard, not a speed assertion


def worker(conn: multiprocessing.connection.Connection) -> None:
    """Applies each snapshot it is sent and answers expressions against the latest."""
    from mpkernel.snapshots.store import SnapshotStore

    store = SnapshotStore()
    while True:
        kind, data = conn.recv()
        if kind == "snapshot":
            snap = store.apply(ipc.Snapshot(*data))
            conn.send(("taken", snap.version, sorted(snap.changed), sorted(snap.unevaluated)))
        elif kind == "eval":
            assert store.current is not None
            names = {n: store.current[n] for n in store.current if n in data}
            conn.send(("value", eval(data, {}, names)))
        else:
            store.close()
            conn.send(("closed",))
            return


class Worker:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=worker, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def ask(self, kind: str, data: Any) -> tuple[Any, ...]:
        self.conn.send((kind, data))
        if not self.conn.poll(DEADLINE_S):
            raise AssertionError(f"worker did not answer {kind}")
        answer: tuple[Any, ...] = self.conn.recv()
        return answer


@pytest.fixture
def setup() -> Iterator[tuple[dict[str, Any], SnapshotBuilder, SnapshotDispatcher, Worker]]:
    ns: dict[str, Any] = {"np": np}
    dispatcher = SnapshotDispatcher()
    dispatcher.worker_ready("w", consumes=True)
    builder = SnapshotBuilder(ns, set(), 0, dispatcher.wanted, 1 << 62)  # no budget, no preview
    w = Worker()
    yield ns, builder, dispatcher, w
    if w.process.is_alive():
        w.process.kill()
    w.process.join(DEADLINE_S)
    dispatcher.close()


def run(
    cell: str, ns: dict[str, Any], builder: SnapshotBuilder, d: SnapshotDispatcher, w: Worker
) -> list[tuple[Any, ...]]:
    exec(cell, ns)
    item = builder.after_execute(cell)
    assert item is not None
    answers = []
    for key, msg in d.offer(item):
        answers.append(w.ask("snapshot", (msg.version, msg.payload)))
        d.taken(key, msg.version)
    return answers


def test_a_worker_reads_deferred_data_once_written(
    setup: tuple[dict[str, Any], SnapshotBuilder, SnapshotDispatcher, Worker],
) -> None:
    ns, builder, d, w = setup
    [(_, _version, changed, _)] = run("arr = np.arange(5_000_000.0)", ns, builder, d, w)
    assert changed == ["arr"]
    assert w.ask("eval", "float(arr[-1])") == ("value", 4_999_999.0)
    run("arr[-1] = -2.0", ns, builder, d, w)
    assert w.ask("eval", "float(arr[-1])") == ("value", -2.0)


def test_segments_a_worker_took_survive_their_unlink_and_die_with_it(
    setup: tuple[dict[str, Any], SnapshotBuilder, SnapshotDispatcher, Worker],
) -> None:
    ns, builder, d, w = setup
    run("a = np.ones(2_000_000)", ns, builder, d, w)
    first = d.held_segments()
    run("a = np.zeros(2_000_000)", ns, builder, d, w)
    # The worker took the first snapshot (pinned its segments); they are unlinked now.
    assert d.freed()
    assert first
    assert all(not Path(p).exists() for p in first)
    assert w.ask("eval", "float(a.sum())") == ("value", 0.0)
    assert w.ask("close", None) == ("closed",)
    w.process.join(DEADLINE_S)
    d.worker_gone("w")
    assert all(Path(p).exists() for p in d.held_segments()), "the latest is kept"


def test_kernel_shutdown_leaves_no_segment(
    setup: tuple[dict[str, Any], SnapshotBuilder, SnapshotDispatcher, Worker],
) -> None:
    ns, builder, d, w = setup
    run("a = np.ones(2_000_000); b = [{'i': i} for i in range(60_000)]", ns, builder, d, w)
    directory = segments.kernel_dir()
    assert any(directory.iterdir())
    d.close()
    assert not directory.exists()
