"""execute_request end to end: message sequences, output ordering, execute options.

Invariants (docs/architecture.md section 2) checked here: I1 (per-sender FIFO), I2 (stream flush),
I3 (request bracket).
"""

from __future__ import annotations

import time
from textwrap import dedent
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.frontend import (
    Gate,
    assert_sequence,
    coalesce_streams,
    collect_rest,
    collect_until_idle,
    describe,
    execute,
    expect_busy,
    get_reply,
    of_type,
    recv_for,
    request,
    run,
    run_ok,
    stream_text,
)

pytestmark = pytest.mark.integration

#: "short deadline" for something that must already be on its way (not a speed target)
ALREADY_SENT = 2.0


def current_count(kc: BlockingKernelClient) -> int:
    """The execution_count the next stored execution would get, minus one."""
    count: int = run_ok(kc, "pass").content["execution_count"]
    return count


# --------------------------------------------------------------------------------------------
# I3: sequences and parenting


@pytest.mark.invariant("I3")
def test_execute_sequence_with_output_and_result(kc: BlockingKernelClient) -> None:
    """I3 request bracket: busy, execute_input, stream, execute_result, idle, all parented to
    the request; the execute_reply arrives and idle is the last IOPub message."""
    code = "print('hello')\n6 * 7"
    msg_id = execute(kc, code)
    iopub = collect_until_idle(kc, msg_id)
    reply = get_reply(kc, msg_id, timeout=ALREADY_SENT)  # sent before idle by the same funnel

    assert_sequence(
        iopub, ["status:busy", "execute_input", "stream:stdout", "execute_result", "status:idle"]
    )
    assert all(m["parent_header"]["msg_id"] == msg_id for m in iopub)
    assert reply["header"]["msg_type"] == "execute_reply"
    assert reply["content"]["status"] == "ok"
    count = reply["content"]["execution_count"]
    (ex_input,) = of_type(iopub, "execute_input")
    (result,) = of_type(iopub, "execute_result")
    assert ex_input["content"] == {"code": code, "execution_count": count}
    assert result["content"]["execution_count"] == count
    assert result["content"]["data"]["text/plain"] == "42"
    assert coalesce_streams(of_type(iopub, "stream"))[0]["content"]["text"] == "hello\n"


@pytest.mark.invariant("I3")
def test_execute_sequence_without_output(kc: BlockingKernelClient) -> None:
    """I3 request bracket: a statement with no output gives exactly busy, execute_input, idle."""
    ex = run_ok(kc, "x_quiet = 1")
    assert_sequence(ex.iopub, ["status:busy", "execute_input", "status:idle"])


@pytest.mark.invariant("I3")
def test_execute_error_sequence(kc: BlockingKernelClient) -> None:
    """I3 request bracket: an exception gives busy, execute_input, error, idle and an error
    reply with the same ename/evalue."""
    ex = run(kc, "1 / 0")
    assert_sequence(ex.iopub, ["status:busy", "execute_input", "error", "status:idle"])
    (err,) = of_type(ex.iopub, "error")
    assert err["content"]["ename"] == "ZeroDivisionError"
    assert ex.content["status"] == "error"
    assert ex.content["ename"] == "ZeroDivisionError"
    assert ex.content["evalue"] == err["content"]["evalue"]
    assert isinstance(ex.content["traceback"], list)
    assert all(isinstance(line, str) for line in err["content"]["traceback"])
    assert all(m["parent_header"]["msg_id"] == ex.msg_id for m in ex.iopub)


def test_execution_count_increments(kc: BlockingKernelClient) -> None:
    """Each stored execution gets the next execution_count (reply and execute_input agree)."""
    first = run_ok(kc, "1")
    second = run_ok(kc, "2")
    assert second.content["execution_count"] == first.content["execution_count"] + 1
    (ex_input,) = of_type(second.iopub, "execute_input")
    assert ex_input["content"]["execution_count"] == second.content["execution_count"]


# --------------------------------------------------------------------------------------------
# I1 / I2: ordering of outputs from the main thread


