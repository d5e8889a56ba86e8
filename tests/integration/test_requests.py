"""Shell and control requests other than execute: complete, inspect, history, is_complete,
kernel_info (shell and control), comm_info.

Invariant (docs/architecture.md section 2) checked for each: I3 (one busy before, one idle after the
reply).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.frontend import assert_sequence, describe, of_type, request, run_ok

pytestmark = pytest.mark.integration


def bracketed(iopub: list[dict[str, Any]], msg_id: str) -> None:
    """I3: a non-execute request publishes exactly busy then idle, both parented to it."""
    assert_sequence(iopub, ["status:busy", "status:idle"])
    assert all(m["parent_header"]["msg_id"] == msg_id for m in iopub)


# --------------------------------------------------------------------------------------------
# complete / inspect


@pytest.mark.invariant("I3")
def test_complete_builtin(kc: BlockingKernelClient) -> None:
    """I3 + complete_request: 'zi' completes to zip; the cursor range covers the typed name."""
    reply, iopub = request(kc, "complete_request", {"code": "zi", "cursor_pos": 2})
    bracketed(iopub, reply["parent_header"]["msg_id"])
    content = reply["content"]
    assert content["status"] == "ok"
    assert "zip" in content["matches"]
    assert (content["cursor_start"], content["cursor_end"]) == (0, 2)
    assert isinstance(content["metadata"], dict)


def test_complete_user_variable_and_attribute(kc: BlockingKernelClient) -> None:
    """complete_request sees the user namespace and completes attributes."""
    run_ok(kc, "completion_probe_value = 'text'")
    reply, _ = request(kc, "complete_request", {"code": "completion_probe_v", "cursor_pos": 18})
    assert "completion_probe_value" in reply["content"]["matches"]
    code = "completion_probe_value.upp"
    reply, _ = request(kc, "complete_request", {"code": code, "cursor_pos": len(code)})
    content = reply["content"]
    replaced = [code[: content["cursor_start"]] + m for m in content["matches"]]
    assert "completion_probe_value.upper" in replaced, content


def test_complete_mid_line(kc: BlockingKernelClient) -> None:
    """complete_request completes at cursor_pos, not at the end of the code."""
    code = "x = zi + 1"
    reply, _ = request(kc, "complete_request", {"code": code, "cursor_pos": 6})
    content = reply["content"]
    assert "zip" in content["matches"]
    assert content["cursor_end"] == 6


@pytest.mark.invariant("I3")
def test_inspect_found(kc: BlockingKernelClient) -> None:
    """I3 + inspect_request: a known name is found with a non-empty text/plain."""
    reply, iopub = request(
        kc, "inspect_request", {"code": "zip", "cursor_pos": 3, "detail_level": 0}
    )
    bracketed(iopub, reply["parent_header"]["msg_id"])
    content = reply["content"]
    assert content["status"] == "ok"
    assert content["found"] is True
    assert "zip" in content["data"]["text/plain"]


def test_inspect_user_object(kc: BlockingKernelClient) -> None:
    """inspect_request shows a user-defined function's docstring."""
    run_ok(kc, "def inspect_probe():\n    '''Docstring of the probe.'''")
    reply, _ = request(
        kc, "inspect_request", {"code": "inspect_probe", "cursor_pos": 5, "detail_level": 0}
    )
    assert reply["content"]["found"] is True
    assert "Docstring of the probe." in reply["content"]["data"]["text/plain"]


def test_inspect_not_found(kc: BlockingKernelClient) -> None:
    """inspect_request for an unknown name: status ok, found false."""
    reply, _ = request(
        kc,
        "inspect_request",
        {"code": "no_such_name_anywhere", "cursor_pos": 5, "detail_level": 0},
    )
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["found"] is False


# --------------------------------------------------------------------------------------------
# history


def history(kc: BlockingKernelClient, **content: Any) -> list[Any]:
    content.setdefault("raw", True)
    content.setdefault("output", False)
    reply, iopub = request(kc, "history_request", content)
    bracketed(iopub, reply["parent_header"]["msg_id"])
    assert reply["content"]["status"] == "ok", reply["content"]
    entries: list[Any] = reply["content"]["history"]
    return entries


