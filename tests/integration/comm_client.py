"""The comm tests' layer over ``mpkernel.client``: comm requests as Positron sends them,
IOPub in arrival order, and kernels with a TOML config of their own.

The client is ``mpkernel.client`` (``CommClient``, ``IOPubLog``, ``mpkernel.client.rpc``);
what is here keeps the tests' vocabulary: functions that take a jupyter_client client (``kc``)
or an ``IOPubLog`` made on one, and the assertions the tests share. Comm requests get no
shell reply: everything the kernel says about them is on IOPub, so the send helpers return
the full header of what they sent (I4 compares it with the reply's parent_header), and
``IOPubLog`` keeps every IOPub message in the order the kernel published it, so that tests
can check order *across* parents (events are parentless, comm_close after a crash is
parentless) and not only within one request. It reads through the mailbox of
``tests.frontend.frontend(kc)``, so whatever another helper put aside is read first.

RPCs are sent as Positron sends them: comm data with a string ``method`` and no JSON-RPC
``id``; ``rpc_id=...`` sends an ``id`` as well, which the reply must then echo. ``RPC_SHAPES``
names both shapes for tests parametrized over them.

Kernels with a config of their own (``configured_kernels``) run the test kernelspec with
``MPKERNEL_CONFIG`` pointing at a file; they are registered for the end-of-test leftover
check and always stopped (``tests.frontend.stop_kernel`` proves the process tree is gone).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

from mpkernel.client import IOPubLog as _IOPubLog
from mpkernel.client import RpcCall, RpcRequest, bracket
from mpkernel.client.comms import CommClient, new_comm_id, parent_mismatch
from mpkernel.client.messages import Header, Msg, comm_id_of, is_status, msg_type, status_of
from mpkernel.client.rpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    id_echoed,
    is_event,
    is_frontend_request,
    is_reply,
    is_response_to,
    new_rpc_id,
    rpc_data,
)
from tests.conftest import KERNEL_NAME, register
from tests.frontend import (
    CHANNELS,
    DEFAULT_TIMEOUT,
    STARTUP_TIMEOUT,
    KernelHandle,
    describe,
    frontend,
    parent_id,
    stop_kernel,
    stream_text,
    sync,
    wait_gone,
)

ECHO = "mpkernel.echo"
HEALTH = "mpkernel.health"
ECHO_HANDLER = "mpkernel_workers.echo:EchoHandler"


class IOPubLog(_IOPubLog):
    """``mpkernel.client.IOPubLog`` on the shared frontend of ``kc`` (None: a log over
    ``msgs`` only, for checks on recorded messages)."""

    def __init__(self, kc: BlockingKernelClient | None, msgs: list[Msg] | None = None) -> None:
        super().__init__(frontend(kc).mailbox if kc is not None else None, msgs)
        self.kc = kc

    def comms(self) -> CommClient:
        """Comm requests through this log's client, their answers read into this log."""
        assert self.kc is not None, "a log without a client sends nothing"
        return CommClient(frontend(self.kc), self)


# ---------------------------------------------------------------------------------------------
# sending


def _comms(kc: BlockingKernelClient) -> CommClient:
    """A ``CommClient`` for sending only (its log is never read)."""
    return CommClient(frontend(kc), _IOPubLog(None))


def send_shell(
    kc: BlockingKernelClient,
    msg_type_: str,
    content: dict[str, Any],
    buffers: Sequence[bytes] | None = None,
) -> Header:
    """Send a shell message; returns the header exactly as sent."""
    return frontend(kc).send(msg_type_, content, buffers=buffers)


def send_open(
    kc: BlockingKernelClient,
    target: str,
    data: dict[str, Any] | None = None,
    comm_id: str | None = None,
) -> tuple[str, Header]:
    """comm_open from the frontend; returns (comm_id, request header)."""
    return _comms(kc).send_open(target, data, comm_id)


def send_data(kc: BlockingKernelClient, comm_id: str, data: Any) -> Header:
    """A comm_msg from the frontend (RPC or not, depending on ``data``)."""
    return _comms(kc).send_data(comm_id, data)


