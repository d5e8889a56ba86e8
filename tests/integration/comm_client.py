"""Frontend-side helpers for the comm tests: send comm requests, record IOPub in arrival
order, and start kernels with a TOML config of their own.

Comm requests (comm_open, comm_msg, comm_close) get no shell reply: everything the kernel
says about them is on IOPub. So these helpers return the full header of what they sent (I4
compares it with the reply's parent_header), and ``IOPubLog`` keeps every IOPub message in
the order the kernel published it, so that tests can check order *across* parents (events are
parentless, comm_close after a crash is parentless) and not only within one request.

RPCs are sent as Positron sends them (notes/positron-comms.md, fact 1): comm data with a
string ``method`` and no JSON-RPC ``id``; the reply is the comm_msg parented to the request
(``parent_header.msg_id``) whose data has ``result`` or ``error``. ``rpc_id=...`` sends an
``id`` as well, which the reply must then echo; a reply to a request without ``id`` must
carry none. ``RPC_SHAPES`` names both shapes for tests parametrized over them.

``IOPubLog`` reads through ``tests.frontend.recv`` so the mailbox of the shared frontend
helpers is honoured: whatever another helper put aside is read first, in arrival order.

Kernels with a config of their own (``ConfiguredKernels``) run the test kernelspec with
``MPKERNEL_CONFIG`` pointing at a file; they are registered for the end-of-test leftover
check and always stopped (``tests.frontend.stop_kernel`` proves the process tree is gone).
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

from tests.conftest import KERNEL_NAME, register
from tests.frontend import (
    CHANNELS,
    DEFAULT_TIMEOUT,
    STARTUP_TIMEOUT,
    KernelHandle,
    describe,
    kind,
    parent_id,
    recv,
    stop_kernel,
    sync,
    wait_gone,
)

Msg = dict[str, Any]
Header = dict[str, Any]

ECHO = "mpkernel.echo"
HEALTH = "mpkernel.health"
ECHO_HANDLER = "mpkernel_workers.echo:EchoHandler"

#: JSON-RPC error codes (Positron's)
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

_rpc_ids = itertools.count(1)


# ---------------------------------------------------------------------------------------------
# sending


def send_shell(
    kc: BlockingKernelClient,
    msg_type: str,
    content: dict[str, Any],
    buffers: Sequence[bytes] | None = None,
) -> Header:
    """Send a shell message; returns the header exactly as sent."""
    msg = kc.session.msg(msg_type, content)
    if buffers:
        msg["buffers"] = list(buffers)
    kc.shell_channel.send(msg)
    header: Header = msg["header"]
    return header


def new_comm_id() -> str:
    return uuid.uuid4().hex


def send_open(
    kc: BlockingKernelClient,
    target: str,
    data: dict[str, Any] | None = None,
    comm_id: str | None = None,
) -> tuple[str, Header]:
    """comm_open from the frontend; returns (comm_id, request header)."""
    comm_id = comm_id or new_comm_id()
    header = send_shell(
        kc, "comm_open", {"comm_id": comm_id, "target_name": target, "data": data or {}}
    )
    return comm_id, header


def send_data(kc: BlockingKernelClient, comm_id: str, data: Any) -> Header:
    """A comm_msg from the frontend (RPC or not, depending on ``data``)."""
    return send_shell(kc, "comm_msg", {"comm_id": comm_id, "data": data})


#: The two shapes of a request: Positron's (no JSON-RPC ``id``) and one carrying an ``id``.
RPC_SHAPES = ("no-id", "with-id")


def new_rpc_id() -> int:
    """A JSON-RPC id not used before in this test run."""
    return next(_rpc_ids)


def rpc_id_for(shape: str) -> int | None:
    """The ``rpc_id`` argument for a request of ``shape`` (see ``RPC_SHAPES``)."""
    if shape == "no-id":
        return None
    assert shape == "with-id", f"unknown RPC shape {shape!r}; known: {RPC_SHAPES}"
    return new_rpc_id()


def rpc_data(method: str, params: Any = None, rpc_id: Any = None) -> dict[str, Any]:
    """JSON-RPC request data; without an ``id`` (Positron's shape) unless ``rpc_id`` is given.

    ``None`` means "no id": a JSON-RPC ``"id": null`` is not something Positron sends."""
    data: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if rpc_id is not None:
        data["id"] = rpc_id
    if params is not None:
        data["params"] = params
    return data


@dataclass(frozen=True, eq=False)
class RpcRequest:
    """A request as sent: its reply is found by the request's header (``msg_id``), as
    Positron does; ``rpc_id`` is the JSON-RPC id it carried, or None when it carried none."""

    header: Header
    rpc_id: Any = None

    @property
    def msg_id(self) -> str:
        msg_id: str = self.header["msg_id"]
        return msg_id

    def __repr__(self) -> str:
        shape = "no id" if self.rpc_id is None else f"id {self.rpc_id!r}"
        return f"<RPC {self.msg_id} ({shape})>"


def send_rpc(
    kc: BlockingKernelClient, comm_id: str, method: str, params: Any = None, rpc_id: Any = None
) -> tuple[RpcRequest, Header]:
    """A JSON-RPC request on a comm, without ``id`` unless ``rpc_id`` is given; returns the
    request (what ``is_reply`` finds its reply by) and its header."""
    header = send_data(kc, comm_id, rpc_data(method, params, rpc_id))
    return RpcRequest(header, rpc_id), header


def send_close(
    kc: BlockingKernelClient, comm_id: str, data: dict[str, Any] | None = None
) -> Header:
    return send_shell(kc, "comm_close", {"comm_id": comm_id, "data": data or {}})


# ---------------------------------------------------------------------------------------------
# message predicates


def msg_type(msg: Msg) -> str:
    t: str = msg["header"]["msg_type"]
    return t


def comm_id_of(msg: Msg) -> str | None:
    if msg_type(msg) in ("comm_open", "comm_msg", "comm_close"):
        cid: str = msg["content"]["comm_id"]
        return cid
    return None


def is_status(msg: Msg, state: str) -> bool:
    return msg_type(msg) == "status" and msg["content"]["execution_state"] == state


def status_of(msg_id: str, state: str) -> Callable[[Msg], bool]:
    """Predicate: ``status: <state>`` parented to request ``msg_id``."""

    def match(msg: Msg) -> bool:
        return parent_id(msg) == msg_id and is_status(msg, state)

    return match


def is_event(msg: Msg, comm_id: str | None = None) -> bool:
    """A JSON-RPC notification (method, no id) on a comm."""
    if msg_type(msg) != "comm_msg" or (comm_id is not None and comm_id_of(msg) != comm_id):
        return False
    data = msg["content"]["data"]
    return isinstance(data, dict) and "method" in data and "id" not in data


def is_response_to(msg: Msg, request: RpcRequest, comm_id: str | None = None) -> bool:
    """A JSON-RPC response (result or error, no method) parented to ``request``: how Positron
    finds a reply. Says nothing about the ``id``; ``assert_id_echoed`` checks that."""
    if msg_type(msg) != "comm_msg" or (comm_id is not None and comm_id_of(msg) != comm_id):
        return False
    data = msg["content"]["data"]
    return (
        parent_id(msg) == request.msg_id
        and isinstance(data, dict)
        and "method" not in data
        and ("result" in data or "error" in data)
    )


def id_echoed(data: dict[str, Any], request: RpcRequest) -> bool:
    """The reply data echoes the request's id: the same id, or none for a request without."""
    if request.rpc_id is None:
        return "id" not in data
    return "id" in data and data["id"] == request.rpc_id


def assert_id_echoed(reply: Msg, request: RpcRequest) -> None:
    """architecture section 3: a reply carries ``id`` only when its request did, and then the same
    one."""
    data = reply["content"]["data"]
    if request.rpc_id is None:
        assert "id" not in data, f"reply to {request!r} (sent without id) has an id: {data}"
    else:
        assert id_echoed(data, request), f"reply to {request!r} does not echo its id: {data}"


def is_reply(msg: Msg, request: RpcRequest, comm_id: str | None = None) -> bool:
    """The reply to ``request``: a JSON-RPC response parented to it that echoes its id
    (carries none when the request carried none)."""
    return is_response_to(msg, request, comm_id) and id_echoed(msg["content"]["data"], request)


def is_frontend_request(msg: Msg, comm_id: str | None = None) -> bool:
    """A JSON-RPC request from a handler to the frontend (method and id)."""
    if msg_type(msg) != "comm_msg" or (comm_id is not None and comm_id_of(msg) != comm_id):
        return False
    data = msg["content"]["data"]
    return isinstance(data, dict) and "method" in data and "id" in data


def _norm_date(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def assert_parent_is(msg: Msg, header: Header) -> None:
    """I4: ``msg``'s parent_header is the request's header, key for key (dates compared as
    instants: jupyter_client parses them on both sides)."""
    parent = msg["parent_header"]
    assert set(parent) == set(header), (
        f"parent_header keys {sorted(parent)} != request header keys {sorted(header)}"
    )
    for key, value in header.items():
        got = parent[key]
        if key == "date":
            assert _norm_date(got) == _norm_date(value), f"parent date {got!r} != {value!r}"
        else:
            assert got == value, f"parent_header[{key!r}] = {got!r}, request had {value!r}"


def parent_matches(msg: Msg, header: Header) -> bool:
    """``assert_parent_is`` as a predicate."""
    try:
        assert_parent_is(msg, header)
    except AssertionError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# IOPub in arrival order


@dataclass
class IOPubLog:
    """Every IOPub message read through this log, in the order the kernel published them."""

    kc: BlockingKernelClient
    msgs: list[Msg] = field(default_factory=list)
    idle: set[str] = field(default_factory=set)

    def read_one(self, *, timeout: float, what: str) -> Msg:
        m = recv(self.kc, "iopub", timeout=timeout, what=what)
        self.msgs.append(m)
        pid = parent_id(m)
        if pid is not None and is_status(m, "idle"):
            self.idle.add(pid)
        return m

    def read_until(
        self, done: Callable[[], bool], *, timeout: float = DEFAULT_TIMEOUT, what: str
    ) -> None:
        """Read until ``done()``; on timeout, fail showing the tail of what arrived."""
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise AssertionError("deadline passed")  # noqa: TRY301 - one failure path
                self.read_one(timeout=remaining, what=what)
            except AssertionError as exc:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; last messages:\n"
                    f"{describe(self.msgs[-40:])}"
                ) from exc

    def wait_idle(self, *msg_ids: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        ids = set(msg_ids)
        self.read_until(
            lambda: ids <= self.idle, timeout=timeout, what=f"idle for {sorted(ids - self.idle)}"
        )

    def wait_for(
        self, match: Callable[[Msg], bool], *, timeout: float = DEFAULT_TIMEOUT, what: str
    ) -> Msg:
        """The first logged message (already read or new) for which ``match`` is true."""
        start = 0
        deadline = time.monotonic() + timeout
        while True:
            for m in self.msgs[start:]:
                if match(m):
                    return m
            start = len(self.msgs)
            self.read_one(timeout=max(deadline - time.monotonic(), 0.001), what=what)

    def parented(self, msg_id: str) -> list[Msg]:
        return [m for m in self.msgs if parent_id(m) == msg_id]

    def on_comm(self, comm_id: str) -> list[Msg]:
        return [m for m in self.msgs if comm_id_of(m) == comm_id]

    def index(self, msg: Msg) -> int:
        for i, m in enumerate(self.msgs):
            if m is msg:
                return i
        raise ValueError("message not in the log")


def assert_bracket(msgs: Sequence[Msg], msg_id: str) -> list[Msg]:
    """I3 on a log: among messages parented to ``msg_id``, exactly one busy, first, and one
    idle, last. Returns the messages between them."""
    mine = [m for m in msgs if parent_id(m) == msg_id]
    labels = [kind(m) for m in mine]
    assert labels.count("status:busy") == 1, f"busy count for {msg_id}:\n{describe(mine)}"
    assert labels.count("status:idle") == 1, f"idle count for {msg_id}:\n{describe(mine)}"
    assert labels[0] == "status:busy", f"busy is not first for {msg_id}:\n{describe(mine)}"
    assert labels[-1] == "status:idle", f"idle is not last for {msg_id}:\n{describe(mine)}"
    return mine[1:-1]


# ---------------------------------------------------------------------------------------------
# request/response helpers built on the log


@dataclass
class RpcCall:
    request: RpcRequest
    reply: Msg
    bracket: list[Msg]  # the messages parented to the request, busy..idle

    @property
    def rpc_id(self) -> Any:
        """The JSON-RPC id sent, or None (no id: Positron's shape)."""
        return self.request.rpc_id

    @property
    def header(self) -> Header:
        return self.request.header

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.reply["content"]["data"]
        return data

    @property
    def result(self) -> Any:
        assert "result" in self.data, f"{self.request!r} failed: {self.data}"
        return self.data["result"]

    @property
    def error(self) -> dict[str, Any]:
        assert "error" in self.data, f"{self.request!r} succeeded: {self.data}"
        err: dict[str, Any] = self.data["error"]
        return err


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
    request, header = send_rpc(log.kc, comm_id, method, params, rpc_id)
    log.wait_idle(header["msg_id"], timeout=timeout)
    inner = assert_bracket(log.msgs, header["msg_id"])
    replies = [m for m in log.msgs if is_response_to(m, request, comm_id)]
    assert len(replies) == 1, (
        f"{len(replies)} replies to {method} {request!r}; its busy..idle:\n{describe(inner)}"
    )
    (reply,) = replies
    assert reply in inner, f"reply to {method} is not inside its busy/idle:\n{describe(inner)}"
    assert_parent_is(reply, header)
    assert_id_echoed(reply, request)
    return RpcCall(request, reply, log.parented(header["msg_id"]))


def open_comm(
    log: IOPubLog,
    target: str,
    data: dict[str, Any] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """comm_open from the frontend, wait for its idle; asserts it was not refused."""
    comm_id, header = send_open(log.kc, target, data)
    log.wait_idle(header["msg_id"], timeout=timeout)
    inner = assert_bracket(log.msgs, header["msg_id"])
    closes = [m for m in inner if msg_type(m) == "comm_close"]
    assert not closes, f"comm_open on {target} was refused:\n{describe(closes)}"
    return comm_id


def close_comm(log: IOPubLog, comm_id: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[Msg]:
    header = send_close(log.kc, comm_id)
    log.wait_idle(header["msg_id"], timeout=timeout)
    return assert_bracket(log.msgs, header["msg_id"])


def refused_open(log: IOPubLog, target: str, *, timeout: float = DEFAULT_TIMEOUT) -> Msg:
    """comm_open that the kernel must refuse: returns the comm_close inside its bracket."""
    comm_id, header = send_open(log.kc, target)
    log.wait_idle(header["msg_id"], timeout=timeout)
    inner = assert_bracket(log.msgs, header["msg_id"])
    closes = [m for m in inner if msg_type(m) == "comm_close"]
    assert len(closes) == 1, f"comm_open on {target} was not refused:\n{describe(inner)}"
    assert comm_id_of(closes[0]) == comm_id
    return closes[0]


def execute_ok(log: IOPubLog, code: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[Msg]:
    """Execute ``code``; wait for its reply (status ok) and idle; returns its bracket."""
    msg_id: str = log.kc.execute(code)
    log.wait_idle(msg_id, timeout=timeout)
    reply = recv(log.kc, "shell", lambda m: parent_id(m) == msg_id, timeout=timeout)
    assert reply["content"]["status"] == "ok", (
        f"{code!r} failed: {reply['content']}\n{describe(log.parented(msg_id))}"
    )
    return log.parented(msg_id)


def stdout_of(msgs: Iterable[Msg]) -> str:
    return "".join(
        m["content"]["text"]
        for m in msgs
        if msg_type(m) == "stream" and m["content"]["name"] == "stdout"
    )


def comm_info(log: IOPubLog, target_name: str | None = None) -> dict[str, Any]:
    """comm_info_request -> the ``comms`` dict (reply and busy/idle consumed)."""
    kc = log.kc
    content = {} if target_name is None else {"target_name": target_name}
    msg = kc.session.msg("comm_info_request", content)
    kc.shell_channel.send(msg)
    msg_id = msg["header"]["msg_id"]
    reply = recv(kc, "shell", lambda m: parent_id(m) == msg_id, what="comm_info_reply")
    log.wait_idle(msg_id)
    assert_bracket(log.msgs, msg_id)
    assert reply["content"]["status"] == "ok", reply["content"]
    comms: dict[str, Any] = reply["content"]["comms"]
    return comms


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