def test_history_tail(kc: BlockingKernelClient) -> None:
    """history_request tail: the last n stored inputs, oldest first, with session and line."""
    codes = ["hist_tail_a = 1", "hist_tail_b = 2", "hist_tail_c = 3"]
    for code in codes:
        run_ok(kc, code)
    entries = history(kc, hist_access_type="tail", n=3)
    assert [e[2] for e in entries] == codes
    sessions = {e[0] for e in entries}
    assert len(sessions) == 1
    lines = [e[1] for e in entries]
    assert lines == [lines[0], lines[0] + 1, lines[0] + 2]


def test_history_reaches_its_file_soon_after_the_cell(kc: BlockingKernelClient) -> None:
    """A cell's input is in IPython's SQLite file about a second after it ran, written by
    IPython's saving thread after the cell (not during it), with no history request or
    shutdown to make it so; the file holds each input once."""
    path = run_ok(kc, "print(get_ipython().history_manager.hist_file, end='')").stdout()
    marker = f"hist_file_marker = {uuid.uuid4().int}"
    run_ok(kc, marker)
    deadline = time.monotonic() + 10  # DELAY_S is 1 s; the rest is a loaded machine's margin
    while True:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            try:
                rows = db.execute("SELECT source_raw FROM history WHERE source_raw = ?", (marker,))
                found = len(rows.fetchall())
            except sqlite3.OperationalError:  # no table before IPython's first write
                found = 0
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert found == 1, f"{marker!r} is not in {path} ({found} rows)"


def test_history_tail_with_output(kc: BlockingKernelClient) -> None:
    """history_request tail with output=True: entries are (input, output) pairs."""
    run_ok(kc, "'hist-output-probe'")
    entries = history(kc, hist_access_type="tail", n=1, output=True)
    assert len(entries) == 1
    source, _output = entries[0][2]
    assert source == "'hist-output-probe'"


def test_history_range(kc: BlockingKernelClient) -> None:
    """history_request range: the stored inputs of one session between start and stop."""
    run_ok(kc, "hist_range_a = 1")
    run_ok(kc, "hist_range_b = 2")
    (last,) = history(kc, hist_access_type="tail", n=1)
    session, line = last[0], last[1]
    entries = history(kc, hist_access_type="range", session=session, start=line - 1, stop=line + 1)
    assert [e[2] for e in entries] == ["hist_range_a = 1", "hist_range_b = 2"]
    assert [e[1] for e in entries] == [line - 1, line]


@pytest.mark.mpkernel_only
def test_history_range_reports_the_real_session_number(kc: BlockingKernelClient) -> None:
    """history_request range names the session by the number tail gave for it (IPython's
    history manager says 0 for "the current session"; jupyter_kernel_test's range check
    needs the real number, ipykernel fails it)."""
    run_ok(kc, "hist_range_a = 1")
    run_ok(kc, "hist_range_b = 2")
    (last,) = history(kc, hist_access_type="tail", n=1)
    session, line = last[0], last[1]
    entries = history(kc, hist_access_type="range", session=session, start=line - 1, stop=line + 1)
    assert [e[2] for e in entries] == ["hist_range_a = 1", "hist_range_b = 2"]
    assert [e[1] for e in entries] == [line - 1, line]
    assert all(e[0] == session for e in entries)


def test_history_search(kc: BlockingKernelClient) -> None:
    """history_request search: glob pattern over stored inputs; unique and n are honoured."""
    for _ in range(2):
        run_ok(kc, "hist_search_probe = 10")
    run_ok(kc, "hist_search_probe = 20")
    entries = history(kc, hist_access_type="search", pattern="hist_search_probe*")
    assert [e[2] for e in entries].count("hist_search_probe = 10") == 2
    assert "hist_search_probe = 20" in [e[2] for e in entries]
    unique = history(kc, hist_access_type="search", pattern="hist_search_probe*", unique=True)
    assert sorted(e[2] for e in unique) == ["hist_search_probe = 10", "hist_search_probe = 20"]
    last = history(kc, hist_access_type="search", pattern="hist_search_probe*", n=1)
    assert [e[2] for e in last] == ["hist_search_probe = 20"]


# --------------------------------------------------------------------------------------------
# is_complete


