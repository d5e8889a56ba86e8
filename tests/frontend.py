"""The test frontend: pytest's layer over ``mpkernel.client`` (after ark's dummy_frontend.rs).

The client itself (mailbox, execute, run until idle, requests, comms, control) is
``mpkernel.client``, shared with the tools and examples. What is here is what only tests
need: one mailbox per jupyter_client client (so the functions that take a ``kc`` share it),
the schema check of every message read, the end-of-test leftover check, a ``Gate``
that holds a cell, and the kernel lifecycle (``start_kernel`` / ``stop_kernel``) shared by
the fixtures in ``conftest.py`` and the unittest-style conformance classes: a kernel is
always shut down and its whole process tree checked with psutil.

Every wait is on a message, with a deadline. The deadlines are hang guards, not speed
assertions: a helper that runs out of time raises ``MessageTimeout`` (an ``AssertionError``)
naming what it was waiting for and what it saw instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from weakref import WeakKeyDictionary

import psutil
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel
from jupyter_kernel_test.msgspec_v5 import schema_fragments, validate_message

from mpkernel.client import DEFAULT_TIMEOUT, Executed, Frontend, Mailbox
from mpkernel.client.frontend import channel_reader
from mpkernel.client.mailbox import anything
from mpkernel.client.messages import (
    CHANNELS,
    Channel,
    Match,
    Msg,
    coalesce_streams,
    describe,
    is_kernel_status,
    kind,
    kinds,
    of_type,
    parent_id,
    stream_text,
)

#: How long the end-of-test check listens for stray messages on all channels together.
LEFTOVER_WINDOW = 0.25
#: Hang guard for a kernel to start (first kernel_info reply).
STARTUP_TIMEOUT = 60.0
#: Hang guard for the processes of a stopped kernel to disappear.
PROCESS_EXIT_TIMEOUT = 15.0


def assert_sequence(
    msgs: Sequence[Msg], expected: Sequence[str], *, merge_streams: bool = True
) -> None:
    """Assert the exact sequence of message kinds (see ``kind``)."""
    got = kinds(msgs, merge_streams=merge_streams)
    assert got == list(expected), (
        f"message sequence\n  got:      {got}\n  expected: {list(expected)}\n{describe(msgs)}"
    )


def validate(msg: Msg) -> None:
    """Schema-check a message with jupyter_kernel_test's msgspec where a schema exists.

    The deprecated ``aborted`` reply status has no schema there; it is checked by the tests
    that expect it. The msgspec types ``input_request.password`` as a number where the
    protocol says boolean, so that field is checked here instead.
    """
    msg_type = msg["header"]["msg_type"]
    if msg_type == "input_request":
        assert set(msg["content"]) == {"prompt", "password"}, msg["content"]
        assert isinstance(msg["content"]["prompt"], str)
        assert isinstance(msg["content"]["password"], bool)
        return
    if msg_type not in schema_fragments:
        return
    if msg["content"].get("status") == "aborted":
        return
    validate_message(msg, msg_type)


def _validate(channel: Channel, msg: Msg) -> None:
    validate(msg)


# ---------------------------------------------------------------------------------------------
# one Frontend (and so one mailbox) per client

_MAILBOXES: WeakKeyDictionary[BlockingKernelClient, Mailbox] = WeakKeyDictionary()


def frontend(kc: BlockingKernelClient) -> Frontend:
    """A ``Frontend`` on ``kc``: every one made for the same client shares its mailbox
    (which holds the client weakly, so the map forgets a client nobody uses any more)."""
    box = _MAILBOXES.get(kc)
    if box is None:
        box = _MAILBOXES[kc] = Mailbox(channel_reader(kc), on_read=_validate)
    return Frontend(kc, mailbox=box)


def pending(kc: BlockingKernelClient, channel: Channel) -> list[Msg]:
    """Messages already read from ``channel`` but not yet claimed (a copy)."""
    return frontend(kc).mailbox.pending(channel)


def claim(kc: BlockingKernelClient, channel: Channel, match: Match) -> list[Msg]:
    """Take every message in the mailbox of ``channel`` for which ``match`` is true."""
    return frontend(kc).mailbox.claim(channel, match)


def recv(
    kc: BlockingKernelClient,
    channel: Channel,
    match: Match = anything,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "a message",
) -> Msg:
    """The next message on ``channel`` for which ``match`` is true; others go to the mailbox."""
    return frontend(kc).recv(channel, match, timeout=timeout, what=what)


def recv_for(
    kc: BlockingKernelClient,
    channel: Channel,
    parent: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    what: str | None = None,
) -> Msg:
    """The next message on ``channel`` parented to the request ``parent``."""
    return frontend(kc).recv_for(channel, parent, timeout=timeout, what=what)


def execute(kc: BlockingKernelClient, code: str, **kw: Any) -> str:
    """Send an execute_request; returns its msg_id. Keywords as ``KernelClient.execute``."""
    return frontend(kc).execute(code, **kw)


def send_request(
    kc: BlockingKernelClient,
    msg_type: str,
    content: dict[str, Any] | None = None,
    channel: Literal["shell", "control"] = "shell",
) -> str:
    """Send any request on shell or control; returns its msg_id."""
    return frontend(kc).send_request(msg_type, content, channel)


def get_reply(
    kc: BlockingKernelClient,
    msg_id: str,
    channel: Channel = "shell",
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Msg:
    """The reply to request ``msg_id``; asserts it is a ``*_reply``."""
    return frontend(kc).get_reply(msg_id, channel, timeout=timeout)


def expect_busy(kc: BlockingKernelClient, parent: str, *, timeout: float = DEFAULT_TIMEOUT) -> Msg:
    """The next IOPub message for ``parent`` must be ``status: busy``."""
    return frontend(kc).expect_busy(parent, timeout=timeout)


def collect_until_idle(
    kc: BlockingKernelClient, parent_msg_id: str, timeout: float = DEFAULT_TIMEOUT
) -> list[Msg]:
    """IOPub messages parented to ``parent_msg_id``, from busy to idle inclusive."""
    return frontend(kc).collect_until_idle(parent_msg_id, timeout)


def collect_rest(
    kc: BlockingKernelClient, parent_msg_id: str, timeout: float = DEFAULT_TIMEOUT
) -> list[Msg]:
    """The remaining IOPub messages of a request up to its idle, when the test has already
    consumed its busy (and maybe more) itself."""
    return frontend(kc).collect_rest(parent_msg_id, timeout)


def run(
    kc: BlockingKernelClient, code: str, *, timeout: float = DEFAULT_TIMEOUT, **kw: Any
) -> Executed:
    """Execute ``code`` and wait for both its idle and its reply."""
    return frontend(kc).run(code, timeout=timeout, **kw)


def run_ok(kc: BlockingKernelClient, code: str, **kw: Any) -> Executed:
    """``run`` and assert the reply status is ok (showing the error otherwise)."""
    return frontend(kc).run_ok(code, **kw)


def request(
    kc: BlockingKernelClient,
    msg_type: str,
    content: dict[str, Any] | None = None,
    channel: Literal["shell", "control"] = "shell",
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[Msg, list[Msg]]:
    """Send a non-execute request; return its reply and its IOPub busy..idle messages."""
    return frontend(kc).request(msg_type, content, channel, timeout=timeout)


def sync(kc: BlockingKernelClient, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Barrier for setup: see ``Frontend.sync`` (never to hide messages a test checks)."""
    frontend(kc).sync(timeout=timeout)


