"""A viewer's comm moving to a fresh fork (`mpkernel.comms.takeovers`), with the real
registry and books and a sink that records what the router would do."""

from __future__ import annotations

import json
from typing import Any

from mpkernel.comms.books import PendingRpc, WorkerBook
from mpkernel.comms.registry import CommEntry, CommRegistry
from mpkernel.comms.takeovers import Takeovers
from mpkernel.config.model import Config, WorkerConfig, parse_config
from mpkernel.funnel.items import ReplaceViewer
from mpkernel.supervision import ipc
from mpkernel.supervision.fork import ForkedWorker
from mpkernel.supervision.runtime import WorkerSpec
from mpkernel.wire import HeaderFactory

TARGET = "positron.dataExplorer"
HEADERS = HeaderFactory("session", "user")


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, ipc.ToWorker]] = []
        self.stopped: list[str] = []
        self.adopted: list[str] = []
        self.dead: set[str] = set()

    def send(self, worker_key: str, msg: ipc.ToWorker) -> None:
        self.sent.append((worker_key, msg))

    def acquire(
        self, config: WorkerConfig, comm_id: str, forked: ForkedWorker | None = None
    ) -> str:
        assert forked is not None
        key = f"{config.name}:{comm_id}:{forked.pid}"
        self.adopted.append(key)
        return key

    def live(self, worker_key: str) -> bool:
        return worker_key not in self.dead

    def stop(self, worker_key: str, reason: str) -> None:
        self.stopped.append(worker_key)


class Setup:
    def __init__(self) -> None:
        self.config: Config = parse_config("", None)
        self.registry = CommRegistry()
        self.sink = Sink()
        self.books: dict[str, WorkerBook] = {}
        self.closed: list[tuple[str, dict[str, Any]]] = []
        self.forgotten: list[str] = []
        self.takeovers = Takeovers(
            self.config,
            self.registry,
            self.sink,
            lambda key: self.books.setdefault(key, WorkerBook()),
            lambda comm_id, data, parent: self.closed.append((comm_id, data)),
        )
        self.registry.add(CommEntry("c", TARGET, "worker", "old", "kernel", b'{"title": "t"}'))
        self.registry.get("c").state_json = b'{"sort_keys": [1]}'  # type: ignore[union-attr]

    def fork(self, pid: int) -> ForkedWorker:
        spec = WorkerSpec("data_explorer", TARGET, "m:C", "ipc://a.in", "ipc://a.out", b"t")
        return ForkedWorker(spec, pid, -1, lambda: self.forgotten.append("c"))

    def replace(self, pid: int) -> ForkedWorker:
        forked = self.fork(pid)
        self.takeovers.replace(ReplaceViewer("c", forked, forked.forget or (lambda: None), None))
        return forked

    def busy(self, key: str) -> None:
        parent = HEADERS.make("comm_msg")
        self.books.setdefault(key, WorkerBook()).pending["r"] = PendingRpc("c", None, parent, None)

    def opened_on(self) -> list[str]:
        return [key for key, msg in self.sink.sent if isinstance(msg, ipc.OpenComm)]


def test_the_comm_moves_at_once_when_the_old_worker_owes_nothing() -> None:
    s = Setup()
    s.replace(101)
    new = s.sink.adopted[0]
    assert s.registry.get("c").worker_key == new  # type: ignore[union-attr]
    ((key, msg),) = s.sink.sent
    assert key == new
    assert isinstance(msg, ipc.OpenComm)
    assert msg.payload == ipc.FORKED_SUBJECT
    data = json.loads(msg.data_json)
    assert data == {"title": "t", ipc.RESTORED_STATE: {"sort_keys": [1]}}
    assert s.sink.stopped == ["old"]


def test_it_waits_until_the_old_worker_has_answered() -> None:
    s = Setup()
    s.busy("old")
    s.replace(101)
    assert s.registry.get("c").worker_key == "old"  # type: ignore[union-attr]
    assert s.opened_on() == []
    # The answer carried a newer state, saved before it arrived.
    s.registry.get("c").state_json = b'{"sort_keys": [2]}'  # type: ignore[union-attr]
    s.books["old"].pending.clear()
    s.takeovers.worker_answered("old")
    assert s.opened_on() == [s.sink.adopted[0]]
    msg = s.sink.sent[-1][1]
    assert isinstance(msg, ipc.OpenComm)
    assert json.loads(msg.data_json)[ipc.RESTORED_STATE] == {"sort_keys": [2]}
    assert s.sink.stopped == ["old"]


def test_a_fresher_fork_replaces_one_still_waiting() -> None:
    s = Setup()
    s.busy("old")
    s.replace(101)
    s.replace(102)
    first, second = s.sink.adopted
    assert s.sink.stopped == [first]
    s.books["old"].pending.clear()
    s.takeovers.worker_answered("old")
    assert s.opened_on() == [second]


def test_a_dead_old_worker_hands_over_at_once() -> None:
    s = Setup()
    s.busy("old")
    s.replace(101)
    s.sink.dead.add("old")
    s.takeovers.worker_answered("old")  # what the router does on its exit
    assert s.registry.get("c").worker_key == s.sink.adopted[0]  # type: ignore[union-attr]


def test_a_comm_closed_while_waiting_stops_the_fresh_child_and_is_forgotten() -> None:
    s = Setup()
    s.busy("old")
    forked = s.replace(101)
    s.takeovers.opened("c", forked)
    s.registry.remove("c")
    s.takeovers.comm_gone("c")
    assert s.sink.stopped == [s.sink.adopted[0]]
    assert s.forgotten == ["c"]


def test_a_fork_for_a_comm_already_closed_is_stopped_and_forgotten() -> None:
    s = Setup()
    s.registry.remove("c")
    s.replace(101)
    assert s.sink.stopped == s.sink.adopted
    assert s.forgotten == ["c"]
    assert s.opened_on() == []


def test_a_deleted_variable_closes_the_comm() -> None:
    s = Setup()
    s.takeovers.replace(ReplaceViewer("c", None, lambda: s.forgotten.append("c"), None))
    assert s.closed == [("c", {"reason": "variable_deleted"})]
    assert "c" not in s.registry
    assert s.sink.stopped == ["old"]
    assert any(isinstance(m, ipc.CloseComm) for _, m in s.sink.sent)
