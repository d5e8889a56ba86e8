"""Worker crashes, limits, restart policies and orphans, with real signals.

Invariants (docs/architecture.md section 2) checked here: I6 (crash: drain, error reply per pending
RPC, comm_close per comm, then the idles owed; kernel and other workers unaffected; restart per
policy), I5 (nothing on a comm after its comm_close), I3 (the idle owed by a crashed worker still
comes), and docs/architecture.md section 1 (workers ignore SIGINT and never outlive the kernel).

The I6 sequences run over both request shapes (``RPC_SHAPES``): without a JSON-RPC ``id``, as
Positron sends them, the crash error is found by its parent header and carries no id; with
one, it echoes it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.frontend import (
    KernelHandle,
    describe,
    is_kernel_status,
    kind,
    parent_id,
    recv,
    stop_kernel,
    wait_gone,
)
from tests.integration.comm_client import (
    ECHO,
    ECHO_HANDLER,
    INTERNAL_ERROR,
    RPC_SHAPES,
    IOPubLog,
    RpcRequest,
    assert_bracket,
    assert_id_echoed,
    assert_parent_is,
    call,
    close_comm,
    comm_id_of,
    comm_info,
    configured_kernels,
    execute_ok,
    health,
    is_event,
    is_reply,
    is_response_to,
    kernel_children,
    msg_type,
    open_comm,
    process_gone,
    refused_open,
    rpc_id_for,
    send_open,
    send_rpc,
    status_of,
    worker_status,
)

pytestmark = [pytest.mark.integration, pytest.mark.crash, pytest.mark.mpkernel_only]

ECHO2 = "test.echo2"


def config(echo: str = 'restart = "never"') -> str:
    """echo configured by ``echo``; a second echo worker on another target as a bystander."""
    return (
        f"[workers.echo]\n{echo}\n\n"
        f'[workers.echo2]\ntarget = "{ECHO2}"\nhandler = "{ECHO_HANDLER}"\nrestart = "never"\n'
    )


@pytest.fixture
def start(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], KernelHandle]]:
    with configured_kernels(request.node, tmp_path) as factory:
        yield factory


def assert_crash_sequence(
    log: IOPubLog,
    rpcs: list[tuple[RpcRequest, dict[str, Any], str]],
    comms: list[str],
    cause: str,
) -> None:
    """I6 order for the messages from the first RPC's busy on: the JSON-RPC error replies of
    ``rpcs`` (request, header, comm_id), each parented to its request and echoing its id
    (none for a request without id), then one comm_close per comm in ``comms`` (parentless,
    reason worker_crashed), then the idles."""
    first = log.index(log.parented(rpcs[0][1]["msg_id"])[0])
    window = log.msgs[first:]
    ids = {h["msg_id"] for _, h, _ in rpcs}
    errors = [m for m in window if msg_type(m) == "comm_msg"]
    closes = [m for m in window if msg_type(m) == "comm_close"]
    idles = [m for m in window if kind(m) == "status:idle" and parent_id(m) in ids]
    busies = [m for m in window if kind(m) == "status:busy" and parent_id(m) in ids]
    # The kernel's own status (S3: still busy while pipelined requests run) is no request's.
    others = [
        m for m in window if m not in errors + closes + idles + busies and not is_kernel_status(m)
    ]
    assert not others, f"unexpected messages in the crash window:\n{describe(others)}"
    assert len(errors) == len(rpcs), f"error replies:\n{describe(window)}"
    for request, header, comm_id in rpcs:
        found = [m for m in errors if is_response_to(m, request, comm_id)]
        assert len(found) == 1, f"replies to {request!r} in the crash window:\n{describe(window)}"
        (reply,) = found
        assert_parent_is(reply, header)
        assert_id_echoed(reply, request)
        assert "error" in reply["content"]["data"], (
            f"{request!r} was answered, not failed, by the crash:\n{describe(window)}"
        )
        err = reply["content"]["data"]["error"]
        assert err["code"] == INTERNAL_ERROR, err
        assert "worker echo crashed" in err["message"], err
        assert cause in err["message"], err
        assert_bracket(log.msgs, header["msg_id"])
    assert sorted(comm_id_of(m) or "" for m in closes) == sorted(comms), describe(closes)
    for close in closes:
        assert parent_id(close) is None
        data = close["content"]["data"]
        assert data["reason"] == "worker_crashed", data
        assert data["worker"] == "echo", data
        assert cause in data["exit"], data
    last_error = max(log.index(m) for m in errors)
    first_close, last_close = min(map(log.index, closes)), max(map(log.index, closes))
    first_idle = min(map(log.index, idles))
    order = f"I6 order is error replies, comm_closes, idles:\n{describe(window)}"
    assert last_error < first_close, order
    assert last_close < first_idle, order


def assert_kernel_and_bystander_fine(log: IOPubLog, bystander: str, bystander_pid: int) -> None:
    """I6: the kernel executes code and the other worker serves its comm (same process)."""
    msgs = execute_ok(log, "print(6 * 7)")
    assert "42" in "".join(m["content"].get("text", "") for m in msgs)
    assert call(log, bystander, "pid").result == bystander_pid
    assert call(log, bystander, "echo", {"after": "crash"}).result == {"after": "crash"}


CRASHES = {
    # how -> (echo worker settings, RPC method and params, words naming the cause)
    "exit": ("", "crash", {"how": "exit"}, "exited with code 3"),
    "segfault": ("", "crash", {"how": "segfault"}, "killed by SIGSEGV"),
    "self-kill": ("", "crash", {"how": "kill"}, "killed by SIGKILL"),
    "memory": (
        'memory_limit = "300MiB"',
        "crash",
        {"how": "oom", "max_mb": 1536},
        "memory limit exceeded",
    ),
    "cpu": ("cpu_limit_s = 1", "burn", {"seconds": 60}, "CPU limit exceeded"),
    "hung": ("rpc_timeout_s = 1", "sleep", {"seconds": 60}, "rpc_timeout_s"),
}


@pytest.mark.invariant("I6", "I5", "I3")
@pytest.mark.parametrize("shape", RPC_SHAPES)
@pytest.mark.parametrize("how", list(CRASHES))
def test_crash_during_rpc(start: Callable[[str], KernelHandle], how: str, shape: str) -> None:
    """I6 crash (exit, segfault, SIGKILL of itself, memory limit, CPU limit, RPC hung past
    rpc_timeout_s), during an RPC:
    error reply parented to the RPC naming the cause, comm_close (worker_crashed) for each of
    the worker's two comms, then the idle; the process is gone; the kernel executes code and
    the echo2 worker keeps serving; with restart = "never" a new echo comm is refused
    (worker_unavailable); health counts the crash; comm_info drops the closed comms.
    The crashing RPC is sent with and without a JSON-RPC id (``shape``)."""
    settings, method, params, cause = CRASHES[how]
    handle = start(config(f'restart = "never"\n{settings}'))
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    a2 = open_comm(log, ECHO)
    b = open_comm(log, ECHO2)
    pid = call(log, a, "pid").result
    b_pid = call(log, b, "pid").result
    assert pid != b_pid

    request, header = send_rpc(handle.kc, a, method, params, rpc_id_for(shape))
    log.wait_idle(header["msg_id"], timeout=30)
    assert_crash_sequence(log, [(request, header, a)], [a, a2], cause)
    assert process_gone(pid), f"crashed worker {pid} still running"

    assert_kernel_and_bystander_fine(log, b, b_pid)
    refused = refused_open(log, ECHO)
    assert refused["content"]["data"]["reason"] == "worker_unavailable", refused["content"]
    status = health(log)
    echo = worker_status(status, "echo")
    assert echo["crashes"] == 1, echo
    assert echo["state"] == "disabled", echo
    assert cause in echo["last_exit_reason"], echo
    assert worker_status(status, "echo2")["pid"] == b_pid
    info = comm_info(log)
    assert a not in info
    assert a2 not in info
    assert info[b] == {"target_name": ECHO2}


@pytest.mark.invariant("I6", "I3")
@pytest.mark.parametrize("shapes", [(s, s) for s in RPC_SHAPES] + [RPC_SHAPES], ids="+".join)
def test_sigkill_from_outside_fails_every_pending_rpc(
    start: Callable[[str], KernelHandle], shapes: tuple[str, str]
) -> None:
    """I6 crash by SIGKILL from outside while two RPCs are pending on two comms of the
    worker (two long sleeps: pending whether the worker serves them one after the other or
    side by side, architecture section 4): both get a -32603 error parented to their own request,
    then both comms get comm_close, then both idles come. The two requests are sent both without id,
    both with, or one of each (``shapes``)."""
    handle = start(config())
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    a2 = open_comm(log, ECHO)
    b = open_comm(log, ECHO2)
    pid = call(log, a, "pid").result
    b_pid = call(log, b, "pid").result
    pending = [
        (*send_rpc(handle.kc, comm_id, "sleep", {"seconds": 60}, rpc_id_for(shape)), comm_id)
        for comm_id, shape in zip((a, a2), shapes, strict=True)
    ]
    for _, h, _ in pending:
        log.wait_for(
            status_of(h["msg_id"], "busy"), what="the RPC's busy (the kernel has forwarded it)"
        )
    os.kill(pid, signal.SIGKILL)
    log.wait_idle(*(h["msg_id"] for _, h, _ in pending), timeout=15)
    assert_crash_sequence(log, pending, [a, a2], "SIGKILL")
    assert process_gone(pid)
    assert_kernel_and_bystander_fine(log, b, b_pid)


@pytest.mark.invariant("I6", "I5", "I1")
@pytest.mark.parametrize("shape", RPC_SHAPES)
def test_crash_after_event_burst_drains_first(
    start: Callable[[str], KernelHandle], shape: str
) -> None:
    """I6 drain + I5 + I1: emit(3000) then crash(exit), pipelined on one comm. The events
    that reach the frontend are an in-order prefix 0..k, all before the comm_close; each
    RPC gets exactly one reply (the emit's result, or an error if the worker died before it
    was out), the crash RPC an error; nothing is published on the comm after comm_close.
    Both RPCs are sent with or without a JSON-RPC id (``shape``)."""
    handle = start(config())
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    emit, emit_header = send_rpc(handle.kc, a, "emit", {"count": 3000}, rpc_id_for(shape))
    crash, crash_header = send_rpc(handle.kc, a, "crash", {"how": "exit"}, rpc_id_for(shape))
    log.wait_idle(emit_header["msg_id"], crash_header["msg_id"], timeout=30)
    assert_bracket(log.msgs, emit_header["msg_id"])
    assert_bracket(log.msgs, crash_header["msg_id"])
    on_comm = log.on_comm(a)
    events = [m for m in on_comm if is_event(m, a)]
    indices = [e["content"]["data"]["params"]["index"] for e in events]
    assert indices == list(range(len(indices))), "events lost or reordered in the middle"
    (emit_reply,) = [m for m in on_comm if is_reply(m, emit, a)]
    (crash_reply,) = [m for m in on_comm if is_reply(m, crash, a)]
    assert_parent_is(emit_reply, emit_header)
    assert_parent_is(crash_reply, crash_header)
    if "result" in emit_reply["content"]["data"]:
        assert len(indices) == 3000, "the emit RPC succeeded but events are missing"
    assert crash_reply["content"]["data"]["error"]["code"] == INTERNAL_ERROR
    closes = [m for m in on_comm if msg_type(m) == "comm_close"]
    assert len(closes) == 1
    assert on_comm[-1] is closes[0], f"I5: messages after comm_close:\n{describe(on_comm[-5:])}"


def test_raise_keeps_worker(start: Callable[[str], KernelHandle]) -> None:
    """I6 does not apply to a handler exception: crash(how='raise') is a -32603 error, the
    comm stays open, the worker process and its crash count are unchanged."""
    handle = start(config())
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    pid = call(log, a, "pid").result
    err = call(log, a, "crash", {"how": "raise"}).error
    assert err["code"] == INTERNAL_ERROR
    assert "crash requested" in err["message"]
    assert call(log, a, "pid").result == pid
    echo = worker_status(health(log), "echo")
    assert (echo["crashes"], echo["starts"], echo["pid"]) == (0, 1, pid)
    assert echo["open_comms"] == 1


# --------------------------------------------------------------------------------------------
# restart policies


def crash_once(log: IOPubLog, comm_id: str) -> None:
    request, header = send_rpc(log.kc, comm_id, "crash", {"how": "exit"})
    log.wait_idle(header["msg_id"])
    (reply,) = [m for m in log.msgs if is_reply(m, request, comm_id)]
    assert reply["content"]["data"]["error"]["code"] == INTERNAL_ERROR


@pytest.mark.invariant("I6")
def test_restart_on_failure(start: Callable[[str], KernelHandle]) -> None:
    """I6 restart policy on-failure: after a crash the echo worker is restarted; a new comm
    is served by a new process; health counts two starts and one crash."""
    handle = start(config('restart = "on-failure"'))
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    pid = call(log, a, "pid").result
    crash_once(log, a)
    assert process_gone(pid)
    b = open_comm(log, ECHO)
    new_pid = call(log, b, "pid").result
    assert new_pid != pid
    assert psutil.Process(new_pid).ppid() != 0
    echo = worker_status(health(log), "echo")
    assert (echo["pid"], echo["starts"], echo["crashes"]) == (new_pid, 2, 1), echo
    assert echo["open_comms"] == 1, echo


@pytest.mark.invariant("I6", "I5")
def test_restart_never(start: Callable[[str], KernelHandle]) -> None:
    """I6 restart policy never: after a crash no new echo process is started and a new comm
    on the target is refused with comm_close {reason: worker_unavailable}, whose message
    names the policy; a backend open from user code gets comm_open then comm_close."""
    handle = start(config('restart = "never"'))
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    pid = call(log, a, "pid").result
    crash_once(log, a)
    assert process_gone(pid)
    for _ in range(2):
        data = refused_open(log, ECHO)["content"]["data"]
        assert data["reason"] == "worker_unavailable", data
        assert "never" in data["message"], data
    # A backend open (user code) is refused the same way, after its comm_open (I5).
    msgs = execute_ok(log, "import mpkernel.comms\ncid = mpkernel.comms.open('mpkernel.echo')")
    lifecycle = [m for m in msgs if msg_type(m) in ("comm_open", "comm_close")]
    assert [msg_type(m) for m in lifecycle] == ["comm_open", "comm_close"], describe(msgs)
    assert comm_id_of(lifecycle[0]) == comm_id_of(lifecycle[1])
    assert lifecycle[1]["content"]["data"]["reason"] == "worker_unavailable"
    echo = worker_status(health(log), "echo")
    assert (echo["pid"], echo["starts"], echo["crashes"]) == (None, 1, 1), echo


@pytest.mark.invariant("I6")
def test_max_restarts_stops_a_crash_loop(start: Callable[[str], KernelHandle]) -> None:
    """I6 restart policy: with max_restarts = 2 in a 60 s window, the third crash disables
    the worker: a new comm is refused (worker_unavailable, naming max_restarts), health says
    disabled with 3 crashes and 3 starts."""
    handle = start(config('restart = "on-failure"\nmax_restarts = 2\nrestart_window_s = 60'))
    log = IOPubLog(handle.kc)
    pids = []
    for _ in range(3):
        a = open_comm(log, ECHO)
        pids.append(call(log, a, "pid").result)
        crash_once(log, a)
    assert len(set(pids)) == 3, pids
    assert all(process_gone(p) for p in pids)
    data = refused_open(log, ECHO)["content"]["data"]
    assert data["reason"] == "worker_unavailable", data
    assert "max_restarts" in data["message"], data
    echo = worker_status(health(log), "echo")
    assert (echo["state"], echo["crashes"], echo["starts"]) == ("disabled", 3, 3), echo


@pytest.mark.invariant("I6")
def test_persistent_comm_survives_restart(start: Callable[[str], KernelHandle]) -> None:
    """I6 + architecture section 4: a persistent comm whose worker restarts is reopened on the new
    worker (echo is restorable): the crashing RPC gets its error, no comm_close is published for the
    comm, and the same comm is then served by a new process."""
    handle = start(config('restart = "on-failure"\npersistent = true'))
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    pid = call(log, a, "pid").result
    _, header = send_rpc(handle.kc, a, "crash", {"how": "exit"})
    log.wait_idle(header["msg_id"])
    inner = assert_bracket(log.msgs, header["msg_id"])
    assert [msg_type(m) for m in inner] == ["comm_msg"], describe(inner)
    assert inner[0]["content"]["data"]["error"]["code"] == INTERNAL_ERROR
    assert not [m for m in log.on_comm(a) if msg_type(m) == "comm_close"]
    assert process_gone(pid)
    new_pid = call(log, a, "pid").result
    assert new_pid != pid
    assert a in comm_info(log, ECHO)


@pytest.mark.invariant("I6")
@pytest.mark.parametrize("restart", ["on-failure", "always"])
def test_an_exit_with_code_0_is_restarted_only_by_always(
    start: Callable[[str], KernelHandle], restart: str
) -> None:
    """I6 restart policy always: a worker that ends by itself with code 0 (nobody asked it
    to) fails its pending RPC as any unexpected exit does; `always` restarts it and the
    persistent comm moves to the new process, `on-failure` (not a failure) closes the comm
    and leaves the worker stopped, not disabled: the next comm starts a new one."""
    handle = start(config(f'restart = "{restart}"\npersistent = true'))
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    pid = call(log, a, "pid").result
    _, header = send_rpc(handle.kc, a, "crash", {"how": "exit0"})
    log.wait_idle(header["msg_id"])
    inner = assert_bracket(log.msgs, header["msg_id"])
    assert inner[0]["content"]["data"]["error"]["code"] == INTERNAL_ERROR, describe(inner)
    assert process_gone(pid)
    closes = [m for m in log.on_comm(a) if msg_type(m) == "comm_close"]
    if restart == "always":
        assert not closes, describe(closes)
        assert call(log, a, "pid").result != pid
        echo = worker_status(health(log), "echo")
        assert (echo["starts"], echo["restarts"], echo["crashes"]) == (2, 1, 1), echo
    else:
        assert [m["content"]["data"]["reason"] for m in closes] == ["worker_crashed"]
        assert worker_status(health(log), "echo")["state"] == "stopped"
        b = open_comm(log, ECHO)
        assert call(log, b, "pid").result != pid
        echo = worker_status(health(log), "echo")
        assert (echo["starts"], echo["restarts"], echo["crashes"]) == (2, 0, 1), echo


# --------------------------------------------------------------------------------------------
# signals and orphans (architecture section 1)


@pytest.mark.parametrize("shape", RPC_SHAPES)
def test_workers_ignore_sigint(start: Callable[[str], KernelHandle], shape: str) -> None:
    """architecture section 1: SIGINT to the kernel's process group (what jupyter_client's interrupt
    does) interrupts the running cell but not the workers: a sleep RPC in flight is answered with
    its result by the same process (with the request's id, or none if it sent none)."""
    handle = start(config())
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    pid = call(log, a, "pid").result
    assert os.getpgid(pid) == os.getpgid(handle.pid), "the worker left the kernel's group"
    exec_id: str = handle.kc.execute("import time\ntime.sleep(60)")
    log.wait_for(
        lambda m: parent_id(m) == exec_id and msg_type(m) == "execute_input",
        what="the cell's execute_input",
    )
    request, header = send_rpc(handle.kc, a, "sleep", {"seconds": 1}, rpc_id_for(shape))
    log.wait_for(status_of(header["msg_id"], "busy"), what="the RPC's busy")
    os.killpg(os.getpgid(handle.pid), signal.SIGINT)
    log.wait_idle(exec_id, header["msg_id"])
    reply = recv(handle.kc, "shell", lambda m: parent_id(m) == exec_id, what="execute_reply")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    (rpc_reply,) = [m for m in log.msgs if is_response_to(m, request, a)]
    expected: dict[str, Any] = {"jsonrpc": "2.0", "result": {"slept": 1.0}}
    if request.rpc_id is not None:
        expected["id"] = request.rpc_id
    assert rpc_reply["content"]["data"] == expected
    assert call(log, a, "pid").result == pid


def kill_kernel_and_wait_for_children(handle: KernelHandle, workers: set[int]) -> list[str]:
    """SIGKILL the kernel; returns a description of the processes it started that are still
    alive 10 s later (killed here so that nothing outlives the test)."""
    children = kernel_children(handle)
    assert workers <= {p.pid for p in children}, (workers, children)
    kernel = handle.km.provisioner.process  # type: ignore[union-attr]
    assert kernel.pid == handle.pid
    try:
        os.kill(handle.pid, signal.SIGKILL)
        kernel.wait(timeout=10)
        alive = wait_gone(children, 10)
        survivors = []
        for p in alive:
            with contextlib.suppress(psutil.Error):
                role = "worker" if p.pid in workers else " ".join(p.cmdline())[:80]
                survivors.append(f"pid {p.pid} ({role})")
        return survivors
    finally:
        for p in children:
            with contextlib.suppress(psutil.Error):
                p.kill()
        wait_gone(children, 10)
        stop_kernel(handle)


def test_no_orphans_after_kernel_sigkill(start: Callable[[str], KernelHandle]) -> None:
    """architecture section 1: workers exit when the kernel process dies (liveness pipe): SIGKILL
    the kernel with two idle workers running; every process it started (workers, forkserver,
    resource tracker) is gone within 10 s."""
    handle = start(config())
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    b = open_comm(log, ECHO2)
    workers = {call(log, a, "pid").result, call(log, b, "pid").result}
    survivors = kill_kernel_and_wait_for_children(handle, workers)
    assert not survivors, f"orphans after the kernel died: {survivors}"


def test_no_orphans_after_kernel_sigkill_while_a_worker_is_busy(
    start: Callable[[str], KernelHandle],
) -> None:
    """architecture section 1 ("no orphan survives the kernel"): SIGKILL the kernel while a worker
    is inside a long RPC (sleep 600 s). The busy worker must still exit within 10 s: a handler
    that runs (or hangs) must not keep the worker, the forkserver and the resource tracker
    alive after the kernel is gone."""
    handle = start(config())
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    b = open_comm(log, ECHO2)
    workers = {call(log, a, "pid").result, call(log, b, "pid").result}
    _, header = send_rpc(handle.kc, a, "sleep", {"seconds": 600})
    log.wait_for(status_of(header["msg_id"], "busy"), what="the RPC's busy")
    survivors = kill_kernel_and_wait_for_children(handle, workers)
    assert not survivors, f"orphans after the kernel died: {survivors}"


# --------------------------------------------------------------------------------------------
# edge cases


def test_worker_that_cannot_start_refuses_the_open(start: Callable[[str], KernelHandle]) -> None:
    """architecture section 3: comm_open for a target whose worker cannot start (its handler class
    does not exist) gets a comm_close for that comm id, with a reason, between the request's busy
    and idle; the kernel keeps executing and other workers keep serving."""
    handle = start(
        config()
        + '\n[workers.broken]\ntarget = "test.broken"\n'
        + 'handler = "mpkernel_workers.echo:NoSuchHandler"\nrestart = "never"\n'
    )
    log = IOPubLog(handle.kc)
    b = open_comm(log, ECHO2)
    b_pid = call(log, b, "pid").result
    comm_id, header = send_open(handle.kc, "test.broken")
    log.wait_idle(header["msg_id"], timeout=30)
    assert_bracket(log.msgs, header["msg_id"])
    busy, *_, idle = log.parented(header["msg_id"])
    closes = [m for m in log.on_comm(comm_id) if msg_type(m) == "comm_close"]
    assert len(closes) == 1, describe(log.msgs[log.index(busy) :])
    assert log.index(busy) < log.index(closes[0]) < log.index(idle)
    assert closes[0]["content"]["data"].get("reason"), closes[0]["content"]
    assert comm_id not in comm_info(log)
    assert_kernel_and_bystander_fine(log, b, b_pid)


@pytest.mark.invariant("I6")
def test_duplicate_rpc_ids_each_answered_on_crash(start: Callable[[str], KernelHandle]) -> None:
    """I6 ("for each pending RPC ... a JSON-RPC error reply, parented to its request") and
    architecture section 3 ("an RPC never goes unanswered"): two requests pending on one comm that
    happen to carry the same JSON-RPC id (a frontend bug, or two independent callers) are two
    requests with two headers; when the worker is killed each gets its own error reply,
    parented to its own request."""
    handle = start(config())
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    pid = call(log, a, "pid").result
    first_request, first = send_rpc(handle.kc, a, "sleep", {"seconds": 60}, rpc_id="same")
    second_request, second = send_rpc(handle.kc, a, "sleep", {"seconds": 60}, rpc_id="same")
    for h in (first, second):
        log.wait_for(status_of(h["msg_id"], "busy"), what="the RPC's busy")
    os.kill(pid, signal.SIGKILL)
    log.wait_idle(first["msg_id"], second["msg_id"], timeout=15)
    for request, h in ((first_request, first), (second_request, second)):
        inner = assert_bracket(log.msgs, h["msg_id"])
        errors = [m for m in inner if is_reply(m, request, a)]
        assert len(errors) == 1, f"request {h['msg_id']} got {len(errors)} replies"
        assert errors[0]["content"]["data"]["error"]["code"] == INTERNAL_ERROR


@pytest.mark.invariant("I6")
@pytest.mark.parametrize("shape", RPC_SHAPES)
def test_per_comm_processes_isolate_crashes(
    start: Callable[[str], KernelHandle], shape: str
) -> None:
    """architecture section 4 isolation + I6: with processes = "per-comm", each comm has its own
    worker process; a crash closes only the crashed comm (error reply, one comm_close, idle), the
    other comm keeps its process; a frontend close stops that comm's process cleanly. The
    crashing RPC is sent with or without a JSON-RPC id (``shape``)."""
    handle = start(config('processes = "per-comm"\nrestart = "on-failure"'))
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    b = open_comm(log, ECHO)
    a_pid, b_pid = call(log, a, "pid").result, call(log, b, "pid").result
    assert a_pid != b_pid
    request, header = send_rpc(handle.kc, a, "crash", {"how": "exit"}, rpc_id_for(shape))
    log.wait_idle(header["msg_id"])
    assert_crash_sequence(log, [(request, header, a)], [a], "exited with code 3")
    assert not [m for m in log.on_comm(b) if msg_type(m) == "comm_close"]
    assert call(log, b, "pid").result == b_pid
    close_comm(log, b)
    assert process_gone(b_pid), "a per-comm worker outlived its comm"
    assert comm_info(log, ECHO) == {}


@pytest.mark.invariant("I3", "I6")
def test_requests_routed_to_a_dying_worker_never_wedge_the_kernel(
    start: Callable[[str], KernelHandle],
) -> None:
    """I3 + I6: RPCs sent while the worker is being killed, so that some are routed to it
    after it died but before its exit is processed, must not block the io thread: every
    RPC gets its idle and at most one reply (a result or the crash error; none once the
    comm is closed, I5), the crash errors do arrive, and the kernel answers afterwards.
    Requests alternate between no id (Positron's shape) and an id."""
    handle = start(config())
    log = IOPubLog(handle.kc)
    a = open_comm(log, ECHO)
    b = open_comm(log, ECHO2)
    pid = call(log, a, "pid").result
    b_pid = call(log, b, "pid").result
    # The worker is inside a long RPC, so everything sent below is pending when it dies.
    sleep, sleep_header = send_rpc(handle.kc, a, "sleep", {"seconds": 60})
    log.wait_for(status_of(sleep_header["msg_id"], "busy"), what="the sleep RPC's busy")

    def echo(i: int) -> tuple[RpcRequest, dict[str, Any]]:
        return send_rpc(handle.kc, a, "echo", {"i": i}, rpc_id_for(RPC_SHAPES[i % 2]))

    sent = [(sleep, sleep_header)]
    sent += [echo(i) for i in range(500)]
    os.kill(pid, signal.SIGKILL)
    sent += [echo(i) for i in range(500, 600)]
    log.wait_idle(*(h["msg_id"] for _, h in sent), timeout=60)
    errors = 0
    for request, header in sent:
        replies = [m for m in log.parented(header["msg_id"]) if is_response_to(m, request, a)]
        assert len(replies) <= 1, replies
        if replies:
            assert_id_echoed(replies[0], request)
            data = replies[0]["content"]["data"]
            assert ("result" in data) != ("error" in data), data
            errors += "error" in data
    assert errors >= 1, "the pending RPCs were not failed by the crash"
    assert process_gone(pid)
    assert_kernel_and_bystander_fine(log, b, b_pid)