class Gate:
    """A socket that user code blocks on until the test opens the gate.

    ``code`` is a snippet for a cell: it connects and waits for one byte. ``wait_blocked``
    returns once the cell is connected (so it is blocked from then on); ``open`` releases it.
    Leaving the ``with`` block always opens the gate, so a failing test never leaves a cell
    blocked. This makes "while the cell is still running" observable without sleeping.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(timeout)
        self._conn: socket.socket | None = None
        port = self._server.getsockname()[1]
        self.code = (
            "import socket as _gate_socket\n"
            f"with _gate_socket.create_connection(('127.0.0.1', {port}), timeout={timeout})"
            " as _gate:\n"
            "    _gate.recv(1)\n"
        )

    def __enter__(self) -> Gate:
        return self

    def wait_blocked(self) -> None:
        self._conn, _ = self._server.accept()

    def open(self) -> None:
        if self._conn is not None:
            try:
                self._conn.sendall(b"x")
            finally:
                self._conn.close()
                self._conn = None

    def __exit__(self, *exc: object) -> None:
        try:
            self.open()
        finally:
            self._server.close()


def assert_no_leftovers(
    kc: BlockingKernelClient,
    channels: Iterable[Channel] = CHANNELS,
    *,
    window: float = LEFTOVER_WINDOW,
) -> None:
    """No message is waiting on any of ``channels`` (listening ``window`` s on all together),
    and none sits unclaimed in the mailbox. A parentless ``busy`` is the kernel's own status,
    not a request's (it says the kernel is still busy after one of several concurrent
    requests went idle): it is nobody's to claim."""
    leftovers = [
        (c, m) for c, m in frontend(kc).drain(channels, window=window) if not is_kernel_status(m)
    ]
    if leftovers:
        lines = "\n".join(f"{c}: {describe([m])}" for c, m in leftovers)
        raise AssertionError(f"unclaimed messages at the end of the test:\n{lines}")


