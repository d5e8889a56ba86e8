"""Shared helpers for the benchmarks in tools/ (bench_kernel.py, later bench_comm.py, ...).

What lives here:
- `KernelProcess` / `KernelSet`: start a kernel from its kernelspec through jupyter_client's
  `KernelManager`, and shut every started kernel down again, killing its process group and
  any escaped descendants if a graceful shutdown does not finish. `KernelSet` is a context
  manager, so an error or a KeyboardInterrupt never leaves a kernel behind.
- `RawClient`: one small frontend over bare pyzmq sockets (shell and control DEALERs, an
  IOPub SUB) with blocking receives. It signs what it sends and does not check the
  signatures on what it receives in its hot loops (`verify` exists for spot checks). The
  point is that every benchmark talks to every kernel through the same, cheap client: its
  cost is part of every figure, on both sides alike.
- statistics (`percentile`, `median`), the environment header and a plain-text table.

Nothing here prints: the benchmarks decide what to show.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal, TypeVar

import psutil
import zmq
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import KernelManager

S = TypeVar("S")
R = TypeVar("R")

__all__ = [
    "BenchError",
    "Channel",
    "Exchange",
    "JsonDict",
    "KernelProcess",
    "KernelSet",
    "RawClient",
    "RawMessage",
    "drive_benchmark",
    "environment_info",
    "kernelspec_argv",
    "median",
    "percentile",
    "render_table",
    "sigterm_raises",
]

JsonDict = dict[str, Any]
Channel = Literal["shell", "control"]

DELIM = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.3"
# How often a client socket retries a refused TCP connect. libzmq's default is 100 ms, which
# would quantise a cold start measured in hundreds of ms; 2 ms costs nothing measurable.
RECONNECT_IVL_MS = 2
# A send that cannot be handed to a connection within this long means the kernel is gone.
SEND_TIMEOUT_MS = 5000


class BenchError(RuntimeError):
    """A benchmark could not produce a figure (kernel did not start, timed out, ...)."""


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; first column left-aligned, the rest right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


# --------------------------------------------------------------------------- environment


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_info() -> dict[str, str]:
    """What a reader needs to compare two benchmark runs: machine, load, library versions."""
    return {
        "cpu_count": str(os.cpu_count()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "pyzmq": zmq.pyzmq_version(),
        "libzmq": zmq.zmq_version(),
        "jupyter_client": _dist_version("jupyter_client"),
        "ipykernel": _dist_version("ipykernel"),
        "mpkernel": _dist_version("mpkernel"),
        "loadavg_1m": f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a",
    }


def kernelspec_argv(kernel_name: str) -> list[str]:
    """The kernelspec's argv, or BenchError naming how to get the kernelspec."""
    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        hint = (
            " (install it with `mpkernel install --sys-prefix --name mpkernel`)"
            if kernel_name == "mpkernel"
            else ""
        )
        raise BenchError(
            f"no kernelspec named {kernel_name!r}{hint}; `jupyter kernelspec list` shows "
            "what is installed, --kernels picks others"
        ) from None
    return list(spec.argv)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into SystemExit for the duration, so `finally` blocks still run."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- kernels


