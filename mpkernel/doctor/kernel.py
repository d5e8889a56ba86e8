"""`mpkernel doctor`, the live half: real workers, and a running kernel.

Single job: run the kernel's moving parts and report what they do, as `CheckResult`s (model
and output in `doctor`). `check_workers` starts every configured worker under a private
`WorkerSupervisor` (its own zmq context and poller, the kernel's start method and forkserver
preload), opens one comm on each, and asks `mpkernel.echo` for its pid and an echo.
`check_running_kernel` talks to a kernel through its connection file: heartbeat, kernel_info
(on control, answered even while a cell runs), comm_info, then the `mpkernel.health` comm.

Runs on the calling thread. Invariants: every wait has a deadline (a dead kernel is a clear
failure within the heartbeat timeout); every worker started here is killed, and every socket
closed, before the function returns; the health comm is closed again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

import mpkernel
from mpkernel.comms.router import HEALTH_TARGET
from mpkernel.config.model import Config, WorkerConfig
from mpkernel.doctor.checks import (
    ECHO_TARGET,
    WORKER_TIMEOUT_S,
    CheckResult,
    JsonValue,
    check_private_dir,
    fail,
    ok,
    warn,
)
from mpkernel.kernel.connection import ConnectionFileError, ConnectionInfo, load_connection_file
from mpkernel.supervision import ipc
from mpkernel.supervision.errors import WorkerUnavailable
from mpkernel.supervision.policy import WorkerExit
from mpkernel.supervision.supervisor import WorkerHandle, WorkerSupervisor
from mpkernel.supervision.zygote import start_forkserver
from mpkernel.wire.codec import json_bytes

log = logging.getLogger(__name__)

#: The heartbeat answers from its own thread within microseconds unless the kernel is gone.
HEARTBEAT_TIMEOUT_S = 3.0
#: How long probed workers get to exit cleanly before they are killed.
STOP_GRACE_S = 0.5
#: A worker is flagged when its RSS reaches this share of its memory limit.
MEMORY_WARN_RATIO = 0.8
#: A worker that crashed this often is flagged as a crash loop even while it still runs.
CRASH_LOOP_CRASHES = 3

#: The fields of each worker in the health status (all kept in the check's details).
HEALTH_WORKER_KEYS = (
    *("name", "key", "target", "pid", "state", "rss", "memory_limit", "cpu_s", "starts"),
    *("crashes", "restarts", "last_exit_reason", "open_comms", "disabled_reason"),
)

Msg = dict[str, Any]  # a jupyter_client message, only inside this module

# -- workers ---------------------------------------------------------------------------------


@dataclass
class _Probe:
    config: WorkerConfig
    comm_id: str
    handle: WorkerHandle
    started: float
    ready_s: float | None = None
    rpc_sent: float | None = None
    exit_reason: str | None = None
    replies: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    log_tail: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.handle.key

    @property
    def pid(self) -> int | None:
        """The pid the worker reported in Ready, else the one its start gave (if known)."""
        return self.handle.ps.pid if self.handle.ps is not None else self.handle.pid

    @property
    def echo(self) -> bool:
        return self.config.target == ECHO_TARGET

    @property
    def done(self) -> bool:
        if self.exit_reason is not None:
            return True
        return self.ready_s is not None and (not self.echo or len(self.replies) == 2)


class _ProbeListener:
    """The doctor's SupervisorListener: records what each probed worker did."""

    def __init__(self) -> None:
        self.probes: dict[str, _Probe] = {}

    def on_worker_ready(self, handle: WorkerHandle, ready: ipc.Ready) -> None:
        probe = self.probes.get(handle.key)
        if probe is not None:
            probe.ready_s = time.monotonic() - probe.started

    def on_worker_message(self, handle: WorkerHandle, msg: ipc.FromWorker) -> None:
        probe = self.probes.get(handle.key)
        if probe is None:
            return
        if isinstance(msg, ipc.RpcReply):
            probe.replies[json.loads(msg.rpc_id)] = (msg.data_json, time.monotonic())
        elif isinstance(msg, ipc.LogLine) and msg.text.strip():
            log.log(msg.level, "[%s] %s", handle.wid, msg.text)
            probe.log_tail = [*probe.log_tail[-4:], msg.text.strip()]

    def on_worker_exit(self, handle: WorkerHandle, exit: WorkerExit, restarting: bool) -> None:
        probe = self.probes.get(handle.key)
        if probe is not None and probe.exit_reason is None:
            probe.exit_reason = exit.reason

    def on_worker_restarted(self, old_key: str, handle: WorkerHandle) -> None:
        """Never called: probed workers run with restart = "never"."""


