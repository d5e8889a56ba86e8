"""Interrupts, by signal (interrupt_mode "signal": SIGINT to the kernel's process group) and by
message (interrupt_mode "message": interrupt_request on control).

Invariants (docs/architecture.md section 2) checked here: I3 (the interrupted request still gets its
error, reply and idle; the interrupt_request on control gets its own reply inside busy/idle).
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import KERNEL_NAME, KERNEL_NAME_MESSAGE_INTERRUPT
from tests.frontend import (
    KernelHandle,
    assert_sequence,
    collect_until_idle,
    describe,
    execute,
    get_reply,
    of_type,
    parent_id,
    recv,
    recv_for,
    request,
    run_ok,
)

pytestmark = [pytest.mark.integration, pytest.mark.crash]

MODES = {"signal": KERNEL_NAME, "message": KERNEL_NAME_MESSAGE_INTERRUPT}


def interrupt(handle: KernelHandle, mode: str) -> None:
    """Interrupt the kernel the way jupyter_client would for ``mode``.

    Message mode goes through this test's own client so that the interrupt_reply and the
    busy/idle of the interrupt_request can be checked.
    """
    if mode == "signal":
        handle.km.interrupt_kernel()
        return
    reply, iopub = request(handle.kc, "interrupt_request", {}, channel="control", timeout=10)
    assert reply["header"]["msg_type"] == "interrupt_reply"
    assert reply["content"]["status"] == "ok"
    assert_sequence(iopub, ["status:busy", "status:idle"])


def wait_for_stream(handle: KernelHandle, msg_id: str, text: str) -> None:
    recv(
        handle.kc,
        "iopub",
        lambda m: (
            parent_id(m) == msg_id
            and m["header"]["msg_type"] == "stream"
            and text in m["content"]["text"]
        ),
        what=f"the stream {text!r}",
    )


def assert_interrupted(handle: KernelHandle, msg_id: str) -> None:
    """The request ends with a KeyboardInterrupt error, an error reply and its idle."""
    iopub = collect_until_idle(handle.kc, msg_id, timeout=15)
    reply = get_reply(handle.kc, msg_id, timeout=15)
    errors = of_type(iopub, "error")
    assert len(errors) == 1, describe(iopub)
    assert errors[0]["content"]["ename"] == "KeyboardInterrupt"
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"


def assert_still_works(handle: KernelHandle) -> None:
    ex = run_ok(handle.kc, "print(interrupt_state)")
    assert ex.stdout() == "kept\n", "the namespace survives an interrupt"


@pytest.mark.invariant("I3")
@pytest.mark.parametrize("mode", sorted(MODES))
def test_interrupt_sleep(kernel_factory: Callable[..., KernelHandle], mode: str) -> None:
    """Interrupting time.sleep(30) ends the cell with KeyboardInterrupt (I3: error, error
    reply, idle), and the kernel then runs the next cell with its namespace intact."""
    handle = kernel_factory(MODES[mode])
    run_ok(handle.kc, "interrupt_state = 'kept'")
    msg_id = execute(handle.kc, "import time\nprint('sleeping', flush=True)\ntime.sleep(30)")
    wait_for_stream(handle, msg_id, "sleeping")
    interrupt(handle, mode)
    assert_interrupted(handle, msg_id)
    assert_still_works(handle)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_interrupt_input(kernel_factory: Callable[..., KernelHandle], mode: str) -> None:
    """Interrupting a cell that waits in input() ends it with KeyboardInterrupt, and the
    kernel then runs the next cell."""
    handle = kernel_factory(MODES[mode])
    run_ok(handle.kc, "interrupt_state = 'kept'")
    msg_id = execute(handle.kc, "value = input('waiting> ')", allow_stdin=True)
    prompt = recv_for(handle.kc, "stdin", msg_id, what="the input_request")
    assert prompt["header"]["msg_type"] == "input_request"
    interrupt(handle, mode)
    assert_interrupted(handle, msg_id)
    assert_still_works(handle)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_interrupt_when_idle_is_harmless(
    kernel_factory: Callable[..., KernelHandle], mode: str
) -> None:
    """An interrupt while no code runs changes nothing: the next cell runs normally."""
    handle = kernel_factory(MODES[mode])
    run_ok(handle.kc, "interrupt_state = 'kept'")
    interrupt(handle, mode)
    assert_still_works(handle)


def test_interrupt_loop_in_python_code(kernel_factory: Callable[..., KernelHandle]) -> None:
    """SIGINT also stops pure-Python busy loops (not only blocking calls)."""
    handle = kernel_factory(MODES["signal"])
    run_ok(handle.kc, "interrupt_state = 'kept'")
    msg_id = execute(handle.kc, "print('spinning', flush=True)\nwhile True:\n    pass")
    wait_for_stream(handle, msg_id, "spinning")
    interrupt(handle, "signal")
    assert_interrupted(handle, msg_id)
    assert_still_works(handle)


@pytest.mark.mpkernel_only
def test_only_the_main_thread_takes_sigint(kernel_factory: Callable[..., KernelHandle]) -> None:
    """SIGINT to the process group must reach the main thread (user code): every other
    thread of the kernel blocks it, so Linux cannot hand it to the io thread while the
    main thread sleeps (the cell would then not be interrupted until it woke)."""
    handle = kernel_factory()
    run_ok(handle.kc, "pass")
    sigint = 1 << (signal.SIGINT - 1)
    tasks = Path(f"/proc/{handle.pid}/task")
    blocked: dict[int, bool] = {}
    for task in tasks.iterdir():
        status = (task / "status").read_text()
        (mask,) = [line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")]
        blocked[int(task.name)] = bool(int(mask, 16) & sigint)
    assert not blocked.pop(handle.pid), "the main thread blocks SIGINT"
    assert blocked, "no other thread to check"
    assert all(blocked.values()), f"threads not blocking SIGINT: {blocked}"


@pytest.mark.mpkernel_only
def test_sigint_taken_by_a_user_thread_interrupts_the_sleeping_cell(
    kernel_factory: Callable[..., KernelHandle],
) -> None:
    """A thread started by user code inherits the main thread's mask, so Linux may hand it
    the process group's SIGINT. The main thread, asleep in `time.sleep(60)`, must still be
    interrupted at once rather than when the sleep ends (the wakeup fd nudges it)."""
    handle = kernel_factory()
    run_ok(handle.kc, "interrupt_state = 'kept'")
    code = (
        "import threading, time\n"
        "parked = threading.Thread(target=threading.Event().wait, daemon=True)\n"
        "parked.start()\n"
        "print(parked.native_id, flush=True)\n"
        "time.sleep(60)"
    )
    msg_id = execute(handle.kc, code)
    stream = recv(
        handle.kc,
        "iopub",
        lambda m: parent_id(m) == msg_id and m["header"]["msg_type"] == "stream",
        what="the user thread's id",
    )
    tid = int(stream["content"]["text"])
    assert tid != handle.pid
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.tgkill(handle.pid, tid, signal.SIGINT) == 0, os.strerror(ctypes.get_errno())
    assert_interrupted(handle, msg_id)
    assert_still_works(handle)
