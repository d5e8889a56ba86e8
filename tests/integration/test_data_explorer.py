"""The data explorer through a real kernel: `mpkernel.view` opens a `positron.dataExplorer`
comm on its own worker process; requests are sent as Positron sends them (no JSON-RPC
`id`, no `params` for methods without any) and every message on the comm is validated
against the contract (`shared/protocol/`). Live data: executions that mutate, reassign or
delete the variable reach the explorer as `data_update`, `schema_update` or a close.
Waits are on IOPub messages with a deadline (hang guards, not speed assertions).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests import contracts
from tests.frontend import KernelHandle, describe, parent_id
from tests.integration.comm_client import (
    IOPubLog,
    call,
    comm_id_of,
    configured_kernels,
    execute_ok,
    is_event,
    is_response_to,
    kernel_children,
    msg_type,
    open_comm,
    send_rpc,
)
from tests.unit.test_data_explorer_contract import PROTOCOL, Contract

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

EXPLORER = "positron.dataExplorer"
# Both ways a table reaches its explorer: a fork of the kernel sharing its pages (the
# default), and a copy through shared memory, with tables previewed in snapshots (so that
# the copy path also fetches the whole value when a cell changes it).
CONFIG = """
[kernel]
preview_min_bytes = "{preview}"

[workers.data_explorer]
enabled = true
subject = "{subject}"
"""
SUBJECTS = {"fork": ("fork", "16MiB"), "copy": ("copy", "0")}
TIMEOUT = 60.0
FORMAT = {
    "large_num_digits": 2,
    "small_num_digits": 4,
    "max_integral_digits": 7,
    "max_value_length": 1000,
    "thousands_sep": ",",
}
MAKE = {
    "pandas": "pd.DataFrame({'x': [3.0, 1.0, None, 2.0], 'name': ['c', 'a', 'd', 'b']})",
    "polars": "pl.DataFrame({'x': [3.0, 1.0, None, 2.0], 'name': ['c', 'a', 'd', 'b']})",
    "arrow": "pa.table({'x': [3.0, 1.0, None, 2.0], 'name': ['c', 'a', 'd', 'b']})",
}


@pytest.fixture(scope="module", params=sorted(SUBJECTS))
def kernel(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[KernelHandle]:
    subject, preview = SUBJECTS[request.param]
    with configured_kernels(request.node, tmp_path_factory.mktemp("explorer")) as start:
        handle = start(CONFIG.format(subject=subject, preview=preview))
        execute_ok(
            IOPubLog(handle.kc), "import mpkernel, pandas as pd, polars as pl, pyarrow as pa"
        )
        yield handle


@pytest.fixture(scope="module")
def contract() -> Contract:
    if not PROTOCOL.is_dir():
        pytest.skip(contracts.MISSING)
    return Contract()


class Explorer:
    """One explorer comm, seen as Positron sees it; every message on it is validated."""

    def __init__(self, kernel: KernelHandle, contract: Contract, name: str, make: str) -> None:
        self.log = IOPubLog(kernel.kc)
        self.contract = contract
        msgs = execute_ok(self.log, f"{name} = {make}\nmpkernel.view({name}, {name!r})")
        opens = [m for m in msgs if msg_type(m) == "comm_open"]
        assert len(opens) == 1, describe(msgs)
        assert opens[0]["content"]["target_name"] == EXPLORER
        data = opens[0]["content"]["data"]
        assert {k: data[k] for k in ("title", "variable")} == {"title": name, "variable": name}
        assert isinstance(data["snapshot_version"], int)
        self.comm_id: str = comm_id_of(opens[0])  # type: ignore[assignment]
        self.checked = 0

    def rpc(
        self, method: str, params: dict[str, Any] | None = None, *, bad: bool = False
    ) -> dict[str, Any]:
        """The reply's data (result or error), validated; `bad`: params meant to be wrong."""
        if params is not None and not bad:
            self.contract.check_params(method, params)
        done = call(self.log, self.comm_id, method, params, timeout=TIMEOUT)
        self.contract.check_message(done.data, method)
        self.check_events()
        return done.data

    def result(self, method: str, params: dict[str, Any] | None = None) -> Any:
        data = self.rpc(method, params)
        assert "result" in data, f"{method}: {data}"
        return data["result"]

    def check_events(self) -> None:
        for m in self.log.msgs[self.checked :]:
            if is_event(m, self.comm_id):
                self.contract.check_message(m["content"]["data"])
        self.checked = len(self.log.msgs)

    def event(self, method: str, what: str, parent: str | None = None) -> dict[str, Any]:
        """The first `method` event on this comm (`parent`: caused by that request)."""

        def match(m: Any) -> bool:
            return (
                is_event(m, self.comm_id)
                and m["content"]["data"]["method"] == method
                and (parent is None or parent_id(m) == parent)
            )

        msg = self.log.wait_for(match, timeout=TIMEOUT, what=what)
        self.check_events()
        data: dict[str, Any] = msg["content"]["data"]
        return data

    def values(self, column: int, first: int = 0, last: int = 99) -> list[Any]:
        spec = {"first_index": first, "last_index": last}
        result = self.result(
            "get_data_values",
            {"columns": [{"column_index": column, "spec": spec}], "format_options": FORMAT},
        )
        values: list[Any] = result["columns"][0]
        return values