def check_workers(
    config: Config, skip: set[str], timeout_s: float = WORKER_TIMEOUT_S
) -> list[CheckResult]:
    """Start every enabled worker (except those in `skip`: handler not importable) as the
    kernel would, open a comm on each, round-trip `pid` and `echo` RPCs where the target is
    `mpkernel.echo`, then stop them all. Also checks the supervisor's pipe directory."""
    sec = "workers"
    results: list[CheckResult] = []
    wanted: list[WorkerConfig] = []
    for w in config.workers:
        if not w.enabled:
            results.append(
                ok(sec, f"worker {w.name}", "disabled in the configuration", worker=w.name)
            )
        elif w.name not in skip:  # a failed handler import is reported once, in `config`
            wanted.append(dataclasses.replace(w, restart="never"))
    forkserver = sorted(
        {w.handler.partition(":")[0] for w in wanted if w.start_method == "forkserver"}
    )
    if forkserver:  # as the kernel does: workers fork from a clean, preloaded process
        start_forkserver(["mpkernel.supervision.runtime", *forkserver])
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    poller = zmq.Poller()
    listener = _ProbeListener()
    supervisor = WorkerSupervisor(ctx, poller, listener, log_level="warning")
    try:
        for w in wanted:
            comm_id = f"doctor-{uuid.uuid4().hex}"
            started = time.monotonic()
            try:
                handle = supervisor.acquire(w, comm_id)
            except WorkerUnavailable as e:
                results.append(fail(sec, f"worker {w.name}", str(e), _LOG_HINT, worker=w.name))
                continue
            listener.probes[handle.key] = _Probe(w, comm_id, handle, started)
            supervisor.send(handle, ipc.OpenComm(comm_id, w.target, b"{}", ipc.NO_PARENT, None))
        _drive(supervisor, poller, listener, timeout_s)
        results += [_probe_result(p, timeout_s) for p in listener.probes.values()]
        results.append(check_private_dir(supervisor.rundir, "worker pipes dir"))
    finally:
        for handle in list(supervisor.handles.values()):
            supervisor.send(handle, ipc.StopWorker("kernel_shutdown"))
        supervisor.shutdown(grace_s=STOP_GRACE_S)  # then SIGKILL, and joins: bounded
        ctx.destroy(linger=0)
    return results


_LOG_HINT = "run `mpkernel doctor -v` to see the worker's log"


def _drive(
    supervisor: WorkerSupervisor, poller: zmq.Poller, listener: _ProbeListener, timeout_s: float
) -> None:
    """Poll until every probe is done or the deadline passes; send the RPCs once Ready."""
    deadline = time.monotonic() + timeout_s
    while not all(p.done for p in listener.probes.values()):
        now = time.monotonic()
        if now >= deadline:
            return
        for probe in listener.probes.values():
            handle = supervisor.get(probe.key)
            if handle is None or not probe.echo or probe.ready_s is None:
                continue
            if probe.rpc_sent is not None:
                continue
            probe.rpc_sent = time.monotonic()
            for method, params in (("pid", None), ("echo", {"probe": probe.comm_id})):
                request = {"jsonrpc": "2.0", "id": method, "method": method, "params": params}
                if params is None:
                    del request["params"]
                payload = json_bytes(request)
                supervisor.send(handle, ipc.RpcRequest(probe.comm_id, payload, ipc.NO_PARENT, None))
        wait_ms = int((deadline - now) * 1000) + 1
        timer = supervisor.timeout_ms()
        events = dict(poller.poll(wait_ms if timer is None else min(wait_ms, timer)))
        supervisor.handle_events(events)
        supervisor.on_timer()


