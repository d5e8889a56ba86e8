"""Kernel lifecycle: shutdown (by request and through jupyter_client), restart.

Invariants (docs/architecture.md section 2) checked here: I3 (shutdown_request gets its reply inside
busy/idle) and the process rules of docs/architecture.md section 1 (no process survives the kernel).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from mpkernel.client import Frontend
from mpkernel.client.messages import kinds
from tests.frontend import (
    PROCESS_EXIT_TIMEOUT,
    STARTUP_TIMEOUT,
    KernelHandle,
    assert_sequence,
    kind,
    parent_id,
    process_tree,
    recv,
    request,
    role_of,
    run_ok,
    sync,
    wait_gone,
)

pytestmark = [pytest.mark.integration, pytest.mark.crash]

START_CHILD = "import subprocess\nchild = subprocess.Popen(['sleep', '300'])\nprint(child.pid)"


def assert_bracketed_shutdown(iopub: list[dict[str, Any]]) -> None:
    """I3 for shutdown_request: busy, idle; the reply may also be broadcast on IOPub between
    them (ipykernel does, JupyterLab lists shutdown_reply among IOPub types)."""
    if len(iopub) == 3:
        assert_sequence(iopub, ["status:busy", "shutdown_reply", "status:idle"])
    else:
        assert_sequence(iopub, ["status:busy", "status:idle"])


def kernel_popen(handle: KernelHandle) -> subprocess.Popen[bytes]:
    """The Popen jupyter_client's local provisioner holds for the kernel process."""
    popen = handle.km.provisioner.process  # type: ignore[union-attr]
    assert isinstance(popen, subprocess.Popen)
    assert popen.pid == handle.pid
    return popen


def start_sleep_child(handle: KernelHandle) -> psutil.Process:
    ex = run_ok(handle.kc, START_CHILD)
    child = psutil.Process(int(ex.stdout()))
    assert child.ppid() == handle.pid
    return child


@pytest.mark.invariant("I3")
def test_shutdown_request_ends_kernel_and_its_children(
    kernel_factory: Callable[..., KernelHandle],
) -> None:
    """I3 + no orphans: shutdown_request on control gets shutdown_reply {status ok, restart
    false} inside busy/idle; the kernel then exits by itself with code 0 and takes the
    subprocess its user code started with it. No signal is sent by the test or by
    jupyter_client here: the kernel alone must end the child."""
    handle = kernel_factory()
    popen = kernel_popen(handle)
    child = start_sleep_child(handle)

    reply, iopub = request(handle.kc, "shutdown_request", {"restart": False}, channel="control")
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["restart"] is False
    assert_bracketed_shutdown(iopub)

    returncode = popen.wait(timeout=PROCESS_EXIT_TIMEOUT)
    assert returncode == 0
    assert wait_gone([child], PROCESS_EXIT_TIMEOUT) == [], "the user's subprocess survived"
    handle.km.shutdown_kernel()  # let jupyter_client clean up its side
    assert not handle.km.has_kernel


@pytest.mark.mpkernel_only
def test_km_shutdown_kernel_is_graceful(kernel_factory: Callable[..., KernelHandle]) -> None:
    """km.shutdown_kernel() (interrupt, shutdown_request, wait) ends the kernel and its
    children without needing jupyter_client's SIGTERM/SIGKILL fallback: exit code 0.
    (ipykernel's progressive termination of children outlasts that deadline: it gets SIGTERM.)"""
    handle = kernel_factory()
    popen = kernel_popen(handle)
    child = start_sleep_child(handle)
    tree = process_tree(handle.pid)

    handle.km.shutdown_kernel()

    assert not handle.km.has_kernel
    assert popen.returncode == 0, f"kernel exit code {popen.returncode} (negative: killed)"
    assert wait_gone([child, *tree], PROCESS_EXIT_TIMEOUT) == []
    # The manager's shutdown_request came from its own socket; IOPub broadcasts its bracket.
    broadcast = [recv(handle.kc, "iopub", timeout=5, what="the shutdown bracket")]
    while kind(broadcast[-1]) != "status:idle":
        broadcast.append(recv(handle.kc, "iopub", timeout=5, what="the shutdown bracket"))
    assert_bracketed_shutdown(broadcast)
    assert len({parent_id(m) for m in broadcast}) == 1