# ---------------------------------------------------------------------------------------------
# kernel lifecycle


@dataclass
class KernelHandle:
    """A running kernel, its client, and what is needed to prove it is gone afterwards."""

    name: str
    km: KernelManager
    kc: BlockingKernelClient
    pid: int
    channels: tuple[Channel, ...]
    dirty: bool = False
    stopped: bool = False

    def process(self) -> psutil.Process:
        return psutil.Process(self.pid)


def _is_alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(procs: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait (on psutil) until every process has exited; returns the ones still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if _is_alive(p)]
    while alive and time.monotonic() < deadline:
        psutil.wait_procs(alive, timeout=min(0.2, max(deadline - time.monotonic(), 0.0)))
        alive = [p for p in alive if _is_alive(p)]
    return alive


def role_of(proc: psutil.Process) -> list[str]:
    """A kernel process's role from its title (`mpkernel.titles`), e.g. ``["worker",
    "variables"]``; [] for a process without one (the kernel itself, or gone)."""
    try:
        # setproctitle leaves empty arguments; the janitor (a shell) has its script after
        words = " ".join(proc.cmdline()).split(" -c ")[0].split()
    except psutil.Error:
        return []
    return words[1:-1] if words[:1] == ["mpkernel"] and len(words) > 2 else []


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (empty if it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


#: every kernel `start_kernel` started in this session (the leftover check's)
STARTED_PIDS: set[int] = set()


def start_kernel(
    kernel_name: str,
    *,
    stdin: bool = True,
    control: bool = True,
    timeout: float = STARTUP_TIMEOUT,
) -> KernelHandle:
    """Start a kernel and a blocking client, wait until it answers, and sync the channels."""
    if stdin and control:
        km, kc = start_new_kernel(startup_timeout=timeout, kernel_name=kernel_name)
    else:
        km = KernelManager(kernel_name=kernel_name)
        km.start_kernel()
        kc = km.client()
        kc.start_channels(stdin=stdin, control=control)
        try:
            kc.wait_for_ready(timeout=timeout)
        except RuntimeError:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            raise
    assert km.provisioner is not None
    pid = km.provisioner.pid  # type: ignore[attr-defined]
    wanted: dict[Channel, bool] = {"shell": True, "iopub": True, "stdin": stdin, "control": control}
    channels = tuple(c for c, on in wanted.items() if on)
    handle = KernelHandle(kernel_name, km, kc, pid, channels)
    STARTED_PIDS.add(pid)
    try:
        sync(kc, timeout=timeout)
    except BaseException:
        stop_kernel(handle)
        raise
    return handle


def stop_kernel(handle: KernelHandle) -> None:
    """Shut the kernel down at once and prove that it and all its descendants are gone.

    Anything still alive after jupyter_client's kill is SIGKILLed here (process group first),
    and the survivors are reported as a failure.
    """
    if handle.stopped:
        return
    handle.stopped = True
    procs = process_tree(handle.pid)
    try:
        handle.kc.stop_channels()
    finally:
        try:
            if handle.km.has_kernel:
                handle.km.shutdown_kernel(now=True)
            else:
                handle.km.cleanup_resources()
        finally:
            survivors = wait_gone(procs, PROCESS_EXIT_TIMEOUT)
            if survivors:
                desc = [_describe_process(p) for p in survivors]
                _kill(handle.pid, survivors)
                raise AssertionError(f"kernel {handle.name} left processes behind: {desc}")


def _describe_process(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid}: {' '.join(proc.cmdline())}"
    except psutil.Error:
        return f"pid {proc.pid}"


def _kill(pgid: int, procs: Sequence[psutil.Process]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    wait_gone(procs, PROCESS_EXIT_TIMEOUT)


__all__ = [
    "CHANNELS",
    "DEFAULT_TIMEOUT",
    "Channel",
    "Executed",
    "Gate",
    "KernelHandle",
    "Msg",
    "assert_no_leftovers",
    "assert_sequence",
    "coalesce_streams",
    "collect_rest",
    "collect_until_idle",
    "describe",
    "execute",
    "expect_busy",
    "frontend",
    "get_reply",
    "kind",
    "kinds",
    "of_type",
    "parent_id",
    "pending",
    "process_tree",
    "recv",
    "recv_for",
    "request",
    "role_of",
    "run",
    "run_ok",
    "send_request",
    "start_kernel",
    "stop_kernel",
    "stream_text",
    "sync",
    "wait_gone",
]