class KernelProcess:
    """One kernel started from its kernelspec by `KernelManager`, with its own cleanup.

    The kernel's stdout and stderr go to `<workdir>/<label>.log` (shown on failure), so
    kernel chatter does not mix with the benchmark's output.
    """

    def __init__(self, kernel_name: str, label: str, workdir: Path, env: Mapping[str, str]) -> None:
        self.kernel_name = kernel_name
        self.label = label
        self.log_path = workdir / f"{label}.log"
        self._env = dict(env)
        self._workdir = workdir
        self.manager = KernelManager(kernel_name=kernel_name)
        self.manager.connection_file = str(workdir / f"{label}.json")
        self.manager.shutdown_wait_time = 5.0
        self._log: IO[bytes] | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self._pgid: int | None = None
        self._stopped = False
        self.cleanup_notes: list[str] = []

    def open_log(self) -> None:
        """Open the log file; done before a timed start so it is not part of the figure."""
        if self._log is None:
            self._log = self.log_path.open("wb")

    def start(self) -> None:
        """`KernelManager.start_kernel()`, nothing else (callers time exactly this call)."""
        self.open_log()
        self.manager.start_kernel(
            env=self._env, cwd=str(self._workdir), stdout=self._log, stderr=self._log
        )
        provisioner = self.manager.provisioner
        self._popen = getattr(provisioner, "process", None)
        self.pid = getattr(provisioner, "pid", None)
        self._pgid = getattr(provisioner, "pgid", None)

    def is_alive(self) -> bool:
        """Whether the kernel process (the one started from the kernelspec) still runs."""
        return self._popen is not None and self._popen.poll() is None

    def exit_status(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def connection_info(self) -> JsonDict:
        info = dict(self.manager.get_connection_info(session=False))
        if info.get("curve_publickey"):
            raise BenchError(f"{self.label}: CurveZMQ is enabled; the raw client cannot talk it")
        return info

    def _processes(self) -> list[psutil.Process]:
        if self.pid is None:
            return []
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> tuple[int, int]:
        """(resident bytes, process count) of the kernel process and all its descendants."""
        total = count = 0
        for proc in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += proc.memory_info().rss
                count += 1
        return total, count

    def cpu_seconds(self) -> float:
        """user+system CPU time of the kernel process and its live descendants."""
        total = 0.0
        for proc in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def shutdown(self, *, graceful: bool = True) -> None:
        """Stop the kernel; whatever happens, kill its process group and escaped descendants.

        Graceful: shutdown_request on control, then jupyter_client's own SIGTERM/SIGKILL
        escalation after `shutdown_wait_time`. Safe to call twice.
        """
        if self._stopped:
            return
        self._stopped = True
        descendants = self._processes()[1:]
        try:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=not graceful)
        except Exception as exc:  # noqa: BLE001 - cleanup must go on to the kill below
            self.cleanup_notes.append(f"shutdown_kernel failed: {exc!r}")
        finally:
            self._kill_leftovers(descendants)
            if self._log is not None:
                self._log.close()
                self._log = None

    def _kill_leftovers(self, descendants: list[psutil.Process]) -> None:
        if self._popen is not None and self._popen.poll() is None:
            self.cleanup_notes.append("kernel process still alive after shutdown: killed")
            with contextlib.suppress(ProcessLookupError):
                self._popen.kill()
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=5)
        pgid = self._pgid
        if pgid is not None and pgid != os.getpgrp():
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                pass
            else:
                self.cleanup_notes.append(f"process group {pgid} outlived the kernel: killed")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
        for proc in descendants:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    self.cleanup_notes.append(f"descendant {proc.pid} outlived the kernel: killed")
                    proc.kill()