def test_restart_gives_fresh_namespace(kernel_factory: Callable[..., KernelHandle]) -> None:
    """km.restart_kernel(): a new kernel process answers on the same connection, the old one
    (and its children) are gone, and the user namespace is fresh."""
    handle = kernel_factory()
    old_tree = process_tree(handle.pid)
    run_ok(handle.kc, "restart_marker = 1")

    handle.km.restart_kernel()
    assert handle.km.provisioner is not None
    handle.pid = handle.km.provisioner.pid  # type: ignore[attr-defined]
    handle.kc.wait_for_ready(timeout=60)
    sync(handle.kc)

    assert old_tree[0].pid != handle.pid
    assert wait_gone(old_tree, PROCESS_EXIT_TIMEOUT) == []
    ex = run_ok(handle.kc, "print('restart_marker' in globals())")
    assert ex.stdout() == "False\n"
    assert ex.content["execution_count"] == 1


def test_shutdown_request_with_restart_flag(kernel_factory: Callable[..., KernelHandle]) -> None:
    """shutdown_request {restart: true} is answered with restart true (the restart itself is
    the manager's job); the kernel exits cleanly."""
    handle = kernel_factory()
    popen = kernel_popen(handle)
    reply, iopub = request(handle.kc, "shutdown_request", {"restart": True}, channel="control")
    assert reply["content"] == {"status": "ok", "restart": True}
    assert_bracketed_shutdown(iopub)
    assert popen.wait(timeout=PROCESS_EXIT_TIMEOUT) == 0
    handle.km.shutdown_kernel()


LAUNCHER = """
import subprocess, sys, time
kernel = subprocess.Popen([sys.executable, "-m", "mpkernel", "run", "-f", sys.argv[1]])
print(kernel.pid, flush=True)
time.sleep(600)  # until the test kills this launcher
"""


@pytest.mark.crash
@pytest.mark.mpkernel_only
def viewers(procs: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in procs if role_of(p)[:1] == ["viewer"]]


def test_kernel_ends_when_the_process_that_started_it_dies(tmp_path: Path) -> None:
    """A frontend killed without a shutdown_request (a closed terminal) must not leave its
    kernel and workers running: once the launcher is SIGKILLed, they all go."""
    connection_file = tmp_path / "kernel.json"
    write_connection_file(str(connection_file))
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(connection_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    kernel: psutil.Process | None = None
    try:
        assert launcher.stdout is not None
        kernel = psutil.Process(int(launcher.stdout.readline()))
        client = BlockingKernelClient(connection_file=str(connection_file))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=STARTUP_TIMEOUT)
            user = Frontend(client)
            view = "import mpkernel, pandas; mpkernel.view(pandas.DataFrame({'a': [1]}))"
            user.get_reply(user.execute(view), timeout=STARTUP_TIMEOUT)
            # The worker starts in the background of the view: wait until it is there.
            deadline = time.monotonic() + STARTUP_TIMEOUT
            tree = [kernel, *kernel.children(recursive=True)]
            while not viewers(tree) and time.monotonic() < deadline:
                time.sleep(0.02)
                tree = [kernel, *kernel.children(recursive=True)]
            assert viewers(tree), "the view's worker runs"
        finally:
            client.stop_channels()
        launcher.kill()
        launcher.wait()
        assert wait_gone(tree, PROCESS_EXIT_TIMEOUT) == []
    finally:
        launcher.kill()
        launcher.wait()
        if launcher.stdout is not None:
            launcher.stdout.close()
        if kernel is not None:
            for proc in [kernel, *kernel.children(recursive=True)] if kernel.is_running() else []:
                proc.kill()


@pytest.mark.mpkernel_only
def test_kernel_info_while_starting_keeps_shell_order() -> None:
    """Requests sent before the kernel is up: both answered, kernel_info bracketed by busy
    and idle. kernel_info sent first is answered first. Sent second, it may overtake the
    execute's reply if the main thread has already taken the execute (kernel_info is answered
    at once when nothing is queued ahead of it: docs/subshells.md), never otherwise."""
    from jupyter_client.manager import KernelManager

    from tests.conftest import KERNEL_NAME

    for first in ("kernel_info", "execute"):
        km = KernelManager(kernel_name=KERNEL_NAME)
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            user = Frontend(kc)
            if first == "execute":
                sent = [user.execute("x = 1"), user.send_request("kernel_info_request")]
            else:
                sent = [user.send_request("kernel_info_request"), user.execute("x = 1")]
            # the next replies in arrival order, whichever request they answer
            replies = [user.recv("shell", timeout=STARTUP_TIMEOUT) for _ in sent]
            answered = [r["parent_header"]["msg_id"] for r in replies]
            if first == "kernel_info":
                assert answered == sent
            else:
                assert sorted(answered) == sorted(sent)
            info = next(r for r in replies if r["msg_type"] == "kernel_info_reply")
            assert info["content"]["implementation"] == "mpkernel"
            bracket = user.collect_until_idle(info["parent_header"]["msg_id"], STARTUP_TIMEOUT)
            assert kinds(bracket) == ["status:busy", "status:idle"]
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