def _probe_result(p: _Probe, timeout_s: float) -> CheckResult:
    sec, name, method = "workers", f"worker {p.config.name}", p.config.start_method
    details: dict[str, JsonValue] = {
        "worker": p.config.name,
        "target": p.config.target,
        "start_method": method,
        "pid": p.pid,
    }
    if p.ready_s is None:
        why = f"exited before Ready ({p.exit_reason})" if p.exit_reason else "no Ready"
        why += "" if p.exit_reason else f" within {timeout_s:g}s"
        last = f": {p.log_tail[-1]}" if p.log_tail else ""
        return fail(sec, name, f"{why}{last}", _LOG_HINT, **details)
    details["start_ms"] = round(p.ready_s * 1000, 1)
    started = f"ready in {p.ready_s * 1000:.0f} ms ({method}, pid {p.pid})"
    if p.exit_reason is not None and not p.echo:
        why = f"{started}, then exited: {p.exit_reason}"
        return fail(sec, name, why, _LOG_HINT, **details)
    if not p.echo:
        return ok(sec, name, started, **details)
    pid_reply, echo_reply = p.replies.get("pid"), p.replies.get("echo")
    if pid_reply is None or echo_reply is None or p.rpc_sent is None:
        why = f"died: {p.exit_reason}" if p.exit_reason else f"no answer within {timeout_s:g}s"
        return fail(sec, name, f"{started}, but the echo RPC failed ({why})", _LOG_HINT, **details)
    pid = json.loads(pid_reply[0]).get("result")
    echoed = json.loads(echo_reply[0]).get("result")
    if pid != p.pid or echoed != {"probe": p.comm_id}:
        why = f"{started}, but wrong RPC answers (pid {pid!r}, echo {echoed!r})"
        return fail(sec, name, why, _LOG_HINT, **details)
    # `pid` went out first (echo queued behind it): its reply time is one round trip.
    rtt_ms = (pid_reply[1] - p.rpc_sent) * 1000
    details["echo_ms"] = round(rtt_ms, 2)
    return ok(sec, name, f"{started}, echo round trip {rtt_ms:.1f} ms", **details)


# -- a running kernel ------------------------------------------------------------------------


def resolve_connection_file(connection_file: str | None, kernel_id: str | None) -> Path:
    """The file given, or the one of kernel `kernel_id` in Jupyter's runtime directory
    (a unique prefix of the id is enough). Raises OSError when there is none."""
    if connection_file is not None:
        return Path(connection_file)
    from jupyter_client.connect import find_connection_file
    from jupyter_core.paths import jupyter_runtime_dir

    assert kernel_id is not None
    return Path(find_connection_file(f"kernel-{kernel_id}", path=[jupyter_runtime_dir()]))


def check_running_kernel(
    connection_file: str | None, kernel_id: str | None, timeout_s: float
) -> list[CheckResult]:
    """Heartbeat, kernel_info, comm_info and the health status of a running kernel."""
    sec, name = "kernel", "connection file"
    try:
        path = resolve_connection_file(connection_file, kernel_id)
        info = load_connection_file(path)
    except (OSError, ConnectionFileError) as e:
        fix = "pass an existing connection file, or the id of a kernel in `jupyter --runtime-dir`"
        return [fail(sec, name, str(e), fix)]
    if not all((info.shell_port, info.iopub_port, info.control_port, info.hb_port)):
        return [fail(sec, name, f"{path} has a port 0", "pass the file of a running kernel")]
    where = f"{info.transport}://{info.ip}"
    results = [ok(sec, name, f"{path} ({where})", path=str(path), kernel_name=info.kernel_name)]
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        client = _KernelClient(ctx, info, timeout_s)
        results += client.check()
    finally:
        ctx.destroy(linger=0)
    return results


