"""A frontend that comes back with the same identity is served (docs/architecture.md section 5).

jupyter_client connects shell, control and stdin with the session id as routing id, and all
clients of one ``KernelManager`` share it. The kernel's ROUTERs hand a known id over to the
newer connection (``ROUTER_HANDOVER``), so a second client with the same session, or one
that replaces a killed or closed client, is answered at once, and replies still owed (a
running cell's execute_reply, a prompt's answer) follow the id to the new connection.

Presence is counted on IOPub: a takeover on shell, control or stdin is not a departure.
As long as the newcomer's IOPub subscription is counted before the old client leaves, no
frontend "left": a pending ``input()`` is answered from the new connection and a pending
request to the frontend is answered by it. When the old client dies first, the departure
policy applies as in test_disconnect.py, and ``disconnect_grace_s`` keeps the comms for the
client that comes back. ``input()`` whose frontend is gone for good still fails fast
(test_disconnect.py, test_stdin.py).

Every test runs over TCP and over IPC. Clients that must die for real are processes of
their own (``CLIENT``), SIGKILLed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil
import pytest
import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session

from tests.conftest import KERNEL_NAME
from tests.frontend import (
    DEFAULT_TIMEOUT,
    PROCESS_EXIT_TIMEOUT,
    STARTUP_TIMEOUT,
    Gate,
    execute,
    get_reply,
    kind,
    parent_id,
    process_tree,
    recv,
    recv_for,
    send_request,
    wait_gone,
)
from tests.integration.comm_client import (
    ECHO,
    IOPubLog,
    assert_parent_is,
    call,
    comm_info,
    health,
    is_frontend_request,
    is_reply,
    msg_type,
    open_comm,
    send_rpc,
    stdout_of,
)
from tests.integration.test_disconnect import KernelLog, _stop_client

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

TRANSPORTS = ("tcp", "ipc")
#: long enough that no test outlives it
GRACE_S = 60.0

Msg = dict[str, Any]

#: A frontend in a process of its own: ``python -c CLIENT CONNECTION_FILE SESSION``. It
#: connects every channel but heartbeat with the given session (so the routing id of the
#: test's own clients), waits for its welcome and a kernel_info reply, opens an echo comm,
#: prints ``{"comm_id": ...}`` and waits until it is killed.
CLIENT = """
import json, sys
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.session import Session
from mpkernel.client import CommClient, Frontend

kc = BlockingKernelClient(connection_file=sys.argv[1], session=Session(session=sys.argv[2]))
kc.load_connection_file()
kc.start_channels(hb=False)
frontend = Frontend(kc)
frontend.wait_welcome()
frontend.get_reply(frontend.send_request("kernel_info_request"))
comm_id = CommClient(frontend).open("mpkernel.echo")
print(json.dumps({"comm_id": comm_id}), flush=True)
sys.stdin.read()
"""


@dataclass
class Kernel:
    km: KernelManager
    log: KernelLog

    @property
    def session_id(self) -> str:
        session: str = self.km.session.session
        return session


class Harness:
    """The kernels, clients and client processes of one test; ``close`` stops them all
    and proves with psutil that no process is left."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.kernels: list[Kernel] = []
        self.clients: list[BlockingKernelClient] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, transport: str, kernel_config: str = "") -> Kernel:
        path = self.directory / f"mpkernel-{len(self.kernels)}.toml"
        path.write_text(kernel_config, encoding="utf-8")
        km = KernelManager(kernel_name=KERNEL_NAME, transport=transport)
        if transport == "ipc":
            # The socket files live beside the connection file, in the private runtime dir.
            km.ip = str(self.directory / f"kernel-{len(self.kernels)}-ipc")
        env = {**os.environ, "MPKERNEL_CONFIG": str(path)}
        km.start_kernel(env=env, stderr=subprocess.PIPE)
        process = km.provisioner.process  # type: ignore[union-attr]
        kernel = Kernel(km, KernelLog(process.stderr))
        self.kernels.append(kernel)
        return kernel

    def client(self, kernel: Kernel) -> IOPubLog:
        """A full frontend (no heartbeat) with the kernel's session, so the routing id every
        ``km.client()`` has; returns once it has its ``iopub_welcome``. A Session of its own
        (same id): a shared one would reject the IOPub messages both clients receive as
        duplicate signatures."""
        km = kernel.km
        session = Session(
            session=kernel.session_id,
            key=km.session.key,
            signature_scheme=km.session.signature_scheme,
        )
        # msg_ids are "<session>_<pid>_<count>": two clients of one session in one process
        # would reuse ids (a real reconnecting frontend is another process, or the same
        # Session), and replies would be matched to the wrong request.
        session.message_count = 1_000_000 * (len(self.clients) + 1)
        kc = km.client(session=session)
        self.clients.append(kc)
        kc.start_channels(hb=False)
        log = IOPubLog(kc)
        log.wait_for(
            lambda m: msg_type(m) == "iopub_welcome", timeout=STARTUP_TIMEOUT, what="welcome"
        )
        return log

    def spawn(self, kernel: Kernel) -> tuple[subprocess.Popen[bytes], str]:
        """A client process with the kernel's session and an echo comm; its comm id."""
        stderr = (self.directory / f"client-{len(self.processes)}.stderr").open("wb")
        with stderr:
            proc = subprocess.Popen(
                [sys.executable, "-c", CLIENT, kernel.km.connection_file, kernel.session_id],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        self.processes.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the client has its own 30 s deadlines, then exits
        assert line, f"the client process failed: {Path(stderr.name).read_text()}"
        comm_id: str = json.loads(line)["comm_id"]
        return proc, comm_id

    def close(self) -> None:
        errors: list[str] = []
        leftovers: list[psutil.Process] = []
        for proc in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=PROCESS_EXIT_TIMEOUT)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        for kc in self.clients:
            _stop_client(kc)
        for kernel in self.kernels:
            km = kernel.km
            if km.has_kernel:
                assert km.provisioner is not None
                leftovers.extend(process_tree(km.provisioner.pid))  # type: ignore[attr-defined]
                try:
                    km.shutdown_kernel(now=True)
                except Exception as exc:  # noqa: BLE001 - the survivors check below decides
                    errors.append(f"shutdown_kernel failed: {exc!r}")
        survivors = wait_gone(leftovers, PROCESS_EXIT_TIMEOUT)
        for p in survivors:
            with contextlib.suppress(psutil.Error):
                errors.append(f"left behind: pid {p.pid}: {' '.join(p.cmdline())}")
                p.kill()
        wait_gone(survivors, PROCESS_EXIT_TIMEOUT)
        for kernel in self.kernels:
            kernel.log.join()
        assert not errors, f"teardown: {errors}"


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


