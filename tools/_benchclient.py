"""The one frontend every benchmark uses, on every kernel: bare pyzmq sockets + `mpkernel.wire`.

Messages are built with `HeaderFactory` and `encode`, and every received one goes through
`decode` with the connection's `Signer` (signature and replay checked, strict JSON): the
same code path the kernel uses, and the same cost on both sides of every figure.

Sockets: DEALERs for shell and control, a SUB for IOPub, blocking receives in slices of
RECV_SLICE_MS so that a dead kernel (`alive()`) or a deadline ends a wait. The client is
single-threaded and owns its sockets.

Comm requests follow Positron's convention (notes/positron-comms.md fact 1):
`{"jsonrpc": "2.0", "method": ..., "params": {...}}` with NO `id`; the answer is the
comm_msg on the same comm whose parent header is the request. `comm_request` returns it
as it came; `rpc` wants a `result` and turns an `error` (or a kernel that echoed the
request back, i.e. does not answer id-less requests) into `BenchError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import zmq
from _benchkernels import BenchError

from mpkernel.wire import (
    BadJson,
    HeaderFactory,
    Message,
    Signer,
    WireError,
    decode,
    encode,
    join_frames,
    split_identities,
    split_parts,
)

__all__ = [
    "Channel",
    "Client",
    "CommAnswer",
    "Exchange",
    "Prepared",
    "Received",
    "execute_content",
    "rpc_request",
]

Channel = Literal["shell", "control"]
Context = zmq.Context[zmq.Socket[bytes]]

# How often a client socket retries a refused TCP connect. libzmq's default is 100 ms, which
# would quantise a cold start measured in hundreds of ms; 2 ms costs nothing measurable.
RECONNECT_IVL_MS = 2
# A send that cannot be handed to a connection within this long means the kernel is gone.
SEND_TIMEOUT_MS = 5000
RECV_SLICE_MS = 500


@dataclass(frozen=True, slots=True)
class Received:
    """One decoded message and when it was received (`time.perf_counter_ns`)."""

    msg: Message[dict[str, Any]]
    at_ns: int

    @property
    def msg_type(self) -> str:
        return self.msg.header.msg_type

    @property
    def content(self) -> dict[str, Any]:
        return self.msg.content

    @property
    def parent_id(self) -> str | None:
        parent = self.msg.parent_header
        return None if parent is None else parent.msg_id

    def is_status(self, state: str) -> bool:
        return self.msg_type == "status" and self.content.get("execution_state") == state


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request built and signed ahead of its send (so the clock does not include that)."""

    msg_id: str
    frames: list[bytes]


@dataclass(slots=True)
class Exchange:
    """One request and what came back for it (times from `time.perf_counter_ns`)."""

    msg_id: str
    sent_ns: int
    idle_ns: int
    reply: Received | None

    @property
    def to_idle_ns(self) -> int:
        return self.idle_ns - self.sent_ns


@dataclass(slots=True)
class CommAnswer:
    """A comm request's answer: the comm_msg on its comm parented to it, and its exchange."""

    data: Any
    at_ns: int
    exchange: Exchange

    @property
    def done_ns(self) -> int:
        """When both the answer and the idle had arrived."""
        return max(self.at_ns, self.exchange.idle_ns)


IOPubHandler = Callable[[Received], None]


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("ascii")