class _KernelClient:
    """A minimal frontend (jupyter_client's Session for signing) with bounded waits."""

    def __init__(
        self, ctx: zmq.Context[zmq.Socket[bytes]], info: ConnectionInfo, timeout_s: float
    ) -> None:
        from jupyter_client.session import Session

        self.ctx = ctx
        self.info = info
        self.timeout_s = timeout_s
        self.session = Session(key=info.key, signature_scheme=info.signature_scheme)
        self.iopub = self._socket(zmq.SUB, info.iopub_port)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.shell = self._socket(zmq.DEALER, info.shell_port)
        self.control = self._socket(zmq.DEALER, info.control_port)

    def _socket(self, kind: int, port: int) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if self.info.curve_publickey is not None:
            # A CurveZMQ client: the server's public key from the file, a throwaway key pair
            # of our own (the kernel accepts any client that knows its public key).
            public, secret = zmq.curve_keypair()
            sock.setsockopt(zmq.CURVE_SERVERKEY, self.info.curve_publickey)
            sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
            sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.connect(self.info.address(port))
        return sock

    def transport(self) -> CheckResult:
        if self.info.encrypted:
            summary = "encrypted (CurveZMQ on shell, control, stdin, iopub and hb)"
        elif self.info.transport == "ipc":
            summary = "not encrypted (ipc: only this machine's users with access to the files)"
        else:
            summary = "not encrypted (no curve keys in the connection file: see docs/security.md)"
        return ok("kernel", "transport", summary, encrypted=self.info.encrypted)

    def _recv(self, sock: zmq.Socket[bytes], match: Callable[[Msg], bool]) -> Msg | None:
        """The first message on `sock` that `match`es within the timeout; others are dropped."""
        deadline = time.monotonic() + self.timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                return None
            try:
                _, msg = self.session.recv(sock, mode=zmq.NOBLOCK)
            except ValueError:  # bad signature or malformed: not for us
                continue
            if msg is not None and match(msg):
                return msg
        return None

    def _send(self, msg_type: str, content: Msg, sock: zmq.Socket[bytes] | None = None) -> str:
        """Send on `sock` (default: shell); returns the msg_id."""
        sent = self.session.send(self.shell if sock is None else sock, msg_type, content)
        assert sent is not None  # None only when there is no socket to send on
        msg_id: str = sent["header"]["msg_id"]
        return msg_id

    def _request(
        self, sock: zmq.Socket[bytes], msg_type: str, content: Msg
    ) -> tuple[str, Msg | None]:
        msg_id = self._send(msg_type, content, sock)
        return msg_id, self._recv(sock, lambda m: _parent_id(m) == msg_id)

    def check(self) -> list[CheckResult]:
        sec = "kernel"
        transport = self.transport()
        hb = self.heartbeat()
        if hb.status != "ok":
            return [transport, hb]
        ki_id, kernel_info = self._request(self.control, "kernel_info_request", {})
        if kernel_info is None:
            why = f"no kernel_info reply on control within {self.timeout_s:g}s"
            fix = "check the kernel's log; restart it"
            return [transport, hb, fail(sec, "kernel_info", why, fix)]
        info_result = _kernel_info_result(kernel_info["content"])
        results = [transport, hb, info_result]
        # The kernel publishes busy/idle for our request (and mpkernel a welcome): once one
        # arrives, our IOPub subscription is live and comm replies cannot be missed.
        seen = self._recv(
            self.iopub, lambda m: _parent_id(m) == ki_id or _type(m) == "iopub_welcome"
        )
        if seen is None:
            why = f"nothing received on IOPub within {self.timeout_s:g}s"
            return [*results, fail(sec, "iopub", why, "check firewalls and the iopub_port")]
        results.append(self.comm_info())
        if kernel_info["content"].get("implementation") == "mpkernel":
            results += self.health()
        return results

    def heartbeat(self) -> CheckResult:
        hb = self._socket(zmq.REQ, self.info.hb_port)
        timeout = min(HEARTBEAT_TIMEOUT_S, self.timeout_s)
        started = time.monotonic()
        try:
            hb.send(b"mpkernel-doctor")
            if not hb.poll(int(timeout * 1000), zmq.POLLIN):
                why = f"no answer within {timeout:g}s: the kernel is not running (or not reachable)"
                fix = "start the kernel again, or pass the connection file of a running one"
                return fail("kernel", "heartbeat", why, fix, port=self.info.hb_port)
            hb.recv()
        finally:
            hb.close(linger=0)
        ms = (time.monotonic() - started) * 1000
        return ok("kernel", "heartbeat", f"answered in {ms:.1f} ms", ms=round(ms, 2))

    def comm_info(self) -> CheckResult:
        _, reply = self._request(self.shell, "comm_info_request", {})
        if reply is None:
            why = f"no reply within {self.timeout_s:g}s (shell waits while a cell runs)"
            return warn("kernel", "comm_info", why, "try again once the running cell is done")
        comms = reply["content"].get("comms") or {}
        by_target: dict[str, int] = {}
        for comm in comms.values():
            target = str(comm.get("target_name"))
            by_target[target] = by_target.get(target, 0) + 1
        listed = ", ".join(f"{n} {t}" for t, n in sorted(by_target.items()))
        summary = _plural(len(comms), "open comm") + (f" ({listed})" if listed else "")
        return ok("kernel", "comm_info", summary, comms=dict(sorted(by_target.items())))

    def health(self) -> list[CheckResult]:
        sec, name = "kernel", "health"
        comm_id = f"doctor-{uuid.uuid4().hex}"
        self._send("comm_open", {"comm_id": comm_id, "target_name": HEALTH_TARGET, "data": {}})
        request = {"jsonrpc": "2.0", "id": "1", "method": "status"}
        self._send("comm_msg", {"comm_id": comm_id, "data": request})

        def answer(m: Msg) -> bool:
            content = m["content"]
            if content.get("comm_id") != comm_id:
                return False
            data = content.get("data") or {}
            return _type(m) == "comm_close" or (_type(m) == "comm_msg" and data.get("id") == "1")

        reply = self._recv(self.iopub, answer)
        if reply is None or _type(reply) == "comm_msg":  # unless the kernel closed it already
            close_id = self._send("comm_close", {"comm_id": comm_id, "data": {}})
            # Wait (bounded) for the close to be handled so no comm outlives the doctor.
            self._recv(self.iopub, lambda m: _parent_id(m) == close_id and _idle(m))
        fix = "restart the kernel; if it persists, report it with the kernel's log"
        if reply is None:
            return [fail(sec, name, f"no status reply within {self.timeout_s:g}s", fix)]
        data = reply["content"].get("data") or {}
        if _type(reply) == "comm_close":
            return [fail(sec, name, f"the kernel closed the health comm: {data}", fix)]
        status = data.get("result")
        if not isinstance(status, dict):
            return [fail(sec, name, f"error reply: {data.get('error')}", fix)]
        return health_results(status, own_comm=comm_id)