@pytest.mark.invariant("I3")
@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("1 + 1", "complete"),
        ("print('hello')", "complete"),
        ("def f(x):\n    return x\n\n", "complete"),
        ("for i in range(3):", "incomplete"),
        ("print('''hello", "incomplete"),
        ("x = (1,\n", "incomplete"),
        ("import = 7q", "invalid"),
        ("1 +* 2", "invalid"),
    ],
)
def test_is_complete(kc: BlockingKernelClient, code: str, status: str) -> None:
    """I3 + is_complete_request: complete / incomplete (with an indent) / invalid."""
    reply, iopub = request(kc, "is_complete_request", {"code": code})
    bracketed(iopub, reply["parent_header"]["msg_id"])
    assert reply["content"]["status"] == status, reply["content"]
    if status == "incomplete":
        assert isinstance(reply["content"]["indent"], str)


def test_is_complete_indent_after_block_opener(kc: BlockingKernelClient) -> None:
    """An incomplete block opener asks for a four-space indent."""
    reply, _ = request(kc, "is_complete_request", {"code": "if True:"})
    assert reply["content"] == {"status": "incomplete", "indent": "    "}


# --------------------------------------------------------------------------------------------
# kernel_info, comm_info


def check_kernel_info(content: dict[str, Any]) -> None:
    assert content["status"] == "ok"
    assert isinstance(content["protocol_version"], str)
    assert isinstance(content["implementation"], str)
    assert isinstance(content["implementation_version"], str)
    assert isinstance(content["banner"], str)
    assert isinstance(content["help_links"], list)
    for link in content["help_links"]:
        assert set(link) >= {"text", "url"}
    info = content["language_info"]
    assert info["name"] == "python"
    assert info["file_extension"] == ".py"
    assert info["mimetype"] == "text/x-python"
    assert info["version"].count(".") == 2


@pytest.mark.invariant("I3")
@pytest.mark.parametrize("channel", ["shell", "control"])
def test_kernel_info(kc: BlockingKernelClient, channel: str) -> None:
    """I3 + kernel_info_request on shell and on control (allowed since 5.5): a full reply
    inside busy/idle."""
    reply, iopub = request(kc, "kernel_info_request", channel=channel)  # type: ignore[arg-type]
    bracketed(iopub, reply["parent_header"]["msg_id"])
    check_kernel_info(reply["content"])


@pytest.mark.mpkernel_only
@pytest.mark.parametrize("channel", ["shell", "control"])
def test_kernel_info_identifies_mpkernel(kc: BlockingKernelClient, channel: str) -> None:
    """kernel_info_reply: protocol 5.5, implementation mpkernel, language python."""
    reply, _ = request(kc, "kernel_info_request", channel=channel)  # type: ignore[arg-type]
    content = reply["content"]
    assert content["protocol_version"] == "5.5"
    assert content["implementation"] == "mpkernel"
    assert content["language_info"]["name"] == "python"
    assert isinstance(content["help_links"], list)
    assert isinstance(content.get("supported_features", []), list)


@pytest.mark.invariant("I3")
def test_comm_info_empty(kc: BlockingKernelClient) -> None:
    """I3 + comm_info_request: status ok and a dict of comms (none opened by this test)."""
    reply, iopub = request(kc, "comm_info_request", {})
    bracketed(iopub, reply["parent_header"]["msg_id"])
    assert reply["content"]["status"] == "ok"
    assert isinstance(reply["content"]["comms"], dict)
    reply, _ = request(kc, "comm_info_request", {"target_name": "no.such.target"})
    assert reply["content"] == {"status": "ok", "comms": {}}


@pytest.mark.invariant("I3")
def test_comm_info_lists_comm_opened_by_code(kc: BlockingKernelClient) -> None:
    """A comm created by user code (comm package) is announced with comm_open inside the
    execute's busy/idle, listed by comm_info (filtered by target), and gone after close."""
    ex = run_ok(kc, "import comm\nprobe_comm = comm.create_comm(target_name='tests.probe')")
    (opened,) = of_type(ex.iopub, "comm_open")
    comm_id = opened["content"]["comm_id"]
    assert opened["content"]["target_name"] == "tests.probe"

    reply, _ = request(kc, "comm_info_request", {"target_name": "tests.probe"})
    assert reply["content"]["comms"] == {comm_id: {"target_name": "tests.probe"}}
    reply, _ = request(kc, "comm_info_request", {})
    assert reply["content"]["comms"][comm_id] == {"target_name": "tests.probe"}

    ex = run_ok(kc, "probe_comm.close()")
    (closed,) = of_type(ex.iopub, "comm_close")
    assert closed["content"]["comm_id"] == comm_id, describe(ex.iopub)
    reply, _ = request(kc, "comm_info_request", {"target_name": "tests.probe"})
    assert reply["content"]["comms"] == {}