class KernelSet:
    """Every kernel a benchmark starts, so that leaving the `with` block stops all of them."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self._workdir = workdir
        self._env = dict(env)
        self._live: list[KernelProcess] = []
        self._count = 0
        self.cleanup_notes: list[str] = []

    def create(
        self, kernel_name: str, label: str, *, env: Mapping[str, str] | None = None
    ) -> KernelProcess:
        """A registered, not yet started kernel (call `.start()`; it is cleaned up anyway).

        `env` adds to (or overrides) the set's environment for this kernel only.
        """
        self._count += 1
        kernel_env = {**self._env, **(env or {})}
        kernel = KernelProcess(kernel_name, f"{label}-{self._count}", self._workdir, kernel_env)
        self._live.append(kernel)
        return kernel

    def stop(self, kernel: KernelProcess, *, graceful: bool = True) -> None:
        try:
            kernel.shutdown(graceful=graceful)
        finally:
            if kernel in self._live:
                self._live.remove(kernel)
            self.cleanup_notes += [f"{kernel.label}: {n}" for n in kernel.cleanup_notes]

    def close(self) -> None:
        """Stop every live kernel; an interrupt during one stop kills the rest at once."""
        first: BaseException | None = None
        for kernel in list(self._live):
            try:
                self.stop(kernel, graceful=first is None)
            except BaseException as exc:  # noqa: BLE001 - keep stopping the others, re-raise below
                first = first or exc
        if first is not None:
            raise first

    def __enter__(self) -> KernelSet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------- raw client


@dataclass(slots=True)
class RawMessage:
    """One received message kept as frames; JSON parts are parsed when asked for."""

    frames: list[bytes]
    at: int  # index of the signature frame, one past the delimiter
    received_ns: int

    @property
    def header(self) -> JsonDict:
        value: JsonDict = json.loads(self.frames[self.at + 1])
        return value

    @property
    def parent_header(self) -> JsonDict:
        value: JsonDict = json.loads(self.frames[self.at + 2])
        return value

    @property
    def content(self) -> JsonDict:
        value: JsonDict = json.loads(self.frames[self.at + 4])
        return value

    @property
    def msg_type(self) -> str:
        return str(self.header["msg_type"])


@dataclass(slots=True)
class Exchange:
    """One request and what came back for it (times from `time.perf_counter_ns`)."""

    msg_id: str
    sent_ns: int
    idle_ns: int
    reply: RawMessage | None

    @property
    def to_idle_ns(self) -> int:
        return self.idle_ns - self.sent_ns


IOPubHandler = Callable[[str, RawMessage], None]


class RawClient:
    """A frontend over bare pyzmq sockets, identical for every kernel it talks to.

    Hot path (`exchange_frames`): after the send, blocking `recv_multipart` on IOPub until
    the idle parented to the request, then on the request's channel until its reply. Per
    message that is one receive, a search for the msg_id in the raw parent header and, only
    when the raw content contains b"idle", two small JSON parses to confirm. No poller, no
    signature check on receive (`verify` exists for spot checks). Blocking receives wake up
    every RECV_SLICE_MS to check the caller's deadline.
    """

    RECV_SLICE_MS = 500

    def __init__(
        self,
        info: Mapping[str, Any],
        *,
        context: zmq.Context[zmq.Socket[bytes]],
        alive: Callable[[], bool] | None = None,
    ) -> None:
        """`alive`, if given, is asked whenever a wait stalls: a dead kernel fails fast."""
        self._alive = alive
        key = info.get("key", b"")
        self._key = key if isinstance(key, bytes) else str(key).encode()
        scheme = str(info.get("signature_scheme", "hmac-sha256"))
        if not scheme.startswith("hmac-"):
            raise BenchError(f"unsupported signature_scheme {scheme!r}")
        digest = getattr(hashlib, scheme[5:])
        self._hmac = hmac.new(self._key, digestmod=digest) if self._key else None
        self._session = uuid.uuid4().hex
        self._username = "bench"
        transport = info.get("transport", "tcp")
        ip = info.get("ip", "127.0.0.1")

        def endpoint(port_key: str) -> str:
            port = info[port_key]
            return f"ipc://{ip}-{port}" if transport == "ipc" else f"{transport}://{ip}:{port}"

        def make(kind: int, port_key: str) -> zmq.Socket[bytes]:
            sock: zmq.Socket[bytes] = context.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
            sock.setsockopt(zmq.RCVTIMEO, self.RECV_SLICE_MS)
            if kind == zmq.DEALER:
                sock.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
                # Only hand a message to a completed connection: a send before the kernel has
                # bound its port fails with EAGAIN instead of sitting in a queue.
                sock.setsockopt(zmq.IMMEDIATE, 1)
                sock.setsockopt(zmq.IDENTITY, f"bench-{uuid.uuid4().hex[:12]}".encode())
            else:
                sock.setsockopt(zmq.RCVHWM, 0)  # never drop IOPub on our side
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(endpoint(port_key))
            return sock

        self.shell = make(zmq.DEALER, "shell_port")
        self.control = make(zmq.DEALER, "control_port")
        self.iopub = make(zmq.SUB, "iopub_port")
        self._channels: dict[str, zmq.Socket[bytes]] = {
            "shell": self.shell,
            "control": self.control,
        }

    # ---- building and signing

    def _sign(self, parts: Sequence[bytes]) -> bytes:
        if self._hmac is None:
            return b""
        mac = self._hmac.copy()
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode()

    def build(
        self,
        msg_type: str,
        content: JsonDict | bytes,
        *,
        metadata: JsonDict | None = None,
        buffers: Sequence[bytes] = (),
    ) -> tuple[str, list[bytes]]:
        """A signed message ready for `send_multipart`: (msg_id, frames)."""
        msg_id = uuid.uuid4().hex
        header = json.dumps(
            {
                "msg_id": msg_id,
                "msg_type": msg_type,
                "username": self._username,
                "session": self._session,
                "date": datetime.now(timezone.utc).isoformat(),
                "version": PROTOCOL_VERSION,
            }
        ).encode()
        body = content if isinstance(content, bytes) else json.dumps(content).encode()
        parts = [header, b"{}", json.dumps(metadata or {}).encode(), body]
        return msg_id, [DELIM, self._sign(parts), *parts, *buffers]

    def verify(self, msg: RawMessage) -> bool:
        """Whether the message's HMAC is right (spot checks; the hot loops skip this)."""
        expected = self._sign(msg.frames[msg.at + 1 : msg.at + 5])
        return hmac.compare_digest(expected, msg.frames[msg.at])

    def _send(self, sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
        try:
            sock.send_multipart(frames)
        except zmq.Again:
            raise BenchError(
                f"could not send within {SEND_TIMEOUT_MS} ms: no connection to the kernel"
            ) from None

    def send_frames(self, channel: Channel, frames: list[bytes], *, block: bool = True) -> bool:
        """Send prebuilt frames (from `build`) without waiting for anything back.

        Blocking: BenchError if the kernel takes no message within SEND_TIMEOUT_MS.
        `block=False`: returns False at once instead when the send would have to wait (the
        high-water mark is reached), so a pipelining caller can read IOPub in between.
        """
        sock = self._channels[channel]
        if block:
            self._send(sock, frames)
            return True
        try:
            sock.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def recv_iopub(self, *, timeout_s: float) -> RawMessage | None:
        """The next IOPub message, whatever its parent, or None after `timeout_s`."""
        if self.iopub.poll(max(0, int(timeout_s * 1000.0))):
            return self._recv(self.iopub)
        return None

    def send(self, channel: Channel, msg_type: str, content: JsonDict | bytes) -> str:
        msg_id, frames = self.build(msg_type, content)
        self._send(self._channels[channel], frames)
        return msg_id

    # ---- receiving

    @staticmethod
    def _recv(sock: zmq.Socket[bytes]) -> RawMessage:
        frames = sock.recv_multipart()
        now = time.perf_counter_ns()
        return RawMessage(frames, frames.index(DELIM) + 1, now)

    def _check_alive(self, what: str) -> None:
        if self._alive is not None and not self._alive():
            raise BenchError(f"the kernel process exited while waiting for {what}")

    def _recv_by(self, sock: zmq.Socket[bytes], deadline: float, what: str) -> RawMessage:
        """Blocking receive that gives up (BenchError) at `deadline` (time.monotonic)."""
        while True:
            try:
                return self._recv(sock)
            except zmq.Again:
                self._check_alive(what)
                if time.monotonic() > deadline:
                    raise BenchError(f"timed out waiting for {what}") from None

    def exchange_frames(
        self,
        channel: Channel,
        msg_id: str,
        frames: list[bytes],
        *,
        timeout_s: float,
        on_iopub: IOPubHandler | None = None,
        expect_reply: bool = True,
    ) -> Exchange:
        """Send prebuilt frames; wait for the idle status parented to them, then the reply.

        The clock starts just before the send (building and signing are outside) and stops
        when the idle is received. Every other IOPub message parented to the request goes to
        `on_iopub(msg_type, msg)`; messages parented to anything else are dropped unparsed.
        Set `expect_reply=False` for requests without a reply (comm_msg).
        """
        sock = self._channels[channel]
        iopub = self.iopub
        needle = msg_id.encode()
        deadline = time.monotonic() + timeout_s
        what = f"the idle status for {msg_id}"
        sent_ns = time.perf_counter_ns()
        self._send(sock, frames)
        idle_ns = 0
        while not idle_ns:
            msg = self._recv_by(iopub, deadline, what)
            at = msg.at
            if needle not in msg.frames[at + 2]:
                continue  # parented to an earlier request, or unparented
            if b"idle" in msg.frames[at + 4]:
                msg_type = msg.msg_type
                if msg_type == "status" and msg.content.get("execution_state") == "idle":
                    idle_ns = msg.received_ns
                    break
            elif on_iopub is None:
                continue
            else:
                msg_type = msg.msg_type
            if on_iopub is not None and msg_type != "status":
                on_iopub(msg_type, msg)
        reply: RawMessage | None = None
        while expect_reply and reply is None:
            msg = self._recv_by(sock, deadline, f"the reply to {msg_id}")
            if needle in msg.frames[msg.at + 2]:
                reply = msg
        return Exchange(msg_id, sent_ns, idle_ns, reply)

    def exchange(
        self,
        channel: Channel,
        msg_type: str,
        content: JsonDict | bytes,
        *,
        timeout_s: float,
        on_iopub: IOPubHandler | None = None,
        expect_reply: bool = True,
    ) -> Exchange:
        msg_id, frames = self.build(msg_type, content)
        return self.exchange_frames(
            channel,
            msg_id,
            frames,
            timeout_s=timeout_s,
            on_iopub=on_iopub,
            expect_reply=expect_reply,
        )

    def collect_iopub(
        self,
        parent_msg_id: str,
        on_iopub: IOPubHandler,
        *,
        until: Callable[[], bool],
        timeout_s: float,
    ) -> bool:
        """Keep passing IOPub messages parented to a request to `on_iopub` until `until()`.

        For output that arrives after the idle (an ordering bug, but the count must still
        be right). Returns whether `until()` became true within the timeout.
        """
        needle = parent_msg_id.encode()
        deadline = time.monotonic() + timeout_s
        while not until():
            wait_ms = (deadline - time.monotonic()) * 1000.0
            if wait_ms <= 0:
                return False
            if self.iopub.poll(max(1, int(wait_ms))):
                msg = self._recv(self.iopub)
                if needle in msg.frames[msg.at + 2]:
                    on_iopub(msg.msg_type, msg)
        return True

    def wait_for_kernel_info(self, *, timeout_s: float, resend_s: float = 0.2) -> RawMessage:
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
                msg_id, frames = self.build("kernel_info_request", {})
                try:
                    self.shell.send_multipart(frames, zmq.NOBLOCK)
                except zmq.Again:
                    pass  # not connected yet
                else:
                    pending.add(msg_id)
                    last_sent = now
            if self.shell.poll(2):
                msg = self._recv(self.shell)
                if msg.parent_header.get("msg_id") in pending:
                    if msg.msg_type != "kernel_info_reply":
                        raise BenchError(f"expected kernel_info_reply, got {msg.msg_type}")
                    return msg

    def wait_ready(self, *, timeout_s: float) -> JsonDict:
        """Shell answers and IOPub delivers: kernel_info until an IOPub message for one arrives.

        A SUB socket misses everything published before its subscription reaches the
        kernel, so this repeats until the subscription is known to be in place. Returns the
        kernel_info_reply content.
        """
        deadline = time.monotonic() + timeout_s
        reply = self.wait_for_kernel_info(timeout_s=timeout_s)
        if not self.verify(reply):
            raise BenchError("kernel_info_reply has a bad signature (wrong key or scheme?)")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"IOPub delivered nothing within {timeout_s:g} s")
            self._check_alive("IOPub to deliver")
            msg_id = self.send("shell", "kernel_info_request", {})
            needle = msg_id.encode()
            stop = time.monotonic() + min(0.2, left)
            while (wait_ms := (stop - time.monotonic()) * 1000.0) > 0:
                if self.iopub.poll(max(1, int(wait_ms))):
                    msg = self._recv(self.iopub)
                    if needle in msg.frames[msg.at + 2]:
                        # Subscribed. One clean round trip drains what is still in flight.
                        self.exchange("shell", "kernel_info_request", {}, timeout_s=left)
                        return reply.content

    def close(self) -> None:
        for sock in (self.shell, self.control, self.iopub):
            sock.close(linger=0)


