"""A test frontend: typed helpers that talk to a real kernel (after ark's dummy_frontend.rs).

Every wait is on a message, with a deadline. The deadlines are hang guards, not speed
assertions: a helper that runs out of time raises ``AssertionError`` naming what it was
waiting for and what it saw instead.

Messages that a helper reads while looking for something else are not dropped: they go to a
per-client mailbox and the next helper that asks for them (by channel and parent msg_id) gets
them first. So pipelined requests can be collected one after the other, and the end-of-test
check (``assert_no_leftovers``) sees anything nobody claimed.

Kernel lifecycle helpers (``start_kernel`` / ``stop_kernel``) live here too so that the
fixtures in ``conftest.py`` and the unittest-style conformance classes share one
implementation: a kernel is always shut down and its whole process tree checked with psutil.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from queue import Empty
from typing import Any, Literal
from weakref import WeakKeyDictionary

import psutil
import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel
from jupyter_kernel_test.msgspec_v5 import schema_fragments, validate_message

Msg = dict[str, Any]
Channel = Literal["shell", "iopub", "stdin", "control"]
CHANNELS: tuple[Channel, ...] = ("shell", "iopub", "stdin", "control")

#: Hang guard for one request (most finish in milliseconds).
DEFAULT_TIMEOUT = 30.0
#: How long the end-of-test check listens for stray messages on all channels together.
LEFTOVER_WINDOW = 0.25
#: Hang guard for a kernel to start (first kernel_info reply).
STARTUP_TIMEOUT = 60.0
#: Hang guard for the processes of a stopped kernel to disappear.
PROCESS_EXIT_TIMEOUT = 15.0

# ---------------------------------------------------------------------------------------------
# message accessors


def parent_id(msg: Msg) -> str | None:
    """The msg_id of the request this message answers, or None for parentless messages."""
    parent = msg.get("parent_header") or {}
    return parent.get("msg_id")


def kind(msg: Msg) -> str:
    """A short label: ``status:busy``, ``stream:stdout``, ``execute_result``, ..."""
    msg_type: str = msg["header"]["msg_type"]
    content = msg["content"]
    if msg_type == "status":
        return f"status:{content['execution_state']}"
    if msg_type == "stream":
        return f"stream:{content['name']}"
    return msg_type


def describe(msgs: Iterable[Msg]) -> str:
    """Readable one-line-per-message dump for assertion messages."""
    lines = []
    for m in msgs:
        content = json.dumps(m.get("content"), default=str)
        if len(content) > 300:
            content = content[:300] + "..."
        lines.append(f"  {kind(m)} parent={parent_id(m)} content={content}")
    return "\n".join(lines) if lines else "  (nothing)"


def coalesce_streams(msgs: Sequence[Msg]) -> list[Msg]:
    """Merge neighbouring stream messages of the same name (the split of text into stream
    messages is not defined by the protocol; their order is)."""
    out: list[Msg] = []
    for m in msgs:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev["header"]["msg_type"] == "stream"
            and m["header"]["msg_type"] == "stream"
            and prev["content"]["name"] == m["content"]["name"]
        ):
            merged = dict(prev)
            merged["content"] = dict(prev["content"])
            merged["content"]["text"] += m["content"]["text"]
            out[-1] = merged
        else:
            out.append(m)
    return out


def kinds(msgs: Sequence[Msg], *, merge_streams: bool = True) -> list[str]:
    """The labels of ``msgs``; neighbouring same-name streams count once when merging."""
    return [kind(m) for m in (coalesce_streams(msgs) if merge_streams else msgs)]


def assert_sequence(
    msgs: Sequence[Msg], expected: Sequence[str], *, merge_streams: bool = True
) -> None:
    """Assert the exact sequence of message kinds (see ``kind``)."""
    got = kinds(msgs, merge_streams=merge_streams)
    assert got == list(expected), (
        f"message sequence\n  got:      {got}\n  expected: {list(expected)}\n{describe(msgs)}"
    )


def stream_text(msgs: Iterable[Msg], name: str = "stdout") -> str:
    """All text of the stream ``name`` in ``msgs``, concatenated in order."""
    return "".join(
        m["content"]["text"]
        for m in msgs
        if m["header"]["msg_type"] == "stream" and m["content"]["name"] == name
    )


def of_type(msgs: Iterable[Msg], msg_type: str) -> list[Msg]:
    return [m for m in msgs if m["header"]["msg_type"] == msg_type]


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


# ---------------------------------------------------------------------------------------------
# the mailbox: messages read from a client but not yet claimed


@dataclass
class _Mailbox:
    pending: dict[str, list[Msg]] = field(default_factory=lambda: {c: [] for c in CHANNELS})


_MAILBOXES: WeakKeyDictionary[BlockingKernelClient, _Mailbox] = WeakKeyDictionary()


def _mailbox(kc: BlockingKernelClient) -> _Mailbox:
    box = _MAILBOXES.get(kc)
    if box is None:
        box = _MAILBOXES[kc] = _Mailbox()
    return box


def pending(kc: BlockingKernelClient, channel: Channel) -> list[Msg]:
    """Messages already read from ``channel`` but not yet claimed (a copy)."""
    return list(_mailbox(kc).pending[channel])


def claim(kc: BlockingKernelClient, channel: Channel, match: Callable[[Msg], bool]) -> list[Msg]:
    """Take every message in the mailbox of ``channel`` for which ``match`` is true."""
    box = _mailbox(kc).pending[channel]
    taken = [m for m in box if match(m)]
    box[:] = [m for m in box if not match(m)]
    return taken


def _channel(kc: BlockingKernelClient, channel: Channel) -> Any:
    return getattr(kc, f"{channel}_channel")


def recv(
    kc: BlockingKernelClient,
    channel: Channel,
    match: Callable[[Msg], bool] = lambda m: True,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "a message",
) -> Msg:
    """The next message on ``channel`` for which ``match`` is true; others go to the mailbox."""
    box = _mailbox(kc).pending[channel]
    for i, earlier in enumerate(box):
        if match(earlier):
            return box.pop(i)
    deadline = time.monotonic() + timeout
    seen: list[Msg] = []
    chan = _channel(kc, channel)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"timed out after {timeout}s waiting on {channel} for {what}; "
                f"meanwhile received:\n{describe(seen)}"
            )
        try:
            m: Msg = chan.get_msg(timeout=remaining)
        except Empty:
            continue
        validate(m)
        if match(m):
            return m
        seen.append(m)
        box.append(m)


def recv_for(
    kc: BlockingKernelClient,
    channel: Channel,
    parent: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    what: str | None = None,
) -> Msg:
    """The next message on ``channel`` parented to the request ``parent``."""
    return recv(
        kc,
        channel,
        lambda m: parent_id(m) == parent,
        timeout=timeout,
        what=what or f"a message parented to {parent}",
    )


def try_recv_for(
    kc: BlockingKernelClient, channel: Channel, parent: str | None, *, timeout: float
) -> Msg | None:
    """Like ``recv_for`` but returns None when nothing arrives within ``timeout``."""
    try:
        return recv_for(kc, channel, parent, timeout=timeout)
    except AssertionError:
        return None


# ---------------------------------------------------------------------------------------------
# requests


def execute(kc: BlockingKernelClient, code: str, **kw: Any) -> str:
    """Send an execute_request; returns its msg_id. Keywords as ``KernelClient.execute``."""
    msg_id: str = kc.execute(code, **kw)
    return msg_id


def send_request(
    kc: BlockingKernelClient,
    msg_type: str,
    content: dict[str, Any] | None = None,
    channel: Literal["shell", "control"] = "shell",
) -> str:
    """Send any request on shell or control; returns its msg_id."""
    msg = kc.session.msg(msg_type, content or {})
    _channel(kc, channel).send(msg)
    msg_id: str = msg["header"]["msg_id"]
    return msg_id


def get_reply(
    kc: BlockingKernelClient,
    msg_id: str,
    channel: Channel = "shell",
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Msg:
    """The reply to request ``msg_id``; asserts it is a ``*_reply`` with a status."""
    reply = recv_for(kc, channel, msg_id, timeout=timeout, what=f"the reply to {msg_id}")
    msg_type = reply["header"]["msg_type"]
    assert msg_type.endswith("_reply"), f"expected a reply to {msg_id}, got {msg_type}"
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply


def expect_busy(kc: BlockingKernelClient, parent: str, *, timeout: float = DEFAULT_TIMEOUT) -> Msg:
    """The next IOPub message for ``parent`` must be ``status: busy``."""
    m = recv_for(kc, "iopub", parent, timeout=timeout, what=f"busy for {parent}")
    assert kind(m) == "status:busy", (
        f"first IOPub message for {parent} is not busy:\n{describe([m])}"
    )
    return m


def expect_idle(kc: BlockingKernelClient, parent: str, *, timeout: float = DEFAULT_TIMEOUT) -> Msg:
    """The next IOPub message for ``parent`` must be ``status: idle``."""
    m = recv_for(kc, "iopub", parent, timeout=timeout, what=f"idle for {parent}")
    assert kind(m) == "status:idle", f"expected idle for {parent}, got:\n{describe([m])}"
    return m


def collect_until_idle(
    kc: BlockingKernelClient, parent_msg_id: str, timeout: float = DEFAULT_TIMEOUT
) -> list[Msg]:
    """IOPub messages parented to ``parent_msg_id``, from busy to idle inclusive.

    Asserts exactly one busy (the first message) and exactly one idle (the last). Messages of
    other requests read meanwhile stay in the mailbox for whoever asks for them.
    """
    deadline = time.monotonic() + timeout
    msgs = [expect_busy(kc, parent_msg_id, timeout=timeout)]
    while True:
        remaining = max(deadline - time.monotonic(), 0.0)
        try:
            m = recv_for(kc, "iopub", parent_msg_id, timeout=remaining)
        except AssertionError as exc:
            raise AssertionError(
                f"no idle for {parent_msg_id} within {timeout}s; got so far:\n{describe(msgs)}"
            ) from exc
        msgs.append(m)
        if kind(m) == "status:busy":
            raise AssertionError(f"second busy for {parent_msg_id}:\n{describe(msgs)}")
        if kind(m) == "status:idle":
            return msgs


def collect_rest(
    kc: BlockingKernelClient, parent_msg_id: str, timeout: float = DEFAULT_TIMEOUT
) -> list[Msg]:
    """The remaining IOPub messages of a request up to its idle, when the test has already
    consumed its busy (and maybe more) itself."""
    deadline = time.monotonic() + timeout
    msgs: list[Msg] = []
    while True:
        remaining = max(deadline - time.monotonic(), 0.0)
        m = recv_for(
            kc, "iopub", parent_msg_id, timeout=remaining, what=f"idle for {parent_msg_id}"
        )
        msgs.append(m)
        assert kind(m) != "status:busy", f"second busy for {parent_msg_id}:\n{describe(msgs)}"
        if kind(m) == "status:idle":
            return msgs


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


@dataclass
class Executed:
    """One execute_request, its reply and the IOPub messages between busy and idle."""

    msg_id: str
    reply: Msg
    iopub: list[Msg]

    @property
    def content(self) -> dict[str, Any]:
        content: dict[str, Any] = self.reply["content"]
        return content

    @property
    def outputs(self) -> list[Msg]:
        """IOPub messages other than status and execute_input."""
        return [m for m in self.iopub if m["header"]["msg_type"] not in ("status", "execute_input")]

    def stdout(self) -> str:
        return stream_text(self.iopub, "stdout")

    def stderr(self) -> str:
        return stream_text(self.iopub, "stderr")


def run(
    kc: BlockingKernelClient, code: str, *, timeout: float = DEFAULT_TIMEOUT, **kw: Any
) -> Executed:
    """Execute ``code`` and wait for both its idle and its reply."""
    msg_id = execute(kc, code, **kw)
    iopub = collect_until_idle(kc, msg_id, timeout)
    reply = get_reply(kc, msg_id, timeout=timeout)
    assert reply["header"]["msg_type"] == "execute_reply"
    return Executed(msg_id, reply, iopub)


def run_ok(kc: BlockingKernelClient, code: str, **kw: Any) -> Executed:
    """``run`` and assert the reply status is ok (showing the error otherwise)."""
    ex = run(kc, code, **kw)
    assert ex.content["status"] == "ok", (
        f"execution of {code!r} failed: {ex.content}\n{describe(ex.iopub)}"
    )
    return ex


def request(
    kc: BlockingKernelClient,
    msg_type: str,
    content: dict[str, Any] | None = None,
    channel: Literal["shell", "control"] = "shell",
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[Msg, list[Msg]]:
    """Send a non-execute request; return its reply and its IOPub busy..idle messages."""
    msg_id = send_request(kc, msg_type, content, channel)
    reply = get_reply(kc, msg_id, channel, timeout=timeout)
    iopub = collect_until_idle(kc, msg_id, timeout)
    return reply, iopub


def sync(kc: BlockingKernelClient, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Barrier: after this, nothing caused by earlier requests is still in flight.

    Sends comm_info (served in order behind every earlier shell request; a kernel_info may be
    answered at once, ahead of a running cell) and discards everything that arrives before
    its reply (shell) and its idle (IOPub). Only for setup (wait_for_ready may leave stray
    kernel_info replies and startup messages behind), never to hide messages a test should
    look at.
    """
    msg_id = kc.comm_info()
    recv_for(kc, "shell", msg_id, timeout=timeout)
    while True:
        m = recv(kc, "iopub", timeout=timeout, what=f"idle for the sync request {msg_id}")
        if parent_id(m) == msg_id and kind(m) == "status:idle":
            break
    box = _mailbox(kc)
    box.pending["shell"].clear()
    box.pending["iopub"].clear()


def is_kernel_status(msg: Msg) -> bool:
    """A status without a parent: the kernel's, not a request's."""
    return msg["header"]["msg_type"] == "status" and not msg["parent_header"]


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
    channels = list(channels)
    leftovers: list[tuple[str, Msg]] = [(c, m) for c in channels for m in _mailbox(kc).pending[c]]
    for c in channels:
        _mailbox(kc).pending[c].clear()
    poller = zmq.Poller()
    sockets = {}
    for c in channels:
        sock = _channel(kc, c).socket
        if sock is not None:
            poller.register(sock, zmq.POLLIN)
            sockets[sock] = c
    deadline = time.monotonic() + window
    while sockets:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for sock, _ in poller.poll(int(remaining * 1000) + 1):
            c = sockets[sock]
            try:
                leftovers.append((c, _channel(kc, c).get_msg(timeout=0)))
            except Empty:
                continue
    leftovers = [(c, m) for c, m in leftovers if not is_kernel_status(m)]
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
    "Executed",
    "Gate",
    "KernelHandle",
    "assert_no_leftovers",
    "assert_sequence",
    "coalesce_streams",
    "collect_rest",
    "collect_until_idle",
    "describe",
    "execute",
    "expect_busy",
    "expect_idle",
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