def execute_content(code: str) -> dict[str, Any]:
    """What a notebook frontend sends for a cell (history on, no stdin)."""
    return {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


def rpc_request(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A comm request in Positron's shape: JSON-RPC 2.0 without `id`."""
    return {"jsonrpc": "2.0", "method": method, "params": dict(params)}


class Client:
    """A frontend over bare pyzmq sockets and `mpkernel.wire`, identical for every kernel."""

    def __init__(
        self,
        info: Mapping[str, Any],
        *,
        context: Context,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        """`info` is the connection file's content; `alive`, if given, is asked whenever a
        wait stalls, so a dead kernel fails fast."""
        self._alive = alive
        key = info.get("key", b"")
        key = key if isinstance(key, bytes) else str(key).encode()
        try:
            self.signer = Signer(key, str(info.get("signature_scheme", "hmac-sha256")))
        except ValueError as exc:
            raise BenchError(str(exc)) from None
        self.headers = HeaderFactory(uuid.uuid4().hex, "bench")
        transport = info.get("transport", "tcp")
        ip = info.get("ip", "127.0.0.1")
        server_key = info.get("curve_publickey") or None
        # With CurveZMQ keys in the connection file: a client key pair of our own, the
        # kernel's public key as the server key (as jupyter_client's clients do).
        client_keys = zmq.curve_keypair() if server_key else None

        def make(kind: int, port_key: str) -> zmq.Socket[bytes]:
            sock: zmq.Socket[bytes] = context.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            if client_keys is not None and server_key is not None:
                public, secret = client_keys
                sock.setsockopt(zmq.CURVE_SERVERKEY, _as_bytes(server_key))
                sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
                sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
            sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
            sock.setsockopt(zmq.RCVTIMEO, RECV_SLICE_MS)
            if kind == zmq.DEALER:
                sock.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
                # Hand a message only to a completed connection: a send before the kernel
                # has bound its port fails with EAGAIN instead of waiting in a queue.
                sock.setsockopt(zmq.IMMEDIATE, 1)
            else:
                sock.setsockopt(zmq.RCVHWM, 0)  # never drop IOPub on our side
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            port = info[port_key]
            sock.connect(f"ipc://{ip}-{port}" if transport == "ipc" else f"tcp://{ip}:{port}")
            return sock

        # Called with every IOPub message any wait receives, whatever its parent (`watch`).
        self.observers: list[IOPubHandler] = []
        #: the subshell shell requests are addressed to (`on_subshell`); None: the main shell
        self.subshell_id: str | None = None
        self.shell = make(zmq.DEALER, "shell_port")
        self.control = make(zmq.DEALER, "control_port")
        self.iopub = make(zmq.SUB, "iopub_port")
        self._channels: dict[str, zmq.Socket[bytes]] = {
            "shell": self.shell,
            "control": self.control,
        }

    def close(self) -> None:
        """Close the three sockets at once (no linger)."""
        for sock in (self.shell, self.control, self.iopub):
            sock.close(linger=0)

    # ---- sending

    def prepare(
        self, msg_type: str, content: Mapping[str, Any], buffers: Sequence[bytes] = ()
    ) -> Prepared:
        """A signed request with a fresh header, ready to send (addressed to `subshell_id`
        when one is set)."""
        header = self.headers.make(msg_type)
        if self.subshell_id is not None:
            header = dataclasses.replace(header, extra={"subshell_id": self.subshell_id})
        msg = Message(header, None, {}, content, tuple(buffers))
        return Prepared(header.msg_id, encode(msg, self.signer))

    @contextlib.contextmanager
    def on_subshell(self, subshell_id: str) -> Iterator[None]:
        """Requests prepared inside the block go to the subshell `subshell_id`."""
        previous, self.subshell_id = self.subshell_id, subshell_id
        try:
            yield
        finally:
            self.subshell_id = previous

    def send_prepared(self, channel: Channel, prepared: Prepared, *, block: bool = True) -> bool:
        """Send without waiting for anything back.

        Blocking: BenchError if the kernel takes no message within SEND_TIMEOUT_MS.
        `block=False`: False at once when the send would wait (high-water mark reached),
        so a pipelining caller can read IOPub in between.
        """
        sock = self._channels[channel]
        try:
            sock.send_multipart(prepared.frames, 0 if block else zmq.NOBLOCK)
        except zmq.Again:
            if not block:
                return False
            raise BenchError(
                f"could not send within {SEND_TIMEOUT_MS} ms: no connection to the kernel"
            ) from None
        return True

    def send(self, channel: Channel, msg_type: str, content: Mapping[str, Any]) -> str:
        """Build and send a request; its msg_id."""
        prepared = self.prepare(msg_type, content)
        self.send_prepared(channel, prepared)
        return prepared.msg_id

    # ---- receiving

    def _decode(self, frames: list[bytes]) -> Received:
        at_ns = time.perf_counter_ns()
        try:
            return Received(decode(frames, self.signer), at_ns)
        except WireError as exc:
            lenient = self._with_empty_parent(frames) if isinstance(exc, BadJson) else None
            if lenient is None:
                raise BenchError(
                    f"the kernel sent a message mpkernel.wire refuses: {exc!r}"
                ) from None
            return Received(decode(lenient, self.signer), at_ns)

    def _with_empty_parent(self, frames: list[bytes]) -> list[bytes] | None:
        """The frames with a `null` parent header or metadata as `{}`, signed again; None if
        that is not what was wrong. xeus-python sends `null` for an empty parent or metadata,
        which the spec spells `{}` and jupyter_client accepts; the kernel-side decoder stays
        strict."""
        identities, parts = split_identities(frames)
        _, json_parts, buffers = split_parts(parts)
        nulls = [i for i in (1, 2) if bytes(json_parts[i]).strip() == b"null"]
        if not nulls:
            return None
        fixed = tuple(b"{}" if i in nulls else bytes(p) for i, p in enumerate(json_parts))
        return join_frames(identities, self.signer.sign(fixed), fixed, buffers)

    def _check_alive(self, what: str) -> None:
        if self._alive is not None and not self._alive():
            raise BenchError(f"the kernel process exited while waiting for {what}")

    def _recv_by(self, sock: zmq.Socket[bytes], deadline: float, what: str) -> Received:
        """Blocking receive that gives up (BenchError) at `deadline` (time.monotonic)."""
        while True:
            try:
                frames = sock.recv_multipart()
            except zmq.Again:
                self._check_alive(what)
                if time.monotonic() > deadline:
                    raise BenchError(f"timed out waiting for {what}") from None
            else:
                got = self._decode(frames)
                if sock is self.iopub:
                    for observer in self.observers:
                        observer(got)
                return got

    def recv_iopub(self, *, timeout_s: float) -> Received | None:
        """The next IOPub message, whatever its parent, or None after `timeout_s`."""
        if self.iopub.poll(max(0, int(timeout_s * 1000.0))):
            got = self._decode(self.iopub.recv_multipart())
            for observer in self.observers:
                observer(got)
            return got
        return None

    @contextlib.contextmanager
    def watch(self, observer: IOPubHandler) -> Iterator[None]:
        """Let `observer` see every IOPub message received meanwhile, by any wait."""
        self.observers.append(observer)
        try:
            yield
        finally:
            self.observers.remove(observer)

    def wait_iopub(self, until: Callable[[Received], bool], *, timeout_s: float, what: str) -> None:
        """Read IOPub (any parent) until `until(msg)` is true; BenchError at the timeout."""
        deadline = time.monotonic() + timeout_s
        while not until(self._recv_by(self.iopub, deadline, what)):
            pass

    # ---- request -> idle (-> reply)

    def exchange(
        self,
        channel: Channel,
        prepared: Prepared,
        *,
        timeout_s: float,
        on_iopub: IOPubHandler | None = None,
        expect_reply: bool = True,
    ) -> Exchange:
        """Send; wait for the idle status parented to the request, then for its reply.

        The clock starts just before the send and stops when the idle is received. Every
        other IOPub message parented to the request goes to `on_iopub`; messages parented
        to anything else are dropped. `expect_reply=False` for comm messages (no reply).
        """
        msg_id = prepared.msg_id
        deadline = time.monotonic() + timeout_s
        what = f"the idle status for {msg_id}"
        sent_ns = time.perf_counter_ns()
        self.send_prepared(channel, prepared)
        idle_ns = 0
        while not idle_ns:
            got = self._recv_by(self.iopub, deadline, what)
            if got.parent_id != msg_id:
                continue
            if got.msg_type == "status":
                if got.content.get("execution_state") == "idle":
                    idle_ns = got.at_ns
            elif on_iopub is not None:
                on_iopub(got)
        reply: Received | None = None
        sock = self._channels[channel]
        while expect_reply and reply is None:
            got = self._recv_by(sock, deadline, f"the reply to {msg_id}")
            if got.parent_id == msg_id:
                reply = got
        return Exchange(msg_id, sent_ns, idle_ns, reply)

    def collect_iopub(
        self, parent_id: str, on_iopub: IOPubHandler, *, until: Callable[[], bool], timeout_s: float
    ) -> bool:
        """Keep passing IOPub messages parented to a request to `on_iopub` until `until()`.

        For output that arrives after the idle (an ordering bug, but a count must still be
        right). Whether `until()` became true within the timeout.
        """
        deadline = time.monotonic() + timeout_s
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            got = self.recv_iopub(timeout_s=left)
            if got is not None and got.parent_id == parent_id:
                on_iopub(got)
        return True

    def execute(
        self, code: str, *, timeout_s: float, on_iopub: IOPubHandler | None = None
    ) -> Exchange:
        """One execute_request to its idle and reply; BenchError unless the reply says ok."""
        ex = self.exchange(
            "shell",
            self.prepare("execute_request", execute_content(code)),
            timeout_s=timeout_s,
            on_iopub=on_iopub,
        )
        content = {} if ex.reply is None else ex.reply.content
        if content.get("status") != "ok":
            first = code.strip().splitlines()[0] if code.strip() else ""
            raise BenchError(
                f"execute {first!r} replied status={content.get('status')!r}: "
                f"{content.get('ename', '')} {content.get('evalue', '')}"
            )
        return ex

    # ---- comms

    def comm_open(
        self, target: str, *, timeout_s: float, data: Mapping[str, Any] | None = None
    ) -> str:
        """comm_open from the client, waited for until its idle; BenchError if refused."""
        comm_id = uuid.uuid4().hex
        closed: list[Any] = []

        def watch(got: Received) -> None:
            if got.msg_type == "comm_close" and got.content.get("comm_id") == comm_id:
                closed.append(got.content.get("data"))

        content = {"comm_id": comm_id, "target_name": target, "data": dict(data or {})}
        self.exchange(
            "shell",
            self.prepare("comm_open", content),
            timeout_s=timeout_s,
            on_iopub=watch,
            expect_reply=False,
        )
        if closed:
            raise BenchError(f"comm_open on {target!r} was answered by comm_close {closed[0]}")
        return comm_id

    def comm_close(self, comm_id: str, *, timeout_s: float) -> None:
        """comm_close from the client, waited for until its idle."""
        content = {"comm_id": comm_id, "data": {}}
        self.exchange(
            "shell", self.prepare("comm_close", content), timeout_s=timeout_s, expect_reply=False
        )

    def prepare_comm_request(
        self, comm_id: str, method: str, params: Mapping[str, Any]
    ) -> Prepared:
        """A comm_msg carrying a Positron-style request (no JSON-RPC id)."""
        return self.prepare("comm_msg", {"comm_id": comm_id, "data": rpc_request(method, params)})

    def comm_request(
        self,
        comm_id: str,
        method: str,
        params: Mapping[str, Any],
        *,
        timeout_s: float,
        late_s: float = 2.0,
    ) -> CommAnswer:
        """A comm request, timed from its send until its answer and its idle have arrived.

        The answer is the first comm_msg on `comm_id` parented to the request. One that
        comes after the idle is waited for `late_s` more (BenchError if it never comes; the
        caller may count a late answer through `CommAnswer.at_ns > exchange.idle_ns`).
        """
        answers: list[Received] = []
        closed: list[Any] = []

        def watch(got: Received) -> None:
            if got.content.get("comm_id") != comm_id:
                return
            if got.msg_type == "comm_msg" and not answers:
                answers.append(got)
            elif got.msg_type == "comm_close":
                closed.append(got.content.get("data"))

        prepared = self.prepare_comm_request(comm_id, method, params)
        ex = self.exchange(
            "shell", prepared, timeout_s=timeout_s, on_iopub=watch, expect_reply=False
        )
        if closed:
            raise BenchError(f"comm {comm_id} was closed during {method}: {closed[0]}")
        if not answers:
            self.collect_iopub(
                prepared.msg_id, watch, until=lambda: bool(answers), timeout_s=late_s
            )
            if not answers:
                raise BenchError(f"no answer to {method} on comm {comm_id}")
        return CommAnswer(answers[0].content.get("data"), answers[0].at_ns, ex)

    def rpc(self, comm_id: str, method: str, params: Mapping[str, Any], *, timeout_s: float) -> Any:
        """A comm request whose answer must be `{"result": ...}`; that result."""
        return rpc_result(
            self.comm_request(comm_id, method, params, timeout_s=timeout_s).data, method
        )

    # ---- readiness

    def wait_for_kernel_info(self, *, timeout_s: float, resend_s: float = 0.2) -> Received:
        """Send kernel_info_request on shell (again every `resend_s`) until one is answered.

        While the kernel has not bound its shell port the send fails at once (IMMEDIATE),
        so the request goes out within a few ms of the port opening.
        """
        pending: set[str] = set()
        last_sent = -math.inf
        deadline = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            if now > deadline:
                raise BenchError(f"no kernel_info_reply within {timeout_s:g} s")
            self._check_alive("the first kernel_info_reply")
            if now - last_sent >= resend_s:
                prepared = self.prepare("kernel_info_request", {})
                if self.send_prepared("shell", prepared, block=False):
                    pending.add(prepared.msg_id)
                    last_sent = now
            if self.shell.poll(2):
                got = self._decode(self.shell.recv_multipart())
                if got.parent_id in pending:
                    if got.msg_type != "kernel_info_reply":
                        raise BenchError(f"expected kernel_info_reply, got {got.msg_type}")
                    return got

    def wait_ready(self, *, timeout_s: float) -> dict[str, Any]:
        """Shell answers and IOPub delivers; the kernel_info_reply content.

        A SUB socket misses what is published before its subscription reaches the kernel,
        so kernel_info is repeated until an IOPub message for one of them arrives.
        """
        deadline = time.monotonic() + timeout_s
        info = self.wait_for_kernel_info(timeout_s=timeout_s).content
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"IOPub delivered nothing within {timeout_s:g} s")
            self._check_alive("IOPub to deliver")
            msg_id = self.send("shell", "kernel_info_request", {})
            stop = time.monotonic() + min(0.2, left)
            while (left_s := stop - time.monotonic()) > 0:
                got = self.recv_iopub(timeout_s=left_s)
                if got is not None and got.parent_id == msg_id:
                    # Subscribed. One clean round trip drains what is still in flight.
                    self.exchange("shell", self.prepare("kernel_info_request", {}), timeout_s=left)
                    return info


def rpc_result(data: Any, method: str) -> Any:
    """The `result` of a JSON-RPC answer; BenchError for an error or an echoed request."""
    if isinstance(data, dict):
        if "result" in data:
            return data["result"]
        if "error" in data:
            raise BenchError(f"RPC {method} failed: {data['error']}")
        if data.get("method") == method:
            raise BenchError(
                f"RPC {method} came back as sent: the kernel echoed an id-less request "
                "instead of answering it (Positron's convention: no JSON-RPC id)"
            )
    raise BenchError(f"RPC {method} answered {data!r}")