# ---------------------------------------------------------------------------------------------
# what "served" means


def assert_served(log: IOPubLog, replaced: BlockingKernelClient | None = None) -> None:
    """Shell, control and stdin of this client are answered: kernel_info on shell and
    control, then an ``input()`` prompt that arrives here and is answered from here.

    A prompt sent before the kernel has taken this client's stdin link in still goes to
    the connection it replaces (``replaced``, while alive), or fails at once if that one is
    gone; so the probe is repeated until a prompt arrives here. A prompt that went to
    ``replaced`` is answered from this client: same routing id, so the answer is taken."""
    kc = log.kc
    channels: tuple[Literal["shell", "control"], ...] = ("shell", "control")
    for channel in channels:
        msg_id = send_request(kc, "kernel_info_request", channel=channel)
        reply = get_reply(kc, msg_id, channel)
        assert reply["content"]["status"] == "ok", reply["content"]
        log.wait_idle(msg_id)
    poller = zmq.Poller()
    here, shell = kc.stdin_channel, kc.shell_channel
    there = replaced.stdin_channel if replaced is not None else None
    for chan in (here, shell, there):
        if chan is not None:
            poller.register(chan.socket, zmq.POLLIN)
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while time.monotonic() < deadline:
        msg_id = execute(kc, "print(input('> '))", allow_stdin=True, stop_on_error=False)
        while (remaining := deadline - time.monotonic()) > 0:
            ready = dict(poller.poll(int(remaining * 1000) + 1))
            if here.socket in ready and parent_id(here.get_msg(timeout=0)) == msg_id:
                kc.input("here")
                assert get_reply(kc, msg_id)["content"]["status"] == "ok"
                log.wait_idle(msg_id)
                assert stdout_of(log.parented(msg_id)) == "here\n"
                return
            if (
                there is not None
                and there.socket in ready
                and parent_id(there.get_msg(timeout=0)) == msg_id
            ):
                kc.input("")  # taken from this client's link: it holds the id now
            if shell.socket in ready and parent_id(shell.get_msg(timeout=0)) == msg_id:
                log.wait_idle(msg_id)
                break  # answered or failed before this link was taken in: probe again
    raise AssertionError(f"no input_request reached the client within {DEFAULT_TIMEOUT}s")


def assert_no_departure_of_the_last(kernel: Kernel) -> None:
    assert kernel.log.count(KernelLog.GONE) == 0, "a takeover was taken for a disconnect"


# ---------------------------------------------------------------------------------------------
# the tests