#: The two shapes of a request: Positron's (no JSON-RPC ``id``) and one carrying an ``id``.
RPC_SHAPES = ("no-id", "with-id")


def rpc_id_for(shape: str) -> int | None:
    """The ``rpc_id`` argument for a request of ``shape`` (see ``RPC_SHAPES``)."""
    if shape == "no-id":
        return None
    assert shape == "with-id", f"unknown RPC shape {shape!r}; known: {RPC_SHAPES}"
    return new_rpc_id()


def send_rpc(
    kc: BlockingKernelClient, comm_id: str, method: str, params: Any = None, rpc_id: Any = None
) -> tuple[RpcRequest, Header]:
    """A JSON-RPC request on a comm, without ``id`` unless ``rpc_id`` is given; returns the
    request (what ``is_reply`` finds its reply by) and its header."""
    request = _comms(kc).send_rpc(comm_id, method, params, rpc_id)
    return request, request.header


def send_close(
    kc: BlockingKernelClient, comm_id: str, data: dict[str, Any] | None = None
) -> Header:
    return _comms(kc).send_close(comm_id, data)


# ---------------------------------------------------------------------------------------------
# assertions


def assert_id_echoed(reply: Msg, request: RpcRequest) -> None:
    """architecture section 3: a reply carries ``id`` only when its request did, and then the same
    one."""
    data = reply["content"]["data"]
    if request.rpc_id is None:
        assert "id" not in data, f"reply to {request!r} (sent without id) has an id: {data}"
    else:
        assert id_echoed(data, request), f"reply to {request!r} does not echo its id: {data}"


def assert_parent_is(msg: Msg, header: Header) -> None:
    """I4: ``msg``'s parent_header is the request's header, key for key (dates compared as
    instants: jupyter_client parses them on both sides)."""
    mismatch = parent_mismatch(msg, header)
    assert mismatch is None, mismatch


def parent_matches(msg: Msg, header: Header) -> bool:
    """``assert_parent_is`` as a predicate."""
    return parent_mismatch(msg, header) is None


def assert_bracket(msgs: Sequence[Msg], msg_id: str) -> list[Msg]:
    """I3 on a log: among messages parented to ``msg_id``, exactly one busy, first, and one
    idle, last. Returns the messages between them."""
    return bracket(msgs, msg_id)


# ---------------------------------------------------------------------------------------------
# request/response helpers built on the log (see ``mpkernel.client.CommClient``)