def schema_of(explorer: Explorer, index: int) -> dict[str, Any]:
    columns = explorer.result("get_schema", {"column_indices": [index]})["columns"]
    column: dict[str, Any] = columns[0]
    return column


@pytest.mark.parametrize("lib", ["pandas", "polars", "arrow"])
def test_every_method_answers_and_follows_the_contract(
    kernel: KernelHandle, contract: Contract, lib: str
) -> None:
    ex = Explorer(kernel, contract, f"t_{lib}", MAKE[lib])
    state = ex.result("get_state")
    assert state["display_name"] == f"t_{lib}"
    assert state["table_shape"] == {"num_rows": 4, "num_columns": 2}
    assert state["supported_features"]["set_row_filters"]["supports_conditions"] == "supported"
    assert [
        c["column_name"] for c in ex.result("get_schema", {"column_indices": [0, 1, 7]})["columns"]
    ] == ["x", "name"]
    null = 2 if lib == "pandas" else 0  # pandas' missing float is NaN; polars/arrow null
    assert ex.values(0) == ["3.00", "1.00", null, "2.00"]
    assert ex.result(
        "get_row_labels", {"selection": {"indices": [1, 3]}, "format_options": FORMAT}
    )["row_labels"] == ([["1", "3"]] if lib == "pandas" else [])  # only pandas rows have labels

    assert (
        ex.result("set_sort_columns", {"sort_keys": [{"column_index": 0, "ascending": True}]})
        is None
    )
    assert ex.values(1) == ["a", "b", "c", "d"]
    name_filter = {
        "filter_id": "f1",
        "filter_type": "search",
        "column_schema": schema_of(ex, 1),
        "condition": "and",
        "params": {"search_type": "not_contains", "term": "A", "case_sensitive": False},
    }
    bad = {
        "filter_id": "f2",
        "filter_type": "compare",
        "column_schema": schema_of(ex, 0),
        "condition": "and",
        "params": {"op": ">", "value": "not a number"},
    }
    assert ex.result("set_row_filters", {"filters": [name_filter, bad]}) == {
        "selected_num_rows": 3,
        "had_errors": True,
    }
    state = ex.result("get_state")
    assert state["table_shape"]["num_rows"] == 3
    assert [f["is_valid"] for f in state["row_filters"]] == [True, False]
    assert ex.values(1) == ["b", "c", "d"]

    matches = ex.result(
        "search_schema",
        {
            "filters": [
                {
                    "filter_type": "text_search",
                    "params": {"search_type": "contains", "term": "NAM", "case_sensitive": False},
                }
            ],
            "sort_order": "original",
        },
    )
    assert matches == {"matches": [1]}
    exported = ex.result(
        "export_data_selection",
        {"selection": {"kind": "column_indices", "selection": {"indices": [1]}}, "format": "tsv"},
    )
    assert exported == {"data": "name\nb\nc\nd", "format": "tsv"}
    syntax = ex.result("suggest_code_syntax")["code_syntax_name"]
    assert syntax == ("polars" if lib == "polars" else "pandas")
    code = ex.result(
        "convert_to_code",
        {
            "column_filters": [],
            "row_filters": [name_filter],
            "sort_keys": [{"column_index": 0, "ascending": True}],
            "code_syntax_name": syntax,
        },
    )
    assert any("sort" in line for line in code["converted_code"])
    assert ex.result("set_column_filters", {"filters": []}) is None
    assert "error_message" in ex.result("open_dataset", {"uri": "file:///tmp/x.csv"})
    assert "error_message" in ex.result("set_dataset_import_options", {"options": {}})