@pytest.mark.invariant("I1", "I2")
@pytest.mark.mpkernel_only
def test_stdout_stderr_interleaving_is_preserved(kc: BlockingKernelClient) -> None:
    """I1 per-sender FIFO + I2 one stream buffer: stdout, stderr, stdout stay in write order."""
    ex = run_ok(kc, "import sys\nprint('a')\nprint('b', file=sys.stderr)\nprint('c')")
    streams = coalesce_streams(of_type(ex.iopub, "stream"))
    got = [(m["content"]["name"], m["content"]["text"]) for m in streams]
    assert got == [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c\n")], describe(ex.iopub)


@pytest.mark.invariant("I1", "I2")
@pytest.mark.mpkernel_only
def test_many_alternating_writes_keep_order(kc: BlockingKernelClient) -> None:
    """I1 + I2: 50 alternating stdout/stderr writes arrive in exactly the order written."""
    code = dedent(
        """
        import sys
        for i in range(50):
            (sys.stdout if i % 2 == 0 else sys.stderr).write(f"{i};")
        """
    )
    ex = run_ok(kc, code)
    streams = coalesce_streams(of_type(ex.iopub, "stream"))
    got = [(m["content"]["name"], m["content"]["text"]) for m in streams]
    expected = [("stdout" if i % 2 == 0 else "stderr", f"{i};") for i in range(50)]
    assert got == expected


@pytest.mark.invariant("I2")
def test_print_display_print_order(kc: BlockingKernelClient) -> None:
    """I2 stream flush before any non-stream item: print, display, print arrive in order."""
    code = dedent(
        """
        from IPython.display import HTML, display
        print('one')
        display(HTML('<b>two</b>'))
        print('three')
        """
    )
    ex = run_ok(kc, code)
    assert_sequence(
        ex.iopub,
        [
            "status:busy",
            "execute_input",
            "stream:stdout",
            "display_data",
            "stream:stdout",
            "status:idle",
        ],
    )
    streams = of_type(coalesce_streams(ex.iopub), "stream")
    assert [m["content"]["text"] for m in streams] == ["one\n", "three\n"]


@pytest.mark.invariant("I2")
def test_stream_comes_before_execute_result(kc: BlockingKernelClient) -> None:
    """I2 stream flush: a print made before the cell's result is published before it."""
    ex = run_ok(kc, "print('first')\n'second'")
    assert_sequence(
        ex.iopub, ["status:busy", "execute_input", "stream:stdout", "execute_result", "status:idle"]
    )


@pytest.mark.invariant("I2")
def test_stream_comes_before_error(kc: BlockingKernelClient) -> None:
    """I2 stream flush: output printed before an exception precedes the error message."""
    ex = run(kc, "print('before the error')\nraise ValueError('boom')")
    assert_sequence(
        ex.iopub, ["status:busy", "execute_input", "stream:stdout", "error", "status:idle"]
    )
    assert ex.content["ename"] == "ValueError"


#: fd-level capture races are intermittent; each fd test repeats so that one loss shows
FD_REPEATS = 20


@pytest.mark.invariant("I7")
@pytest.mark.mpkernel_only
def test_os_system_output_reaches_frontend_before_idle(kc: BlockingKernelClient) -> None:
    """I7 nothing lost (fd-level capture): a child process writing to fd 1 shows up as a stdout
    stream inside the request's busy/idle, every time."""
    for i in range(FD_REPEATS):
        ex = run_ok(kc, f"import os\n_ = os.system('echo from-c-{i}')")
        assert ex.stdout() == f"from-c-{i}\n", f"run {i}:\n{describe(ex.iopub)}"


@pytest.mark.invariant("I7")
@pytest.mark.mpkernel_only
def test_os_write_fd1_reaches_frontend_before_idle(kc: BlockingKernelClient) -> None:
    """I7 nothing lost (fd-level capture): os.write(1, ...) shows up as stdout before idle,
    every time."""
    for i in range(FD_REPEATS):
        ex = run_ok(kc, f"import os\n_ = os.write(1, b'raw-{i}\\n')")
        assert ex.stdout() == f"raw-{i}\n", f"run {i}:\n{describe(ex.iopub)}"


@pytest.mark.invariant("I1")
@pytest.mark.mpkernel_only
def test_fd_writes_keep_order_with_prints(kc: BlockingKernelClient) -> None:
    """I1 per-sender FIFO: print, os.write(1), print from one cell arrive in that order."""
    for i in range(FD_REPEATS):
        code = f"import os\nprint('p1')\n_ = os.write(1, b'fd-{i}\\n')\nprint('p2')"
        ex = run_ok(kc, code)
        assert ex.stdout() == f"p1\nfd-{i}\np2\n", f"run {i}:\n{describe(ex.iopub)}"


@pytest.mark.invariant("I2")
def test_print_is_flushed_while_cell_still_runs(kc: BlockingKernelClient) -> None:
    """I2 stream flush on a short timer: a print reaches the frontend while the cell is still
    running, within 1 s of busy. The cell prints, then blocks until this test has seen the
    print (on a socket the test opens afterwards), so nothing but the timer can flush it."""
    with Gate() as gate:
        msg_id = execute(kc, "print('tick')\n" + gate.code + "print('tock')")
        expect_busy(kc, msg_id)
        deadline = time.monotonic() + 1.0
        gate.wait_blocked()
        seen: list[dict[str, Any]] = []
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"'tick' not received within 1 s of busy:\n{describe(seen)}"
            m = recv_for(kc, "iopub", msg_id, timeout=remaining, what="the 'tick' stream")
            seen.append(m)
            assert m["header"]["msg_type"] in ("execute_input", "stream"), describe(seen)
            if m["header"]["msg_type"] == "stream":
                assert m["content"] == {"name": "stdout", "text": "tick\n"}
                break
        gate.open()
        rest = collect_rest(kc, msg_id)
    assert stream_text(rest) == "tock\n", describe(rest)
    assert get_reply(kc, msg_id)["content"]["status"] == "ok"


# --------------------------------------------------------------------------------------------
# execute options


def test_silent_execution(kc: BlockingKernelClient) -> None:
    """silent=True: no execute_input, no execute_result, execution_count unchanged."""
    before = current_count(kc)
    ex = run_ok(kc, "6 * 7", silent=True)
    assert_sequence(ex.iopub, ["status:busy", "status:idle"])
    after = run_ok(kc, "pass")
    assert after.content["execution_count"] == before + 1


def test_silent_execution_still_runs_code(kc: BlockingKernelClient) -> None:
    """silent=True runs the code (its side effects are visible later)."""
    run_ok(kc, "silent_value = 123", silent=True)
    ex = run_ok(kc, "silent_value")
    assert of_type(ex.iopub, "execute_result")[0]["content"]["data"]["text/plain"] == "123"


def test_store_history_false(kc: BlockingKernelClient) -> None:
    """store_history=False: the count does not advance and the code is not in the history."""
    before = current_count(kc)
    marker = "'not-stored-in-history'"
    ex = run_ok(kc, marker, store_history=False)
    assert of_type(ex.iopub, "execute_result"), describe(ex.iopub)
    after = run_ok(kc, "pass")
    assert after.content["execution_count"] == before + 1
    reply, _ = request(
        kc, "history_request", {"hist_access_type": "tail", "n": 10, "raw": True, "output": False}
    )
    history = reply["content"]["history"]
    assert all(entry[2] != marker for entry in history), history


def test_user_expressions(kc: BlockingKernelClient) -> None:
    """user_expressions: each is evaluated after the code; errors are reported per expression."""
    ex = run_ok(kc, "ue_base = 40", user_expressions={"good": "ue_base + 2", "bad": "1 / 0"})
    exprs = ex.content["user_expressions"]
    assert exprs["good"]["status"] == "ok"
    assert exprs["good"]["data"]["text/plain"] == "42"
    assert exprs["bad"]["status"] == "error"
    assert exprs["bad"]["ename"] == "ZeroDivisionError"


def test_input_without_allow_stdin_raises(kc: BlockingKernelClient) -> None:
    """allow_stdin=False: input() raises StdinNotImplementedError at once (no input_request)."""
    ex = run(kc, "input('never asked> ')", allow_stdin=False)
    assert ex.content["status"] == "error"
    (err,) = of_type(ex.iopub, "error")
    assert err["content"]["ename"] == "StdinNotImplementedError"


@pytest.mark.invariant("I3")
def test_stop_on_error_aborts_queued_requests(kc: BlockingKernelClient) -> None:
    """I3 request bracket: with stop_on_error, a request queued behind a failing one gets an
    execute_reply with status "aborted", inside its own busy/idle, and does not run."""
    first = execute(kc, "import time; time.sleep(0.5)")  # keeps the next two queued
    failing = execute(kc, "raise RuntimeError('stop here')")
    queued = execute(kc, "aborted_side_effect = 1\nprint('must not run')")

    run1 = collect_until_idle(kc, first)
    assert get_reply(kc, first)["content"]["status"] == "ok"
    run2 = collect_until_idle(kc, failing)
    assert get_reply(kc, failing)["content"]["status"] == "error"
    assert of_type(run2, "error")
    run3 = collect_until_idle(kc, queued)
    reply3 = get_reply(kc, queued)
    assert reply3["content"]["status"] == "aborted", reply3["content"]
    assert_sequence(run3, ["status:busy", "status:idle"])
    assert of_type(run1, "error") == []

    check = run_ok(kc, "'aborted_side_effect' in globals()")
    assert of_type(check.iopub, "execute_result")[0]["content"]["data"]["text/plain"] == "False"


def test_stop_on_error_false_runs_next(kc: BlockingKernelClient) -> None:
    """stop_on_error=False: the request after a failing one still runs."""
    first = execute(kc, "import time; time.sleep(0.5)")
    failing = execute(kc, "raise RuntimeError('keep going')", stop_on_error=False)
    after = execute(kc, "print('ran')")
    collect_until_idle(kc, first)
    assert get_reply(kc, first)["content"]["status"] == "ok"
    collect_until_idle(kc, failing)
    assert get_reply(kc, failing)["content"]["status"] == "error"
    run3 = collect_until_idle(kc, after)
    assert get_reply(kc, after)["content"]["status"] == "ok"
    assert "ran\n" in "".join(m["content"]["text"] for m in of_type(run3, "stream"))


def test_kernel_answers_after_abort(kc: BlockingKernelClient) -> None:
    """After an aborted queue the kernel takes new requests normally (abort is not sticky)."""
    failing = execute(kc, "raise RuntimeError('x')")
    collect_until_idle(kc, failing)
    get_reply(kc, failing)
    ex = run_ok(kc, "print('fine')")
    assert ex.stdout() == "fine\n"