def call(
    log: IOPubLog,
    comm_id: str,
    method: str,
    params: Any = None,
    *,
    rpc_id: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> RpcCall:
    """Send an RPC (without ``id`` unless ``rpc_id`` is given), wait for its idle; asserts I3,
    I4, exactly one reply (found by its parent header) and the id echoed (none if none sent)."""
    return log.comms().call(comm_id, method, params, rpc_id=rpc_id, timeout=timeout)


def open_comm(
    log: IOPubLog,
    target: str,
    data: dict[str, Any] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """comm_open from the frontend, wait for its idle; asserts it was not refused."""
    return log.comms().open(target, data, timeout=timeout)


def close_comm(log: IOPubLog, comm_id: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[Msg]:
    return log.comms().close(comm_id, timeout=timeout)


def refused_open(log: IOPubLog, target: str, *, timeout: float = DEFAULT_TIMEOUT) -> Msg:
    """comm_open that the kernel must refuse: returns the comm_close inside its bracket."""
    return log.comms().refused_open(target, timeout=timeout)


def execute_ok(log: IOPubLog, code: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[Msg]:
    """Execute ``code``; wait for its reply (status ok) and idle; returns its bracket."""
    assert log.kc is not None
    client = frontend(log.kc)
    msg_id = client.execute(code)
    log.wait_idle(msg_id, timeout=timeout)
    reply = client.get_reply(msg_id, timeout=timeout)
    assert reply["content"]["status"] == "ok", (
        f"{code!r} failed: {reply['content']}\n{describe(log.parented(msg_id))}"
    )
    return log.parented(msg_id)


def stdout_of(msgs: Iterable[Msg]) -> str:
    return stream_text(msgs, "stdout")


def comm_info(log: IOPubLog, target_name: str | None = None) -> dict[str, Any]:
    """comm_info_request -> the ``comms`` dict (reply and busy/idle consumed)."""
    return log.comms().comm_info(target_name)


def health(log: IOPubLog) -> dict[str, Any]:
    """``mpkernel.health`` ``status`` through a comm opened and closed for the purpose."""
    comm_id = open_comm(log, HEALTH)
    try:
        status: dict[str, Any] = call(log, comm_id, "status").result
    finally:
        close_comm(log, comm_id)
    return status


def worker_status(status: dict[str, Any], name: str) -> dict[str, Any]:
    found = [w for w in status["workers"] if w["name"] == name]
    assert len(found) == 1, f"worker {name!r} in health status: {status['workers']}"
    worker: dict[str, Any] = found[0]
    return worker


# ---------------------------------------------------------------------------------------------
# processes


def process_gone(pid: int, timeout: float = 15.0) -> bool:
    """Wait (psutil) until ``pid`` is gone or a zombie; True if so."""
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return True
    return not wait_gone([proc], timeout)


def kernel_children(handle: KernelHandle) -> list[psutil.Process]:
    try:
        return list(psutil.Process(handle.pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


# ---------------------------------------------------------------------------------------------
# kernels with their own config


def start_configured_kernel(config_path: Path) -> KernelHandle:
    """The test kernelspec with ``MPKERNEL_CONFIG=config_path``; synced and ready."""
    env = {**os.environ, "MPKERNEL_CONFIG": str(config_path)}
    km, kc = start_new_kernel(startup_timeout=STARTUP_TIMEOUT, kernel_name=KERNEL_NAME, env=env)
    assert km.provisioner is not None
    pid = km.provisioner.pid  # type: ignore[attr-defined]
    handle = KernelHandle(KERNEL_NAME, km, kc, pid, CHANNELS)
    try:
        sync(kc, timeout=STARTUP_TIMEOUT)
    except BaseException:
        stop_kernel(handle)
        raise
    return handle


@contextmanager
def configured_kernels(
    node: pytest.Item, directory: Path
) -> Iterator[Callable[[str], KernelHandle]]:
    """``start(toml_text) -> KernelHandle``; every kernel started is stopped on exit and its
    process tree proven gone, and each is under the end-of-test leftover check."""
    handles: list[KernelHandle] = []
    counter = itertools.count()

    def start(toml_text: str) -> KernelHandle:
        path = directory / f"mpkernel-{next(counter)}.toml"
        path.write_text(toml_text, encoding="utf-8")
        handle = start_configured_kernel(path)
        handles.append(handle)
        register(node, handle)
        return handle

    try:
        yield start
    finally:
        errors: list[AssertionError] = []
        for handle in handles:
            try:
                stop_kernel(handle)
            except AssertionError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


__all__ = [
    "ECHO",
    "ECHO_HANDLER",
    "HEALTH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "METHOD_NOT_FOUND",
    "RPC_SHAPES",
    "Header",
    "IOPubLog",
    "Msg",
    "RpcCall",
    "RpcRequest",
    "assert_bracket",
    "assert_id_echoed",
    "assert_parent_is",
    "call",
    "close_comm",
    "comm_id_of",
    "comm_info",
    "configured_kernels",
    "execute_ok",
    "health",
    "is_event",
    "is_frontend_request",
    "is_reply",
    "is_response_to",
    "is_status",
    "kernel_children",
    "msg_type",
    "new_comm_id",
    "new_rpc_id",
    "open_comm",
    "parent_id",
    "parent_matches",
    "process_gone",
    "refused_open",
    "rpc_data",
    "rpc_id_for",
    "send_close",
    "send_data",
    "send_open",
    "send_rpc",
    "send_shell",
    "start_configured_kernel",
    "status_of",
    "stdout_of",
    "worker_status",
]
