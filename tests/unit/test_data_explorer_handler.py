"""The data explorer's handler on its own (`mpkernel_workers.testing`): a fake comm opened
about a real table, no kernel and no worker process."""

from __future__ import annotations

from typing import Any

import pytest
from mpkernel_workers.api import INVALID_PARAMS, METHOD_NOT_FOUND, RESTORED_STATE, RpcError
from mpkernel_workers.data_explorer.handler import DataExplorerHandler
from mpkernel_workers.testing import FakeComm, call, close_handler, open_handler

pd = pytest.importorskip("pandas")

FORMAT = {
    "large_num_digits": 2,
    "small_num_digits": 4,
    "max_integral_digits": 7,
    "max_value_length": 1000,
}


def table() -> Any:
    return pd.DataFrame({"x": [3.0, 1.0, None, 2.0], "name": ["c", "a", "d", "b"]})


def explorer(subject: Any = None, data: Any = None) -> tuple[DataExplorerHandler, FakeComm]:
    comm = FakeComm(table() if subject is None else subject, target="positron.dataExplorer")
    return open_handler(DataExplorerHandler, comm, data or {"title": "t"}), comm


def values(handler: DataExplorerHandler, column: int) -> list[Any]:
    spec = {"first_index": 0, "last_index": 99}
    got = call(
        handler,
        "get_data_values",
        columns=[{"column_index": column, "spec": spec}],
        format_options=FORMAT,
    )
    column_values: list[Any] = got["columns"][0]
    return column_values


def test_state_schema_and_values() -> None:
    handler, _ = explorer()
    state = call(handler, "get_state")
    assert state["display_name"] == "t"
    assert state["table_shape"] == {"num_rows": 4, "num_columns": 2}
    schema = call(handler, "get_schema", column_indices=[0, 1])
    assert [c["column_name"] for c in schema["columns"]] == ["x", "name"]
    assert values(handler, 1) == ["c", "a", "d", "b"]


def test_sort_and_filter_change_what_is_shown_and_what_the_next_fork_restores() -> None:
    handler, comm = explorer()
    call(handler, "set_sort_columns", sort_keys=[{"column_index": 1, "ascending": True}])
    assert values(handler, 1) == ["a", "b", "c", "d"]
    schema = call(handler, "get_schema", column_indices=[0])["columns"][0]
    keep = {
        "filter_id": "f",
        "filter_type": "compare",
        "column_schema": schema,
        "condition": "and",
        "params": {"op": ">", "value": "1.5"},
    }
    assert call(handler, "set_row_filters", filters=[keep])["selected_num_rows"] == 2
    assert values(handler, 1) == ["b", "c"]
    # The state saved last is what a fresh fork of the kernel takes the comm over with.
    successor, successor_comm = explorer(data={"title": "t", RESTORED_STATE: comm.saved_states[-1]})
    assert values(successor, 1) == ["b", "c"]
    assert successor_comm.event_names() == ["data_update"]


def test_profiles_answer_at_once_and_arrive_as_an_event_from_a_task() -> None:
    handler, comm = explorer()
    request = [{"column_index": 0, "profiles": [{"profile_type": "null_count"}]}]
    reply = call(
        handler, "get_column_profiles", callback_id="cb", profiles=request, format_options=FORMAT
    )
    assert reply == {}
    assert comm.events == []
    assert len(comm.run_tasks()) == 1
    ((method, params),) = comm.events
    assert method == "return_column_profiles"
    assert params["callback_id"] == "cb"
    assert params["profiles"][0]["null_count"] == 1


def test_closing_the_comm_drops_profiles_not_yet_computed() -> None:
    handler, comm = explorer()
    request = [{"column_index": 0, "profiles": [{"profile_type": "null_count"}]}]
    call(handler, "get_column_profiles", callback_id="cb", profiles=request, format_options=FORMAT)
    close_handler(handler)
    comm.run_tasks()
    assert comm.events == []


def test_bad_calls_are_json_rpc_errors() -> None:
    handler, _ = explorer()
    with pytest.raises(RpcError) as raised:
        call(handler, "get_schema", column_indices="all")
    assert raised.value.code == INVALID_PARAMS
    with pytest.raises(RpcError) as raised:
        call(handler, "get_schema")
    assert raised.value.code == INVALID_PARAMS
    with pytest.raises(RpcError) as raised:
        call(handler, "no_such_method")
    assert raised.value.code == METHOD_NOT_FOUND


def test_an_unsupported_subject_closes_the_comm_saying_why() -> None:
    _, comm = explorer(subject=object())
    assert comm.closed
    assert comm.close_data["reason"].startswith("unsupported")