def drive_benchmark(
    settings: S,
    kernel_names: Sequence[str],
    make_result: Callable[[str, str, list[str]], R],
    run: Callable[[S, list[R], Path, list[str]], None],
    report: Callable[[dict[str, str], S, list[R]], str],
    write_json: Callable[[Path, dict[str, str], S, list[R]], None],
    json_path: Path | None,
    failed: Callable[[list[R]], bool],
) -> int:
    """The shared `main` of the A/B benchmarks: run, report, exit status.

    Exit 0 when every check passed, 1 when a kernel failed a correctness check (`failed`),
    2 when the run could not finish, 130 when interrupted; every kernel started is shut
    down in every case (the `run` callable starts them inside a `KernelSet`).
    """
    began = time.monotonic()
    env = environment_info()
    try:
        results = [
            make_result(slot, name, kernelspec_argv(name))
            for slot, name in zip("AB", kernel_names, strict=True)
        ]
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failure: str | None = None
    notes: list[str] = []
    try:
        with sigterm_raises(), tempfile.TemporaryDirectory(prefix="mpkernel-bench-") as tmp:
            run(settings, results, Path(tmp), notes)
    except BenchError as exc:
        failure = str(exc)
    except KeyboardInterrupt:
        print("interrupted; every kernel started has been shut down", file=sys.stderr)
        return 130
    print(report(env, settings, results))
    print(*(f"cleanup: {note}" for note in notes), sep="\n", end="\n" if notes else "")
    print(f"total run time: {time.monotonic() - began:.1f} s")
    if json_path is not None:
        write_json(json_path, env, settings, results)
        print(f"results written to {json_path}")
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        return 2
    return 1 if failed(results) else 0
