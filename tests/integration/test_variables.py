"""Positron's variables pane (`positron.variables`) through a real kernel.

The frontend side is what Positron does: open the comm (empty data), read the `refresh`,
then the `update` events after executions; requests without a JSON-RPC `id`, replies
found by parent header. Every message the kernel sends on a variables comm is validated
against the contract (`test_variables_contract`; skipped, saying why, when the contract
folder is absent). The data explorer is the echo handler here, so `view` can be checked to
open a comm about the right object (echo's `subject` RPC).

Invariants (docs/architecture.md section 2) checked: I3 (each request's idle after its reply; the
`update` of an execution inside that execution's busy/idle), I4 (replies parented to their
requests).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.frontend import KernelHandle, describe, get_reply, parent_id
from tests.integration.comm_client import (
    INVALID_PARAMS,
    IOPubLog,
    RpcCall,
    call,
    comm_id_of,
    configured_kernels,
    execute_ok,
    is_event,
    is_reply,
    msg_type,
    open_comm,
    send_open,
    send_rpc,
)
from tests.integration.subshell_client import create_subshell, delete_subshell, execute_on
from tests.integration.test_variables_contract import MISSING, ContractChecker, checker

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

VARIABLES = "positron.variables"
TIMEOUT = 60.0
CONFIG = """
[workers.data_explorer]
enabled = true
handler = "mpkernel_workers.echo:EchoHandler"
"""


def key(name: Any) -> str:
    """The access key of a variable or of an item (compact JSON of type and data)."""
    return json.dumps({"type": type(name).__name__, "data": name}, separators=(",", ":"))


#: every pane opened in this module, for the contract check at its end
PANES: list[Pane] = []


class Pane:
    """One frontend's variables pane: its comm, its events, its view of the namespace."""

    def __init__(self, log: IOPubLog) -> None:
        self.log = log
        self.comm_id = open_comm(log, VARIABLES, timeout=TIMEOUT)
        PANES.append(self)
        self.methods: dict[str, str] = {}  # request msg_id -> method
        self.seen = 0  # events read so far
        self.version = 0
        self.names: dict[str, dict[str, Any]] = {}
        first = self.next_event()
        assert first["method"] == "refresh", first

    def events(self) -> list[dict[str, Any]]:
        return [m["content"]["data"] for m in self.log.msgs if is_event(m, self.comm_id)]

    def next_event(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next event on this comm (a `refresh` or `update`), applied to the view."""
        seen = self.seen

        def nth(m: Any) -> bool:
            return is_event(m, self.comm_id) and len(self.events()) > seen

        self.log.wait_for(nth, timeout=timeout, what=f"event #{seen + 1} on the variables comm")
        data = self.events()[seen]
        self.seen += 1
        params = data["params"]
        assert params["version"] > self.version, f"version went back: {params} after {self.version}"
        self.version = params["version"]
        if data["method"] == "refresh":
            self.names = {v["display_name"]: v for v in params["variables"]}
        else:
            for v in params["assigned"] + params["unevaluated"]:
                self.names[v["display_name"]] = v
            for k in params["removed"]:
                (name,) = [n for n, v in self.names.items() if v["access_key"] == k]
                del self.names[name]
        return data

    def update_after(self, code: str, *, in_bracket: bool = True) -> dict[str, Any]:
        """Run `code`; its update (asserted inside the execution's busy/idle, I3, unless
        `in_bracket` is False: a first use of a library in the worker, whose import does not
        fit the post-execute budget)."""
        msgs = execute_ok(self.log, code, timeout=TIMEOUT)
        event = self.next_event()
        assert event["method"] == "update", event
        mine = [m for m in msgs if comm_id_of(m) == self.comm_id]
        assert mine or not in_bracket, (
            f"the update for {code!r} is not inside its busy/idle (I3):\n{describe(msgs)}"
        )
        return event["params"]

    def call(self, method: str, params: Any = None, timeout: float = TIMEOUT) -> RpcCall:
        done = call(self.log, self.comm_id, method, params, timeout=timeout)
        self.methods[done.header["msg_id"]] = method
        return done

    def rpc(self, method: str, **params: Any) -> Any:
        return self.call(method, params or None).result


def validate_log(contract: ContractChecker, log: IOPubLog, panes: list[Pane]) -> int:
    """Every comm_msg the kernel sent on a variables comm, against the contract."""
    methods = {k: v for p in panes for k, v in p.methods.items()}
    comms = {p.comm_id for p in panes}
    for m in log.msgs:
        if msg_type(m) != "comm_msg" or comm_id_of(m) not in comms:
            continue
        data = m["content"]["data"]
        method = None if "method" in data else methods.get(parent_id(m) or "", "?")
        contract.check(data, method)
    return contract.checked


@pytest.fixture(scope="module")
def kernel(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[KernelHandle]:
    with configured_kernels(request.node, tmp_path_factory.mktemp("variables")) as start:
        yield start(CONFIG)


@pytest.fixture(scope="module")
def log(kernel: KernelHandle) -> IOPubLog:
    return IOPubLog(kernel.kc)


@pytest.fixture(scope="module")
def pane(log: IOPubLog) -> Pane:
    execute_ok(log, "import numpy as np\nimport pandas as pd\nimport time")
    p = Pane(log)
    # The worker imports pandas on its first frame: that update may follow the idle.
    p.update_after("warm = pd.DataFrame({'w': [1]})", in_bracket=False)
    return p


def test_refresh_on_open_lists_variables_without_hidden_names(log: IOPubLog) -> None:
    execute_ok(log, "before_open = 1\n_hidden_out = 2\n41")
    p = Pane(log)
    first = p.events()[0]["params"]
    names = {v["display_name"] for v in first["variables"]}
    assert "before_open" in names
    assert first["length"] == len(first["variables"])
    assert not {"_", "_1", "In", "Out", "np", "pd"} & names, names
    (var,) = [v for v in first["variables"] if v["display_name"] == "before_open"]
    assert var["access_key"] == key("before_open")
    assert var["display_value"] == "1"


@pytest.mark.invariant("I3")
def test_assignment_mutation_and_deletion_become_updates(pane: Pane) -> None:
    params = pane.update_after("x = 1\ny = [1, 2]")
    assert {v["display_name"] for v in params["assigned"]} == {"x", "y"}
    assert params["removed"] == []
    params = pane.update_after("y.append(3)")
    assert [v["display_name"] for v in params["assigned"]] == ["y"]
    assert "3" in params["assigned"][0]["display_value"]
    params = pane.update_after("del x")
    assert params["removed"] == [key("x")]
    assert "x" not in pane.names
    # Nothing changed: no update (the next event is the one after `z = 1`).
    execute_ok(pane.log, "pass")
    params = pane.update_after("z = 1")
    assert [v["display_name"] for v in params["assigned"]] == ["z"]


def test_in_place_mutation_of_a_frame_is_an_update(pane: Pane) -> None:
    pane.update_after("frame = pd.DataFrame({'a': [1, 2], 'b': ['u', 'v']})")
    params = pane.update_after("frame.loc[0, 'a'] = 99")
    (var,) = params["assigned"]
    assert var["display_name"] == "frame"
    assert var["kind"] == "table"
    assert var["has_viewer"] is True


def test_list_matches_the_updates(pane: Pane) -> None:
    pane.update_after("listed = {'k': 1}")
    result = pane.rpc("list")
    names = {v["display_name"] for v in result["variables"]}
    assert names == set(pane.names)
    assert result["length"] == len(names)


def test_inspect_nested_paths(pane: Pane) -> None:
    pane.update_after("nest = {'a': [10, {'deep': 'x'}], 'b': 2}")
    top = pane.rpc("inspect", path=[key("nest")])
    assert [c["display_name"] for c in top["children"]] == ["a", "b"]
    assert top["length"] == 2
    a_key = top["children"][0]["access_key"]
    inner = pane.rpc("inspect", path=[key("nest"), a_key])
    assert inner["children"][0]["display_value"] == "10"
    deep = pane.rpc("inspect", path=[key("nest"), a_key, inner["children"][1]["access_key"]])
    assert [c["display_value"] for c in deep["children"]] == ["'x'"]
    # The same keys work again after an unrelated update (stable access keys).
    pane.update_after("unrelated = 1")
    again = pane.rpc("inspect", path=[key("nest"), a_key])
    assert again == inner


def test_an_inspected_child_shows_its_content_as_a_variable_would(pane: Pane) -> None:
    """A child's row has a variable's display budget: a container two levels down is
    shown, not cut to `[…]` (as Positron's pane shows it)."""
    pane.update_after("outer = {'a': {'c': [1, 2]}, 'n': 1}")
    (a, _) = pane.rpc("inspect", path=[key("outer")])["children"]
    assert (a["display_value"], a["is_truncated"]) == ("{'c': [1, 2]}", False)


def test_inspecting_a_leaf_gives_the_value_itself(pane: Pane) -> None:
    """A value without children answers `inspect` with one nameless row: itself."""
    pane.update_after("leaf = 42\nempty = []")
    (row,) = pane.rpc("inspect", path=[key("leaf")])["children"]
    assert (row["display_name"], row["display_value"], row["kind"]) == ("", "42", "number")
    assert row["access_key"] == ""  # nothing below it to reach
    assert pane.rpc("inspect", path=[key("empty")])["length"] == 1


def test_removed_names_come_sorted(pane: Pane) -> None:
    """`removed` in an update and the `delete` reply (access keys, as Positron's kernel
    answers) come sorted by name, whatever order the pane learnt them in."""
    pane.update_after("zz_gone = 1\naa_gone = 2\nmm_gone = 3")
    params = pane.update_after("del zz_gone, mm_gone, aa_gone")
    assert params["removed"] == [key("aa_gone"), key("mm_gone"), key("zz_gone")]
    pane.update_after("zz_deleted = 1\naa_deleted = 2")
    assert pane.rpc("delete", names=["zz_deleted", "aa_deleted"]) == [
        key("aa_deleted"),
        key("zz_deleted"),
    ]
    pane.next_event()


def test_inspect_errors_are_jsonrpc_errors(pane: Pane) -> None:
    error = pane.call("inspect", {"path": [key("no_such_name")]}).error
    assert error["code"] == INVALID_PARAMS
    assert "no_such_name" in error["message"]
    assert pane.call("inspect", {}).error["code"] == INVALID_PARAMS


def test_clipboard_format_plain_and_html(pane: Pane) -> None:
    pane.update_after("clip = {'a': [1, 2]}\nclip_frame = pd.DataFrame({'c': [1.5]})")
    plain = pane.rpc("clipboard_format", path=[key("clip")], format="text/plain")
    assert plain == {"content": "{'a': [1, 2]}"}
    nested = pane.rpc("clipboard_format", path=[key("clip"), key("a")], format="text/plain")
    assert nested == {"content": "[1, 2]"}
    html = pane.rpc("clipboard_format", path=[key("clip_frame")], format="text/html")
    assert "<table" in html["content"]


def test_view_opens_a_data_explorer_about_the_frame(pane: Pane) -> None:
    pane.update_after("viewed = pd.DataFrame({'v': range(5)})\nnot_a_table = 3")
    comm_id = pane.rpc("view", path=[key("viewed")])
    assert isinstance(comm_id, str)
    opens = [
        m
        for m in pane.log.msgs
        if msg_type(m) == "comm_open" and m["content"]["comm_id"] == comm_id
    ]
    assert len(opens) == 1, describe(pane.log.msgs[-20:])
    assert opens[0]["content"]["target_name"] == "positron.dataExplorer"
    assert opens[0]["content"]["data"]["title"] == "viewed"
    subject = call(pane.log, comm_id, "subject").result
    assert subject["type"] == "DataFrame"
    error = pane.call("view", {"path": [key("not_a_table")]}).error
    assert error["code"] == INVALID_PARAMS
    assert "no viewer" in error["message"]


def test_query_table_summary(pane: Pane) -> None:
    pane.update_after("summary_frame = pd.DataFrame({'n': [1, 2, 3], 's': ['a', 'b', 'c']})")
    result = pane.rpc(
        "query_table_summary", path=[key("summary_frame")], query_types=["summary_stats"]
    )
    assert (result["num_rows"], result["num_columns"]) == (3, 2)
    assert len(result["column_schemas"]) == 2


def test_delete_replies_with_the_deleted_names_then_updates(pane: Pane) -> None:
    pane.update_after("gone1 = 1\ngone2 = 2")
    assert pane.rpc("delete", names=["gone2", "gone1", "never_was"]) == [
        key("gone1"),
        key("gone2"),
    ]
    event = pane.next_event()
    assert event["method"] == "update"
    assert sorted(event["params"]["removed"]) == [key("gone1"), key("gone2")]


def test_list_and_inspect_answer_while_a_cell_sleeps(pane: Pane) -> None:
    pane.update_after("during = [1, 2, 3]")
    msg_id = pane.log.kc.execute("time.sleep(5)")
    t0 = time.monotonic()
    request, _ = send_rpc(pane.log.kc, pane.comm_id, "inspect", {"path": [key("during")]})
    pane.methods[request.msg_id] = "inspect"
    reply = pane.log.wait_for(
        lambda m: is_reply(m, request, pane.comm_id), timeout=TIMEOUT, what="inspect reply"
    )
    elapsed = time.monotonic() - t0
    assert msg_id not in pane.log.idle, "the cell finished before the inspect was answered"
    assert elapsed < 4.0, f"inspect took {elapsed:.2f} s while the cell ran"
    assert len(reply["content"]["data"]["result"]["children"]) == 3
    pane.log.wait_idle(msg_id, timeout=TIMEOUT)


def test_a_request_sent_with_the_open_waits_for_the_first_snapshot(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A frontend that sends `inspect` right behind its `comm_open` (before the refresh)
    on a kernel whose variables worker has not started yet gets the answer, not an error:
    the request reaches the worker before the kernel's first snapshot does."""
    with configured_kernels(request.node, tmp_path) as start:
        log = IOPubLog(start(CONFIG).kc)
        # A frame big enough that its copy to shared memory outlasts the request's trip.
        execute_ok(log, "import numpy as np\nbig = np.zeros((2_000_000, 8))\nearly = [1, 2]")
        comm_id, _ = send_open(log.kc, VARIABLES)
        rpc, header = send_rpc(log.kc, comm_id, "inspect", {"path": [key("early")]})
        reply = log.wait_for(
            lambda m: is_reply(m, rpc, comm_id), timeout=TIMEOUT, what="the inspect reply"
        )
        data = reply["content"]["data"]
        assert "result" in data, data
        assert [c["display_value"] for c in data["result"]["children"]] == ["1", "2"]
        log.wait_idle(header["msg_id"], timeout=TIMEOUT)


def test_clear_refreshes_the_pane(pane: Pane) -> None:
    pane.update_after("to_clear = 1")
    pane.rpc("clear", include_hidden_objects=False)
    event = pane.next_event()
    assert event["method"] == "refresh"
    assert event["params"]["variables"] == []
    assert pane.names == {}


def test_two_frontends_get_their_own_comm_and_updates(log: IOPubLog, pane: Pane) -> None:
    other = Pane(log)
    assert other.comm_id != pane.comm_id
    pane.update_after("shared_name = 5")
    event = other.next_event()
    assert event["method"] == "update"
    assert [v["display_name"] for v in event["params"]["assigned"]] == ["shared_name"]


def test_every_message_on_the_comm_follows_the_contract(log: IOPubLog, pane: Pane) -> None:
    contract = checker()
    if contract is None:
        pytest.skip(MISSING)
    count = validate_log(contract, log, PANES)
    assert count > 10, f"only {count} messages validated"


def test_a_subshell_cell_updates_the_pane(pane: Pane) -> None:
    """A cell on a subshell changes the namespace: the pane hears of it, from a snapshot the
    main thread builds between its own requests (an event after the cell: docs/subshells.md)."""
    kc = pane.log.kc
    subshell = create_subshell(kc)
    msg_id = execute_on(kc, subshell, "from_subshell = 7")
    pane.log.wait_idle(msg_id)
    assert get_reply(kc, msg_id)["content"]["status"] == "ok"
    event = pane.next_event()
    assert event["method"] == "update", event
    assert [v["display_name"] for v in event["params"]["assigned"]] == ["from_subshell"]
    delete_subshell(kc, subshell)