def test_bad_requests_get_json_rpc_errors_and_the_worker_lives(
    kernel: KernelHandle, contract: Contract
) -> None:
    ex = Explorer(kernel, contract, "errs", MAKE["pandas"])
    assert ex.rpc("no_such_method")["error"]["code"] == -32601
    assert ex.rpc("get_schema", {"column_indices": "all"}, bad=True)["error"]["code"] == -32602
    assert ex.rpc("get_schema", {}, bad=True)["error"]["code"] == -32602
    bad_sort = {"sort_keys": [{"column_index": 9, "ascending": True}]}
    assert ex.rpc("set_sort_columns", bad_sort)["error"]["code"] == -32602
    assert ex.result("get_state")["table_shape"]["num_rows"] == 4


@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_profiles_reply_at_once_then_arrive_as_an_event(
    kernel: KernelHandle, contract: Contract, lib: str
) -> None:
    ex = Explorer(kernel, contract, f"p_{lib}", MAKE[lib])
    request = [
        {
            "column_index": 0,
            "profiles": [
                {"profile_type": "null_count"},
                {"profile_type": "summary_stats"},
                {
                    "profile_type": "small_histogram",
                    "params": {"method": "freedman_diaconis", "num_bins": 10, "quantiles": [0.5]},
                },
            ],
        },
        {
            "column_index": 1,
            "profiles": [
                {"profile_type": "summary_stats"},
                {"profile_type": "large_frequency_table", "params": {"limit": 2}},
            ],
        },
    ]
    params = {"callback_id": "cb-1", "profiles": request, "format_options": FORMAT}
    sent, _ = send_rpc(ex.log.kc, ex.comm_id, "get_column_profiles", params)
    # A cheap request sent right behind is answered too (profiles run off the loop thread).
    assert ex.values(1) == ["c", "a", "d", "b"]
    reply = ex.log.wait_for(
        lambda m: is_response_to(m, sent, ex.comm_id), timeout=TIMEOUT, what="profiles reply"
    )
    assert reply["content"]["data"]["result"] == {}
    event = ex.event("return_column_profiles", "profiles")
    assert ex.log.index(reply) < ex.log.index(
        ex.log.wait_for(lambda m: is_event(m, ex.comm_id), timeout=TIMEOUT, what="event")
    )
    got = event["params"]
    assert got["callback_id"] == "cb-1"
    assert "error_message" not in got
    first, second = got["profiles"]
    assert first["null_count"] == 1
    assert first["summary_stats"]["number_stats"]["max_value"] == "3.00"
    assert sum(first["small_histogram"]["bin_counts"]) == 3
    assert second["summary_stats"]["string_stats"] == {"num_empty": 0, "num_unique": 4}
    assert second["large_frequency_table"]["counts"] == [1, 1]


def test_live_data_update_schema_update_and_close(kernel: KernelHandle, contract: Contract) -> None:
    ex = Explorer(kernel, contract, "live", MAKE["pandas"])
    filt = {
        "filter_id": "keep",
        "filter_type": "compare",
        "column_schema": schema_of(ex, 0),
        "condition": "and",
        "params": {"op": ">=", "value": "2"},
    }
    ex.result("set_row_filters", {"filters": [filt]})
    ex.result("set_sort_columns", {"sort_keys": [{"column_index": 0, "ascending": False}]})
    assert ex.values(0) == ["3.00", "2.00"]

    msgs = execute_ok(ex.log, "live.loc[1, 'x'] = 10.0")  # in place: same schema
    ex.event("data_update", "data_update after a mutation", parent=parent_id(msgs[0]))
    assert ex.values(0) == ["10.00", "3.00", "2.00"]  # filter and sort kept

    ex.checked = len(ex.log.msgs)
    msgs = execute_ok(ex.log, "live = live.assign(extra=1)")  # a new column: schema changes
    ex.event("schema_update", "schema_update after reassignment", parent=parent_id(msgs[0]))
    state = ex.result("get_state")
    assert state["table_shape"] == {"num_rows": 3, "num_columns": 3}
    assert state["sort_keys"] == [{"column_index": 0, "ascending": False}]

    execute_ok(ex.log, "del live")
    ex.log.wait_for(
        lambda m: msg_type(m) == "comm_close" and comm_id_of(m) == ex.comm_id,
        timeout=TIMEOUT,
        what="comm_close after del",
    )


