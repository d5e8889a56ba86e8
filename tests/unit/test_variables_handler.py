"""The variables pane's handler on its own (`mpkernel_workers.testing`): real snapshots of a
namespace, a fake comm, no kernel and no worker process."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from mpkernel_workers.api import INVALID_PARAMS, RpcError
from mpkernel_workers.testing import (
    FakeComm,
    Namespace,
    SharedState,
    call,
    close_handler,
    open_handler,
)
from mpkernel_workers.variables.access_keys import encode_key
from mpkernel_workers.variables.handler import VariablesHandler


@pytest.fixture
def ns() -> Iterator[Namespace]:
    with Namespace() as namespace:
        yield namespace


def names(variables: list[dict[str, Any]]) -> list[str]:
    return [v["display_name"] for v in variables]


def test_the_first_snapshot_is_a_refresh_then_updates_name_what_changed(ns: Namespace) -> None:
    comm = FakeComm()
    pane = open_handler(VariablesHandler, comm)
    assert comm.events == []  # nothing is known before the first snapshot
    pane.on_snapshot(ns.run("x = 1\ny = 'two'"))
    ((method, refresh),) = comm.events
    assert method == "refresh"
    assert sorted(names(refresh["variables"])) == ["x", "y"]
    assert refresh["length"] == 2
    pane.on_snapshot(ns.run("x = 2\ndel y"))
    method, update = comm.events[-1]
    assert method == "update"
    assert names(update["assigned"]) == ["x"]
    assert update["assigned"][0]["display_value"] == "2"
    assert update["removed"] == [encode_key("y")]
    assert update["version"] > refresh["version"]


def test_a_cell_that_changes_nothing_sends_nothing(ns: Namespace) -> None:
    comm = FakeComm()
    pane = open_handler(VariablesHandler, comm)
    pane.on_snapshot(ns.run("x = 1"))
    pane.on_snapshot(ns.run("pass"))
    assert comm.event_names() == ["refresh"]


def test_list_and_inspect(ns: Namespace) -> None:
    comm = FakeComm()
    pane = open_handler(VariablesHandler, comm)
    pane.on_snapshot(ns.run("d = {'a': 1, 'b': [1, 2]}"))
    listed = call(pane, "list")
    assert names(listed["variables"]) == ["d"]
    (d,) = listed["variables"]
    inspected = call(pane, "inspect", path=[d["access_key"]])
    assert names(inspected["children"]) == ["a", "b"]
    assert inspected["length"] == 2


def test_bad_paths_are_invalid_params(ns: Namespace) -> None:
    pane = open_handler(VariablesHandler, FakeComm())
    pane.on_snapshot(ns.run("x = 1"))
    for path in ([], "x", [1]):
        with pytest.raises(RpcError) as raised:
            call(pane, "inspect", path=path)
        assert raised.value.code == INVALID_PARAMS


def test_clear_asks_the_kernel_and_the_next_snapshot_is_a_refresh(ns: Namespace) -> None:
    def kernel(method: str, params: Mapping[str, Any]) -> Any:
        ns.run("del x")
        return None

    comm = FakeComm(kernel=kernel)
    pane = open_handler(VariablesHandler, comm)
    pane.on_snapshot(ns.run("x = 1"))
    call(pane, "clear", include_hidden_objects=False)
    assert comm.kernel_requests == [("clear", {"include_hidden": False})]
    pane.on_snapshot(ns.run("z = 3"))
    assert comm.event_names() == ["refresh", "refresh"]
    assert names(comm.events[-1][1]["variables"]) == ["z"]


def test_view_asks_the_kernel_for_an_explorer_on_tables_only(ns: Namespace) -> None:
    pd = pytest.importorskip("pandas")
    comm = FakeComm(kernel=lambda method, params: {"comm_id": "explorer-1"})
    pane = open_handler(VariablesHandler, comm)
    ns.ns["pd"] = pd
    pane.on_snapshot(ns.run("df = pd.DataFrame({'a': [1, 2]})\nn = 3"))
    keys = {v["display_name"]: v["access_key"] for v in call(pane, "list")["variables"]}
    assert call(pane, "view", path=[keys["df"]]) == "explorer-1"
    ((method, params),) = comm.kernel_requests
    assert (method, params["path"], params["target"]) == ("view", ["df"], "positron.dataExplorer")
    with pytest.raises(RpcError) as raised:
        call(pane, "view", path=[keys["n"]])
    assert raised.value.code == INVALID_PARAMS


def test_a_pane_opened_later_starts_from_what_the_worker_already_saw(ns: Namespace) -> None:
    shared = SharedState()
    first = open_handler(VariablesHandler, FakeComm(shared=shared))
    first.on_snapshot(ns.run("x = 1"))
    comm = FakeComm(shared=shared)
    open_handler(VariablesHandler, comm)
    assert comm.event_names() == ["refresh"]
    assert names(comm.events[0][1]["variables"]) == ["x"]


def test_a_pane_reopened_after_all_closed_asks_for_a_fresh_snapshot(ns: Namespace) -> None:
    shared = SharedState()
    first = open_handler(VariablesHandler, FakeComm(shared=shared))
    first.on_snapshot(ns.run("x = 1"))
    close_handler(first)
    comm = FakeComm(shared=shared, kernel=lambda method, params: {"version": 9})
    open_handler(VariablesHandler, comm)
    assert comm.events == []  # what it saw may be old: it asks
    assert comm.run_tasks() == ["variables-snapshot"]
    assert comm.kernel_requests == [("snapshot", {})]