def _type(msg: Msg) -> str:
    return str(msg["header"]["msg_type"])


def _parent_id(msg: Msg) -> str | None:
    parent = msg.get("parent_header") or {}
    return parent.get("msg_id")


def _idle(msg: Msg) -> bool:
    return _type(msg) == "status" and msg["content"].get("execution_state") == "idle"


def _kernel_info_result(content: Mapping[str, Any]) -> CheckResult:
    impl, version = content.get("implementation"), content.get("implementation_version")
    python = (content.get("language_info") or {}).get("version", "?")
    protocol = content.get("protocol_version", "?")
    details: dict[str, JsonValue] = {
        "implementation": str(impl),
        "implementation_version": str(version),
        "protocol_version": str(protocol),
        "python": str(python),
    }
    summary = f"{impl} {version}, protocol {protocol}, Python {python}"
    if impl != "mpkernel":
        fix = "to check workers, pass the connection file of an mpkernel kernel"
        return warn("kernel", "kernel_info", f"{summary}: not mpkernel", fix, **details)
    if version != mpkernel.__version__:
        fix = "restart the kernel to run the installed version"
        why = f"{summary}; this doctor is {mpkernel.__version__}"
        return warn("kernel", "kernel_info", why, fix, **details)
    return ok("kernel", "kernel_info", summary, **details)


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def health_results(status: Mapping[str, Any], own_comm: str | None = None) -> list[CheckResult]:
    """The health comm's `status` result as checks: the kernel, each worker, IOPub. The
    doctor's own health comm (`own_comm`) is not counted."""
    sec = "kernel"
    workers = [w for w in status.get("workers") or [] if isinstance(w, dict)]
    comms = [c for c in status.get("comms") or {} if c != own_comm]
    running = _plural(len(workers), "worker") if workers else "no worker started yet"
    summary = f"kernel pid {status.get('pid')}, {running}, {_plural(len(comms), 'open comm')}"
    details: dict[str, JsonValue] = {"pid": status.get("pid"), "comms": len(comms)}
    results = [ok(sec, "health", summary, **details)]
    results += [worker_result(w) for w in workers]
    subscribers = status.get("iopub_subscribers")
    departures = status.get("iopub_departures")
    others = f"{subscribers - 1} besides this doctor" if isinstance(subscribers, int) else "?"
    summary = f"{subscribers} subscribers ({others}), {departures} departures so far"
    results.append(ok(sec, "iopub", summary, subscribers=subscribers, departures=departures))
    return results