def test_unsupported_value_closes_the_comm(kernel: KernelHandle, contract: Contract) -> None:
    ex = Explorer(kernel, contract, "gone", MAKE["polars"])
    execute_ok(ex.log, "gone = 42")
    ex.log.wait_for(
        lambda m: msg_type(m) == "comm_close" and comm_id_of(m) == ex.comm_id,
        timeout=TIMEOUT,
        what="comm_close after the variable became an int",
    )


@pytest.mark.crash
def test_a_crashed_table_worker_closes_only_its_comm(
    kernel: KernelHandle, contract: Contract
) -> None:
    first = Explorer(kernel, contract, "one", MAKE["arrow"])
    first.result("get_state")
    before = {p.pid for p in kernel_children(kernel)}
    second = Explorer(kernel, contract, "two", MAKE["arrow"])
    second.result("get_state")
    new = [p for p in kernel_children(kernel) if p.pid not in before and p.is_running()]
    assert len(new) == 1, f"one new worker process per table, got {new}"
    os.kill(new[0].pid, signal.SIGKILL)
    close = second.log.wait_for(
        lambda m: msg_type(m) == "comm_close" and comm_id_of(m) == second.comm_id,
        timeout=TIMEOUT,
        what="comm_close of the crashed table",
    )
    assert close["content"]["data"]["reason"] == "worker_crashed"
    assert first.result("get_state")["table_shape"]["num_rows"] == 4
    assert psutil.pid_exists(kernel.pid)


SLOW_START = """
[workers.data_explorer]
start_method = "spawn"
"""


@pytest.mark.parametrize("with_pane", [False, True], ids=["no pane", "variables pane open"])
def test_changes_made_while_the_worker_starts_reach_the_explorer(
    tmp_path: Any, request: pytest.FixtureRequest, with_pane: bool
) -> None:
    """Cells that run while a table's worker is still starting (spawned: a few hundred ms)
    change the table before the worker's first snapshot: that snapshot is newer than the
    table the comm was opened with, and its change is not lost."""
    with configured_kernels(request.node, tmp_path) as start:
        log = IOPubLog(start(SLOW_START).kc)
        execute_ok(log, "import mpkernel, polars as pl\nslow = pl.DataFrame({'a': [1, 2]})")
        if with_pane:
            open_comm(log, "positron.variables", timeout=TIMEOUT)
        msgs = execute_ok(log, "mpkernel.view(slow, 'slow')")
        (opened,) = [m for m in msgs if msg_type(m) == "comm_open"]
        comm_id = comm_id_of(opened)
        execute_ok(log, "slow = slow.with_columns(b=pl.lit(3))")  # a new column
        log.wait_for(
            lambda m: is_event(m, comm_id) and m["content"]["data"]["method"] == "schema_update",
            timeout=TIMEOUT,
            what="schema_update for the column added while the worker started",
        )


@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_row_labels_and_code_syntax_as_positron_s_kernel_gives_them(
    kernel: KernelHandle, contract: Contract, lib: str
) -> None:
    """A pandas frame has row labels even with a default index (after a sort, each row
    shows its original label), a polars frame none; `convert_to_code` takes the syntax object that
    `suggest_code_syntax` returned, as well as its name."""
    ex = Explorer(kernel, contract, f"labels_{lib}", MAKE[lib])
    assert ex.result("get_state")["has_row_labels"] is (lib == "pandas")
    ex.result("set_sort_columns", {"sort_keys": [{"column_index": 1, "ascending": True}]})
    labels = ex.result(
        "get_row_labels",
        {"selection": {"first_index": 0, "last_index": 3}, "format_options": FORMAT},
    )
    # names a, b, c, d: their original rows; polars rows have no labels
    assert labels == {"row_labels": [["1", "3", "0", "2"]] if lib == "pandas" else []}
    suggested = ex.result("suggest_code_syntax")
    params = {"column_filters": [], "row_filters": [], "sort_keys": [], "code_syntax_name": ""}
    by_name = ex.result(
        "convert_to_code", {**params, "code_syntax_name": suggested["code_syntax_name"]}
    )
    # The object form is outside the contract's schema (a string): not checked against it.
    by_object = ex.rpc("convert_to_code", {**params, "code_syntax_name": suggested}, bad=True)
    assert by_object == {"jsonrpc": "2.0", "result": by_name}
