"""Kernel subshells (JEP 91) through jupyter_client: the control requests, shell requests on a
subshell served while the main shell runs a cell, and what each shell's requests get on IOPub.

Invariants (docs/subshells.md): S1 each request of each shell has one busy first and one
idle last, after its reply and all it caused; S2 a thread's outputs are parented to the
request that thread serves; S3 the kernel's status stays busy while any request runs; S4 a
subshell (and kernel_info) answers while the main shell is busy. "While the main shell is
busy" is made observable with a `Gate`: the main cell blocks on a socket until the test
opens it, so nothing here depends on timing.
"""

from __future__ import annotations

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.frontend import (
    PROCESS_EXIT_TIMEOUT,
    Gate,
    KernelHandle,
    collect_rest,
    collect_until_idle,
    describe,
    execute,
    frontend,
    get_reply,
    kind,
    kinds,
    parent_id,
    process_tree,
    recv,
    recv_for,
    run_ok,
    stream_text,
    sync,
    wait_gone,
)
from tests.integration.comm_client import (
    ECHO,
    IOPubLog,
    assert_bracket,
    comm_id_of,
    msg_type,
    new_comm_id,
    rpc_data,
)
from tests.integration.subshell_client import (
    control,
    create_subshell,
    delete_subshell,
    execute_on,
    list_subshells,
    run_on,
    send_on,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def subshell(kc: BlockingKernelClient) -> str:
    return create_subshell(kc)


def test_create_list_delete_have_ipykernel_shapes(kc: BlockingKernelClient) -> None:
    reply, iopub = control(kc, "create_subshell_request")
    assert kinds(iopub) == ["status:busy", "status:idle"]
    content = reply["content"]
    assert content["status"] == "ok"
    subshell_id = content["subshell_id"]
    assert isinstance(subshell_id, str)
    assert subshell_id
    assert subshell_id in list_subshells(kc)
    assert delete_subshell(kc, subshell_id) == {"status": "ok"}
    assert subshell_id not in list_subshells(kc)
    again = delete_subshell(kc, subshell_id)
    assert again["status"] == "error"
    assert again["ename"] == "UnknownSubshellError"
    assert subshell_id in again["evalue"]


def test_kernel_info_lists_kernel_subshells(kc: BlockingKernelClient) -> None:
    msg_id = kc.kernel_info()
    features = get_reply(kc, msg_id)["content"]["supported_features"]
    collect_until_idle(kc, msg_id)
    assert "kernel subshells" in features


@pytest.mark.invariant("S1", "S2", "S4", "I3")
def test_subshell_runs_in_the_namespace_while_the_main_shell_is_busy(
    kc: BlockingKernelClient, subshell: str
) -> None:
    run_ok(kc, "x = 41")
    with Gate() as gate:
        main = execute(kc, f"print('main before')\n{gate.code}print('main after')")
        gate.wait_blocked()
        reply, iopub = run_on(kc, subshell, "print(x + 1)\nx + 2")
        assert reply["content"]["status"] == "ok", reply["content"]
        assert kinds(iopub) == [
            "status:busy",
            "execute_input",
            "stream:stdout",
            "execute_result",
            "status:idle",
        ], describe(iopub)
        assert stream_text(iopub) == "42\n"
        assert iopub[3]["content"]["data"]["text/plain"] == "43"
        # The main cell is still blocked: its reply has not come, and its idle neither.
        gate.open()
    main_iopub = collect_until_idle(kc, main)
    assert get_reply(kc, main)["content"]["status"] == "ok"
    assert stream_text(main_iopub) == "main before\nmain after\n"
    delete_subshell(kc, subshell)


@pytest.mark.invariant("S4")
def test_kernel_info_is_answered_while_the_main_shell_is_busy(kc: BlockingKernelClient) -> None:
    with Gate() as gate:
        main = execute(kc, gate.code)
        gate.wait_blocked()
        info = kc.kernel_info()
        reply = get_reply(kc, info)
        assert "kernel subshells" in reply["content"]["supported_features"]
        collect_until_idle(kc, info)
        gate.open()
    collect_until_idle(kc, main)
    get_reply(kc, main)


@pytest.mark.invariant("S3")
def test_kernel_stays_busy_until_the_last_request_ends(
    kc: BlockingKernelClient, subshell: str
) -> None:
    log = IOPubLog(kc)
    with Gate() as gate:
        main = execute(kc, gate.code)
        gate.wait_blocked()
        sub = execute_on(kc, subshell, "pass")
        log.wait_idle(sub)
        gate.open()
        log.wait_idle(main)
    # A request after the last idle: everything the kernel published before it is in the log.
    probe = kc.comm_info()
    log.wait_idle(probe)
    get_reply(kc, sub)
    get_reply(kc, main)
    get_reply(kc, probe)
    states = [
        (parent_id(m), m["content"]["execution_state"])
        for m in log.msgs
        if kind(m) == "status:busy" or kind(m) == "status:idle"
    ]
    sub_idle = states.index((sub, "idle"))
    main_idle = states.index((main, "idle"))
    assert states[sub_idle + 1] == (None, "busy"), states
    following = states[main_idle + 1 :]
    assert following == [(None, "idle"), (probe, "busy"), (probe, "idle")], states
    delete_subshell(kc, subshell)


@pytest.mark.invariant("S2", "I3")
def test_errors_and_results_belong_to_their_own_cell(
    kc: BlockingKernelClient, subshell: str
) -> None:
    with Gate() as gate:
        main = execute(kc, f"{gate.code}'main result'")
        gate.wait_blocked()
        reply, iopub = run_on(kc, subshell, "1 / 0")
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "ZeroDivisionError"
        errors = [m for m in iopub if msg_type(m) == "error"]
        assert len(errors) == 1
        gate.open()
    main_iopub = collect_until_idle(kc, main)
    main_reply = get_reply(kc, main)
    assert main_reply["content"]["status"] == "ok", main_reply["content"]
    results = [m for m in main_iopub if msg_type(m) == "execute_result"]
    assert [m["content"]["data"]["text/plain"] for m in results] == ["'main result'"]
    delete_subshell(kc, subshell)


@pytest.mark.invariant("S1", "I3")
def test_unknown_subshell_gets_an_error_reply_and_a_bracket(kc: BlockingKernelClient) -> None:
    msg_id = execute_on(kc, "no-such-subshell", "print('never')")
    reply = get_reply(kc, msg_id)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "UnknownSubshellError"
    assert kinds(collect_until_idle(kc, msg_id)) == ["status:busy", "status:idle"]
    # A comm message has no reply: its bracket is what the client waits for.
    comm = send_on(kc, "no-such-subshell", "comm_msg", {"comm_id": "nope", "data": {}})
    assert kinds(collect_until_idle(kc, comm)) == ["status:busy", "status:idle"]


@pytest.mark.invariant("S1")
def test_requests_of_every_kind_on_a_subshell(kc: BlockingKernelClient, subshell: str) -> None:
    run_ok(kc, "import os as _os_for_subshell")
    for msg_type_, content, check in (
        ("complete_request", {"code": "_os_for_sub", "cursor_pos": 11}, "matches"),
        ("inspect_request", {"code": "len", "cursor_pos": 3, "detail_level": 0}, "found"),
        ("is_complete_request", {"code": "for x in y:"}, "indent"),
        ("history_request", {"hist_access_type": "tail", "n": 2, "output": False}, "history"),
        ("kernel_info_request", {}, "supported_features"),
        ("comm_info_request", {}, "comms"),
    ):
        msg_id = send_on(kc, subshell, msg_type_, content)
        reply = get_reply(kc, msg_id)
        assert reply["content"]["status"] in ("ok", "incomplete"), (msg_type_, reply["content"])
        assert check in reply["content"], (msg_type_, reply["content"])
        assert kinds(collect_until_idle(kc, msg_id)) == ["status:busy", "status:idle"]
    delete_subshell(kc, subshell)


def test_percent_subshell_names_the_subshell(kc: BlockingKernelClient, subshell: str) -> None:
    _, iopub = run_on(kc, subshell, "%subshell")
    text = stream_text(iopub)
    assert f"subshell id: {subshell}" in text
    assert subshell in text.split("subshell list:")[1]
    main = run_ok(kc, "%subshell")
    assert "subshell id: None" in main.stdout()
    delete_subshell(kc, subshell)


@pytest.mark.invariant("S1", "S4", "I3")
def test_worker_comm_on_a_subshell_goes_to_its_worker(
    kc: BlockingKernelClient, subshell: str
) -> None:
    log = IOPubLog(kc)
    comm_id = new_comm_id()
    with Gate() as gate:
        main = execute(kc, gate.code)
        gate.wait_blocked()
        opened = send_on(
            kc, subshell, "comm_open", {"comm_id": comm_id, "target_name": ECHO, "data": {}}
        )
        log.wait_idle(opened)
        assert not [m for m in assert_bracket(log.msgs, opened) if msg_type(m) == "comm_close"]
        rpc = send_on(
            kc, subshell, "comm_msg", {"comm_id": comm_id, "data": rpc_data("echo", {"n": 1})}
        )
        log.wait_idle(rpc)
        inner = assert_bracket(log.msgs, rpc)
        answers = [m for m in inner if msg_type(m) == "comm_msg" and comm_id_of(m) == comm_id]
        assert len(answers) == 1, describe(inner)
        gate.open()
        log.wait_idle(main)
    closed = send_on(kc, subshell, "comm_close", {"comm_id": comm_id, "data": {}})
    log.wait_idle(closed)
    get_reply(kc, main)
    delete_subshell(kc, subshell)


def test_usage_reply_has_ipykernel_fields_and_each_worker(kc: BlockingKernelClient) -> None:
    log = IOPubLog(kc)
    comm_id = new_comm_id()
    opened = send_on(kc, None, "comm_open", {"comm_id": comm_id, "target_name": ECHO, "data": {}})
    log.wait_idle(opened)
    reply, _ = control(kc, "usage_request")
    content = reply["content"]
    for key in ("kernel_cpu", "kernel_memory", "host_virtual_memory", "cpu_count", "pid"):
        assert key in content, content
    assert isinstance(content["hostname"], str)
    workers = {w["name"]: w for w in content["workers"]}
    assert workers, content
    echo = next(w for w in workers.values() if w["pid"] != content["pid"])
    assert echo["pss"] > 0
    assert content["kernel_memory"] >= echo["pss"]
    closed = send_on(kc, None, "comm_close", {"comm_id": comm_id, "data": {}})
    log.wait_idle(closed)


@pytest.mark.invariant("S2", "I8")
def test_input_on_a_subshell_is_parented_to_its_cell(
    kc: BlockingKernelClient, subshell: str
) -> None:
    with Gate() as gate:
        main = execute(kc, gate.code)
        gate.wait_blocked()
        msg_id = execute_on(
            kc, subshell, "print('before'); v = input('q? '); print(v * 2)", allow_stdin=True
        )
        prompt = recv(kc, "stdin", lambda m: m["msg_type"] == "input_request", what="prompt")
        assert parent_id(prompt) == msg_id
        assert prompt["content"]["prompt"] == "q? "
        # I8: what the cell printed before it asked is out before the prompt.
        before = recv_for(kc, "iopub", msg_id, what="busy")
        assert kind(before) == "status:busy"
        kc.input("ab")
        iopub = [before, *collect_rest(kc, msg_id)]
        assert stream_text(iopub) == "before\nabab\n", describe(iopub)
        assert get_reply(kc, msg_id)["content"]["status"] == "ok"
        gate.open()
    collect_until_idle(kc, main)
    get_reply(kc, main)
    delete_subshell(kc, subshell)


@pytest.mark.crash
def test_interrupt_reaches_the_main_cell_only(fresh_kernel: KernelHandle) -> None:
    kc = fresh_kernel.kc
    subshell = create_subshell(kc)
    with Gate() as main_gate, Gate() as sub_gate:
        sub = execute_on(kc, subshell, f"{sub_gate.code}print('sub done')")
        sub_gate.wait_blocked()
        main = execute(
            kc, "import time\nprint('looping', flush=True)\nwhile True: time.sleep(0.01)"
        )
        # Its print says the loop has begun: an interrupt before the cell runs finds no user
        # code to interrupt.
        recv(
            kc,
            "iopub",
            lambda m: parent_id(m) == main and msg_type(m) == "stream",
            what="the main cell's print",
        )
        reply, _ = control(kc, "interrupt_request")
        assert reply["content"]["status"] == "ok"
        assert get_reply(kc, main)["content"]["ename"] == "KeyboardInterrupt"
        sub_gate.open()
        iopub = collect_until_idle(kc, sub)
        assert get_reply(kc, sub)["content"]["status"] == "ok"
        assert stream_text(iopub) == "sub done\n"
        main_gate.open()
    collect_until_idle(kc, main)


def test_shutdown_with_a_subshell_running_a_cell(fresh_kernel: KernelHandle) -> None:
    kc = fresh_kernel.kc
    subshell = create_subshell(kc)
    with Gate() as gate:
        execute_on(kc, subshell, gate.code)
        gate.wait_blocked()
        reply, _ = control(kc, "shutdown_request", {"restart": False})
        assert reply["content"]["status"] == "ok"
        proc = fresh_kernel.process()
        proc.wait(timeout=15)
    fresh_kernel.stopped = True
    fresh_kernel.kc.stop_channels()
    fresh_kernel.km.cleanup_resources()


def test_restart_with_a_subshell_running_a_cell(fresh_kernel: KernelHandle) -> None:
    """km.restart_kernel() while a subshell runs a cell: the old kernel and its children are
    gone, the new one has no subshell, and a request for the old one is refused."""
    kc = fresh_kernel.kc
    subshell = create_subshell(kc)
    old_tree = process_tree(fresh_kernel.pid)
    with Gate() as gate:
        execute_on(kc, subshell, gate.code)
        gate.wait_blocked()
        fresh_kernel.km.restart_kernel()
    assert fresh_kernel.km.provisioner is not None
    fresh_kernel.pid = fresh_kernel.km.provisioner.pid  # type: ignore[attr-defined]
    kc.wait_for_ready(timeout=60)
    sync(kc)
    assert wait_gone(old_tree, PROCESS_EXIT_TIMEOUT) == []
    assert list_subshells(kc) == []
    reply, _ = run_on(kc, subshell, "pass")
    assert reply["content"]["ename"] == "UnknownSubshellError"


@pytest.mark.invariant("S2", "I8")
def test_prompts_of_two_shells_are_answered_each_by_its_own_reply(
    kc: BlockingKernelClient, subshell: str
) -> None:
    """The main shell and a subshell wait on input() at the same time; each input_reply
    (parented to its input_request, as JupyterLab sends it) answers its own prompt."""
    code = "v = input('{0}? ')\nprint('{0}', v)"
    main = execute_on(kc, None, code.format("main"), allow_stdin=True)
    main_prompt = recv(kc, "stdin", lambda m: parent_id(m) == main, what="the main prompt")
    sub = execute_on(kc, subshell, code.format("sub"), allow_stdin=True)
    sub_prompt = recv(kc, "stdin", lambda m: parent_id(m) == sub, what="the subshell prompt")
    for prompt, value in ((sub_prompt, "for-sub"), (main_prompt, "for-main")):
        frontend(kc).answer_input(value, prompt)
    assert stream_text(collect_until_idle(kc, sub)) == "sub for-sub\n"
    assert stream_text(collect_until_idle(kc, main)) == "main for-main\n"
    assert get_reply(kc, sub)["content"]["status"] == "ok"
    assert get_reply(kc, main)["content"]["status"] == "ok"
    delete_subshell(kc, subshell)