def worker_result(w: Mapping[str, Any]) -> CheckResult:
    """One worker of the health status, flagged on a crash loop (disabled: fail; still
    running after CRASH_LOOP_CRASHES crashes: warn) or at MEMORY_WARN_RATIO of its limit."""
    name = f"worker {w.get('key') or w.get('name')}"
    state, crashes = w.get("state"), int(w.get("crashes") or 0)
    details: dict[str, JsonValue] = {k: w.get(k) for k in HEALTH_WORKER_KEYS}
    parts: list[str] = []
    ratio: float | None = None
    if w.get("pid") is not None:
        parts.append(f"{w.get('target')}, pid {w['pid']}, {state}")
        rss, limit = w.get("rss"), w.get("memory_limit")
        if isinstance(rss, int):
            parts.append(f"RSS {_size(rss)}")
            if isinstance(limit, int) and limit > 0:
                ratio = rss / limit
                parts[-1] += f" of {_size(limit)} ({ratio:.0%})"
        if isinstance(w.get("cpu_s"), (int, float)):
            parts.append(f"CPU {w['cpu_s']:.1f} s")
        parts.append(_plural(int(w.get("open_comms") or 0), "comm"))
    elif state != "disabled":
        parts.append(str(state))
    parts.append(f"starts {w.get('starts')}, crashes {crashes}, restarts {w.get('restarts')}")
    if w.get("last_exit_reason"):
        parts.append(f"last exit: {w['last_exit_reason']}")
    summary = "; ".join(parts)
    logs = "see the kernel log for the worker's tracebacks"
    if state == "disabled":
        why = f"crash loop: {w.get('disabled_reason') or 'disabled'}; {summary}"
        return fail("kernel", name, why, f"{logs}; restart the kernel to try again", **details)
    if crashes >= CRASH_LOOP_CRASHES:
        return warn("kernel", name, f"crash loop? {summary}", logs, **details)
    if ratio is not None and ratio >= MEMORY_WARN_RATIO:
        fix = f"raise memory_limit in [workers.{w.get('name')}], or close what it holds"
        return warn("kernel", name, f"near its memory limit: {summary}", fix, **details)
    return ok("kernel", name, summary, **details)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