def test_second_client_with_the_same_session_is_served(harness: Harness, transport: str) -> None:
    """The reported example: ``km.client()`` twice. The second is served on shell,
    control and stdin while the first is alive, and still after the first closes. Both
    subscribe to IOPub, so the count goes 1 -> 2 -> 1: no frontend left."""
    kernel = harness.start(transport)
    first = harness.client(kernel)
    assert_served(first)
    second = harness.client(kernel)
    assert_served(second, replaced=first.kc)
    _stop_client(first.kc)
    assert_served(second)
    status = health(second)
    assert (status["iopub_subscribers"], status["iopub_departures"]) == (1, 1), status
    assert_no_departure_of_the_last(kernel)


@pytest.mark.crash
def test_killed_client_replaced_at_once(harness: Harness, transport: str) -> None:
    """A client process is SIGKILLed and a client with the same session connects at once,
    without waiting for the kernel to notice: it is served, and the grace keeps the killed
    client's comm for it (a reload): it answers RPCs and comm_info lists it."""
    kernel = harness.start(transport, f"[kernel]\ndisconnect_grace_s = {GRACE_S}\n")
    proc, comm_id = harness.spawn(kernel)
    proc.send_signal(signal.SIGKILL)
    log = harness.client(kernel)
    proc.wait(timeout=PROCESS_EXIT_TIMEOUT)
    assert_served(log)
    assert comm_id in comm_info(log)
    assert call(log, comm_id, "echo", {"n": 1}).result == {"n": 1}
    assert not [m for m in log.msgs if msg_type(m) == "comm_close"]


def test_closed_client_replaced_by_a_new_one(harness: Harness, transport: str) -> None:
    """The first client closes every channel; a new one with the same identity is served,
    and the kernel keeps the namespace."""
    kernel = harness.start(transport)
    first = harness.client(kernel)
    msg_id = execute(first.kc, "x = 42")
    assert get_reply(first.kc, msg_id)["content"]["status"] == "ok"
    _stop_client(first.kc)
    kernel.log.wait_for(KernelLog.GONE)
    second = harness.client(kernel)
    assert_served(second)
    msg_id = execute(second.kc, "print(x)")
    assert get_reply(second.kc, msg_id)["content"]["status"] == "ok"
    second.wait_idle(msg_id)
    assert stdout_of(second.parented(msg_id)) == "42\n"


def test_pending_input_answered_from_the_new_connection(harness: Harness, transport: str) -> None:
    """A cell waits in ``input()``; a client with the same session connects, then the
    first one closes. The answer comes from the new connection; the cell's execute_reply,
    owed to the routing id, arrives there too."""
    kernel = harness.start(transport)
    first = harness.client(kernel)
    assert_served(first)  # its stdin is routable
    msg_id = execute(
        first.kc, "answer = input('waiting> ')\nprint('got', answer)", allow_stdin=True
    )
    prompt = recv_for(first.kc, "stdin", msg_id, what="the input_request")
    assert kind(prompt) == "input_request"

    second = harness.client(kernel)
    _stop_client(first.kc)
    second.kc.input("from the new connection")
    reply = get_reply(second.kc, msg_id)
    assert reply["content"]["status"] == "ok", reply["content"]
    second.wait_idle(msg_id)
    assert stdout_of(second.parented(msg_id)) == "got from the new connection\n"
    assert_no_departure_of_the_last(kernel)


def test_requests_in_flight_across_a_takeover_answer_the_new_connection(
    harness: Harness, transport: str
) -> None:
    """The first client has a comm RPC in flight (its handler waits for an answer from the
    frontend) and a cell running (blocked on a gate). A client with the same session takes
    over and the first closes. The new connection answers the handler's request and gets
    the RPC's reply, parented to the first client's request; it also gets the running
    cell's execute_reply on shell."""
    kernel = harness.start(transport)
    first = harness.client(kernel)
    comm_id = open_comm(first, ECHO)
    rpc, ask = send_rpc(first.kc, comm_id, "ask_frontend", {"method": "test.question"})
    request = first.wait_for(
        lambda m: is_frontend_request(m, comm_id), what="the handler's request to the frontend"
    )["content"]["data"]
    with Gate() as gate:
        cell = execute(first.kc, gate.code + "print('cell done')")
        gate.wait_blocked()

        second = harness.client(kernel)
        _stop_client(first.kc)
        answer = second.comms().answer(comm_id, request["id"], 7)
        second.wait_idle(answer["msg_id"], ask["msg_id"])
        (reply,) = [m for m in second.msgs if is_reply(m, rpc, comm_id)]
        assert reply["content"]["data"]["result"] == 7, reply["content"]
        assert_parent_is(reply, ask)

        gate.open()
        cell_reply = recv(
            second.kc, "shell", lambda m: parent_id(m) == cell, what="the cell's execute_reply"
        )
        assert cell_reply["content"]["status"] == "ok", cell_reply["content"]
        second.wait_idle(cell)
    assert stdout_of(second.parented(cell)) == "cell done\n"
    assert comm_id in comm_info(second)
    assert_no_departure_of_the_last(kernel)
