"""Comm benchmark: mpkernel's worker-served comms against ipykernel's in-process comms.

Run it from the repository root:

    .venv/bin/python tools/bench_comms.py                       # mpkernel vs python3
    .venv/bin/python tools/bench_comms.py --json comms.json     # also write every sample
    .venv/bin/python tools/bench_comms.py --round-trips 200 --throughput-messages 2000 \\
        --kills 10 --burn-seconds 4 --load-executes 100         # a quick smoke run

Two kernels run side by side, started from their kernelspecs: A is mpkernel (--mpkernel),
B is ipykernel (--ipykernel). Both are talked to through the same raw ZMQ client
(`_benchlib.RawClient`), whose cost is inside every figure on both sides. Phases that
exist on both kernels alternate between them, A B A B ...

1. comm echo round trip. A: a comm on `mpkernel.echo` (served by the echo worker process),
   JSON-RPC `echo`. B: a comm on `bench.echo`, an in-process target registered by code
   through the `comm` package that sends back whatever data it gets. The client sends the
   same JSON-RPC data to both and times from the send of the comm_msg until both the
   comm_msg carrying that id and the idle status parented to the request have arrived.
   p50/p99 of --round-trips after --warmup, in alternating blocks of 100.
2. pipelined throughput. --throughput-messages comm_msgs sent back to back without waiting
   (IOPub is read whenever the shell socket would block), until every reply and every idle
   has arrived; messages per second, median of --throughput-rounds (after one warm-up
   round of a tenth of the size).
3. print/comm ordering. A cell runs `for i in range(N): print(i); c.send({"i": i})` on an
   in-process comm made with `comm.create_comm`; the client counts how often comm_msg i
   arrives before the stdout line i. mpkernel must have 0; ipykernel is known to reorder.
4. execute under worker load (A): p50 of `pass` executes while the echo worker runs the
   `burn` RPC (a pure-Python CPU loop of --burn-seconds), against p50 of idle executes
   before and after. B runs its comms in the kernel's own thread, so a busy comm handler
   blocks it: one `pass` execute is timed behind a --ipykernel-block-seconds busy loop in a
   `bench.burn` comm handler.
5. worker SIGKILL (A, last): --kills rounds of: open an echo comm, ask its worker's pid, leave
   a `sleep` RPC pending, SIGKILL the worker, time until the comm_close for that comm (and
   its error reply) is on IOPub. mpkernel is started with MPKERNEL_CONFIG pointing to a
   temporary file with `[workers.echo] max_restarts = 1000`, so that the worker is not
   disabled as a crash loop; a new comm starts its replacement at once.

The report is a table with each figure, the ratio A/B where both have it, and the target of
DESIGN.md section 8. Each kernel gets its own empty IPYTHONDIR. Every kernel started is shut
down on the way out, on errors, Ctrl-C and SIGTERM too. Exit status: 0 done, 1 a
correctness check on mpkernel failed (lost or late messages, an ordering violation, a crash
not reported in order), 2 could not finish, 130 interrupted.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import shlex
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import zmq
from _benchlib import (
    BenchError,
    Exchange,
    JsonDict,
    KernelProcess,
    KernelSet,
    RawClient,
    RawMessage,
    drive_benchmark,
    median,
    percentile,
    render_table,
)

Context = zmq.Context[zmq.Socket[bytes]]

ECHO_TARGET = "mpkernel.echo"  # served by mpkernel's echo worker
HEALTH_TARGET = "mpkernel.health"
B_ECHO_TARGET = "bench.echo"  # in-process targets registered in ipykernel by SETUP_CODE
B_BURN_TARGET = "bench.burn"
ORDER_TARGET = "bench.order"  # opened from the kernel side; no frontend target needed

ROUND_TRIP_BLOCK = 100
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
LATE_GRACE_S = 2.0  # how long to keep listening for a reply that missed its idle
STALL_TIMEOUT_S = 15.0  # throughput: give up when nothing new arrived for this long
KILL_TIMEOUT_S = 10.0
MIN_BUSY_FRACTION = 0.25  # below this share of a core the "busy worker" figure means little
# The worker's restart budget while the kill phase runs (default: 5 crashes in 60 s).
MPKERNEL_CONFIG_TEXT = "[workers.echo]\nmax_restarts = 1000\n"

# The code run in ipykernel before anything else: the in-process targets of B.
SETUP_CODE = textwrap.dedent(
    f"""
    import comm as _bench_comm
    import time as _bench_time

    def _bench_echo_open(c, msg):
        c.on_msg(lambda m: c.send(m["content"]["data"]))

    def _bench_burn_open(c, msg):
        def on_msg(m):
            end = _bench_time.perf_counter() + float(m["content"]["data"]["seconds"])
            while _bench_time.perf_counter() < end:
                pass
            c.send({{"done": True}})
        c.on_msg(on_msg)

    _bench_comm.get_comm_manager().register_target({B_ECHO_TARGET!r}, _bench_echo_open)
    _bench_comm.get_comm_manager().register_target({B_BURN_TARGET!r}, _bench_burn_open)
    """
)

ORDER_CODE = """\
import comm as _bench_comm
_bench_c = _bench_comm.create_comm(target_name={target!r}, data={{}})
for _bench_i in range({lines}):
    print(_bench_i)
    _bench_c.send({{"i": _bench_i}})
_bench_c.close()
del _bench_c, _bench_i
"""

# DESIGN.md section 8: (comparison, limit, text). The first two are on the ratio A/B, the
# rest on A's own figure (mpkernel only).
TARGETS: dict[str, tuple[str, float, str]] = {
    "echo_us_p50": ("<=", 1.0, "<= 1.0x"),
    "throughput_msgs_per_s": (">=", 2.0, ">= 2.0x"),
    "order_violations": ("<=", 0.0, "0 (A)"),
    "kill_close_ms_p99": ("<", 100.0, "< 100 ms (A)"),
    "load_exec_ratio": ("<", 1.5, "< 1.5x (A)"),
}
RATIO_TARGETS = ("echo_us_p50", "throughput_msgs_per_s")

# Fields of raw IOPub frames, read without parsing the JSON (throughput hot loop).
PARENT_MSG_ID = re.compile(rb'"msg_id"\s*:\s*"([^"]+)"')
MSG_TYPE = re.compile(rb'"msg_type"\s*:\s*"([^"]+)"')


@dataclass
class Settings:
    kernels: tuple[str, str]
    round_trips: int
    warmup: int
    throughput_messages: int
    throughput_rounds: int
    order_lines: int
    order_rounds: int
    load_executes: int
    burn_seconds: float
    ipykernel_block_seconds: float
    kills: int


@dataclass
class KernelResult:
    """Raw samples for one kernel slot; `summary()` turns them into the reported figures."""

    slot: str
    kernel_name: str
    argv: list[str]
    implementation: str = "?"
    implementation_version: str = "?"
    echo_us: list[float] = field(default_factory=list)
    throughput_msgs_per_s: list[float] = field(default_factory=list)
    throughput_send_ms: list[float] = field(default_factory=list)
    order_violations: list[int] = field(default_factory=list)
    exec_idle_us: list[float] = field(default_factory=list)
    exec_loaded_us: list[float] = field(default_factory=list)
    exec_idle_p50_before_after: list[float] = field(default_factory=list)
    worker_busy_fraction: float = math.nan  # A: worker CPU / wall time over the loaded executes
    blocked_exec_ms: float = math.nan  # B: one execute behind a busy in-process comm handler
    kill_close_ms: list[float] = field(default_factory=list)
    kill_error_ms: list[float] = field(default_factory=list)
    kill_error_first: int = 0
    worker_crashes_seen: int | None = None
    problems: list[str] = field(default_factory=list)  # correctness: exit status 1 for A
    warnings: list[str] = field(default_factory=list)  # a figure that may not mean much

    @property
    def label(self) -> str:
        return f"{self.slot} {self.kernel_name}"

    def summary(self) -> dict[str, float]:
        idle_p50 = percentile(self.exec_idle_us, 50)
        if self.exec_loaded_us:
            loaded_p50 = percentile(self.exec_loaded_us, 50)
        elif not math.isnan(self.blocked_exec_ms):
            loaded_p50 = self.blocked_exec_ms * 1000.0
        else:
            loaded_p50 = math.nan
        return {
            "echo_us_p50": percentile(self.echo_us, 50),
            "echo_us_p99": percentile(self.echo_us, 99),
            "throughput_msgs_per_s": median(self.throughput_msgs_per_s),
            "order_violations": float(sum(self.order_violations))
            if self.order_violations
            else math.nan,
            "exec_idle_us_p50": idle_p50,
            "exec_loaded_us_p50": loaded_p50,
            "load_exec_ratio": loaded_p50 / idle_p50 if idle_p50 else math.nan,
            "kill_close_ms_p50": percentile(self.kill_close_ms, 50),
            "kill_close_ms_p99": percentile(self.kill_close_ms, 99),
            "kill_close_ms_max": max(self.kill_close_ms, default=math.nan),
            "kill_error_ms_p50": percentile(self.kill_error_ms, 50),
        }


@dataclass
class Live:
    """A running kernel with its client and the comm the echo phases use."""

    result: KernelResult
    kernel: KernelProcess
    client: RawClient
    is_mpkernel: bool
    echo_comm: str = ""
    rpc_counter: int = 0

    def next_rpc_id(self, prefix: str) -> str:
        self.rpc_counter += 1
        return f"{prefix}-{self.rpc_counter}"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def with_log(kernel: KernelProcess, exc: BenchError) -> BenchError:
    """The error with the kernel's exit status and the end of its log attached."""
    status = kernel.exit_status()
    where = kernel.label if status is None else f"{kernel.label} (exit status {status})"
    return BenchError(f"{where}: {exc}\n--- kernel log (tail) ---\n{kernel.log_tail()}")


# --------------------------------------------------------------------------- messages


def execute_content(code: str) -> bytes:
    """What a notebook frontend sends for a cell (history on, no stdin)."""
    return json.dumps(
        {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
    ).encode()


def comm_msg_content(comm_id: str, data: JsonDict) -> bytes:
    return json.dumps({"comm_id": comm_id, "data": data}).encode()


def rpc_data(rpc_id: str, method: str, params: JsonDict) -> JsonDict:
    return {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params}


class ReplyWatch:
    """IOPub handler for one comm request: the comm_msg on `comm_id` carrying `rpc_id`.

    Also notes a comm_close of the comm (a refused comm_open, a crashed worker).
    """

    def __init__(self, comm_id: str, rpc_id: str | None) -> None:
        self.comm_id = comm_id
        self.rpc_id = rpc_id
        self.reply_ns = 0
        self.data: Any = None
        self.closed: JsonDict | None = None

    def __call__(self, msg_type: str, msg: RawMessage) -> None:
        if msg_type not in ("comm_msg", "comm_close"):
            return
        content = msg.content
        if content.get("comm_id") != self.comm_id:
            return
        data = content.get("data")
        if msg_type == "comm_close":
            self.closed = data if isinstance(data, dict) else {}
        elif isinstance(data, dict) and data.get("id") == self.rpc_id and not self.reply_ns:
            self.reply_ns = msg.received_ns
            self.data = data

    def done(self) -> bool:
        return bool(self.reply_ns)


def check_ok(live: Live, reply: RawMessage | None, what: str) -> None:
    if reply is None:
        raise BenchError(f"{live.result.label}: {what} got no reply")
    content = reply.content
    if content.get("status") != "ok":
        raise BenchError(
            f"{live.result.label}: {what} replied status={content.get('status')!r}: "
            f"{content.get('ename', '')} {content.get('evalue', '')}"
        )


def execute(
    live: Live,
    code: str,
    *,
    on_iopub: Callable[[str, RawMessage], None] | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> Exchange:
    """One execute_request to its idle and reply; the reply must say ok."""
    msg_id, frames = live.client.build("execute_request", execute_content(code))
    ex = live.client.exchange_frames(
        "shell", msg_id, frames, timeout_s=timeout_s, on_iopub=on_iopub
    )
    check_ok(live, ex.reply, f"execute {code.strip().splitlines()[0]!r}")
    return ex


def open_comm(live: Live, target: str) -> str:
    """comm_open from the client, waited for until its idle; BenchError if refused."""
    comm_id = uuid.uuid4().hex
    watch = ReplyWatch(comm_id, None)
    content = json.dumps({"comm_id": comm_id, "target_name": target, "data": {}}).encode()
    msg_id, frames = live.client.build("comm_open", content)
    live.client.exchange_frames(
        "shell",
        msg_id,
        frames,
        timeout_s=REQUEST_TIMEOUT_S,
        on_iopub=watch,
        expect_reply=False,
    )
    if watch.closed is not None:
        raise BenchError(
            f"{live.result.label}: comm_open on {target!r} was answered by comm_close "
            f"{json.dumps(watch.closed)}"
        )
    return comm_id


def comm_request(
    live: Live, comm_id: str, rpc_id: str, data: JsonDict, *, timeout_s: float = REQUEST_TIMEOUT_S
) -> tuple[ReplyWatch, Exchange]:
    """A comm_msg whose answer carries `rpc_id`: waits for the idle and that answer.

    An answer after the idle is waited for LATE_GRACE_S and recorded as a problem.
    """
    client = live.client
    watch = ReplyWatch(comm_id, rpc_id)
    msg_id, frames = client.build("comm_msg", comm_msg_content(comm_id, data))
    ex = client.exchange_frames(
        "shell", msg_id, frames, timeout_s=timeout_s, on_iopub=watch, expect_reply=False
    )
    if watch.closed is not None:
        raise BenchError(
            f"{live.result.label}: comm {comm_id} was closed while waiting for {rpc_id}: "
            f"{json.dumps(watch.closed)}"
        )
    if not watch.done():
        client.collect_iopub(msg_id, watch, until=watch.done, timeout_s=LATE_GRACE_S)
        if not watch.done():
            raise BenchError(f"{live.result.label}: no comm_msg answer for {rpc_id}")
        live.result.problems.append(f"the answer to {rpc_id} arrived after its idle status")
    return watch, ex


def rpc(live: Live, comm_id: str, method: str, params: JsonDict) -> Any:
    """A JSON-RPC call on an mpkernel worker comm; its result, BenchError on an error."""
    rpc_id = live.next_rpc_id(method)
    watch, _ = comm_request(live, comm_id, rpc_id, rpc_data(rpc_id, method, params))
    data = watch.data
    if "error" in data:
        raise BenchError(f"{live.result.label}: RPC {method} failed: {json.dumps(data['error'])}")
    return data.get("result")


# --------------------------------------------------------------------------- kernels


def start_live(
    kernels: KernelSet,
    result: KernelResult,
    workdir: Path,
    context: Context,
    *,
    is_mpkernel: bool,
) -> Live:
    env = {"IPYTHONDIR": str(workdir / f"ipython-{result.slot}")}
    if is_mpkernel:
        config = workdir / "mpkernel-bench.toml"
        config.write_text(MPKERNEL_CONFIG_TEXT)
        env["MPKERNEL_CONFIG"] = str(config)
    kernel = kernels.create(result.kernel_name, f"comms-{result.slot}", env=env)
    kernel.start()
    client = RawClient(kernel.connection_info(), context=context, alive=kernel.is_alive)
    live = Live(result, kernel, client, is_mpkernel)
    try:
        info = client.wait_ready(timeout_s=START_TIMEOUT_S)
        result.implementation = str(info.get("implementation", "?"))
        result.implementation_version = str(info.get("implementation_version", "?"))
        if not is_mpkernel:
            execute(live, SETUP_CODE)
        live.echo_comm = open_comm(live, ECHO_TARGET if is_mpkernel else B_ECHO_TARGET)
    except BenchError as exc:
        client.close()
        raise with_log(kernel, exc) from exc
    progress(f"ready  {result.label:<14} echo comm {live.echo_comm}")
    return live


# --------------------------------------------------------------------------- 1. echo


def run_echo(live: Live, count: int, *, record: bool) -> None:
    """`count` JSON-RPC echo round trips, each from the send to reply-and-idle."""
    samples: list[float] = []
    comm_id = live.echo_comm
    gc.collect()
    gc.disable()
    try:
        for _ in range(count):
            rpc_id = live.next_rpc_id("echo")
            data = rpc_data(rpc_id, "echo", {"text": "hello", "n": live.rpc_counter})
            watch, ex = comm_request(live, comm_id, rpc_id, data)
            samples.append((max(ex.idle_ns, watch.reply_ns) - ex.sent_ns) / 1e3)
            answer = watch.data
            if live.is_mpkernel and answer.get("result") != data["params"]:
                raise BenchError(f"{live.result.label}: echo answered {json.dumps(answer)}")
            if not live.is_mpkernel and answer != data:
                raise BenchError(f"{live.result.label}: echo answered {json.dumps(answer)}")
    finally:
        gc.enable()
    if record:
        live.result.echo_us += samples


# --------------------------------------------------------------------------- 2. throughput


@dataclass
class ThroughputRound:
    rate: float
    send_ms: float
    missing_replies: int
    missing_idles: int
    duplicates: int
    wrong_answers: int


def run_throughput(live: Live, count: int) -> ThroughputRound:
    """`count` comm_msgs sent back to back; done when every answer and idle has arrived."""
    client = live.client
    comm_id = live.echo_comm
    index: dict[bytes, int] = {}
    expected: list[str] = []
    batch: list[list[bytes]] = []
    for i in range(count):
        rpc_id = live.next_rpc_id("tp")
        msg_id, frames = client.build(
            "comm_msg", comm_msg_content(comm_id, rpc_data(rpc_id, "echo", {"i": i}))
        )
        index[msg_id.encode()] = i
        expected.append(rpc_id)
        batch.append(frames)
    replies = bytearray(count)
    idles = bytearray(count)
    n_replies = n_idles = duplicates = wrong = 0
    last_ns = 0

    def take(msg: RawMessage) -> None:
        nonlocal n_replies, n_idles, duplicates, wrong, last_ns
        frames = msg.frames
        at = msg.at
        found = PARENT_MSG_ID.search(frames[at + 2])
        if found is None:
            return
        i = index.get(found.group(1))
        if i is None:
            return
        kind = MSG_TYPE.search(frames[at + 1])
        msg_type = kind.group(1) if kind else b""
        if msg_type == b"comm_msg":
            data = json.loads(frames[at + 4]).get("data")
            if not isinstance(data, dict) or data.get("id") != expected[i]:
                wrong += 1
            elif replies[i]:
                duplicates += 1
            else:
                replies[i] = 1
                n_replies += 1
                last_ns = msg.received_ns
        elif msg_type == b"status" and b"idle" in frames[at + 4]:
            if idles[i]:
                duplicates += 1
            else:
                idles[i] = 1
                n_idles += 1
                last_ns = msg.received_ns

    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        sent = 0
        while sent < count:
            if client.send_frames("shell", batch[sent], block=False):
                sent += 1
                continue
            # The kernel is behind: read what it has published, then try again.
            msg = client.recv_iopub(timeout_s=0.001)
            if msg is not None:
                take(msg)
            elif not live.kernel.is_alive():
                raise BenchError(f"{live.result.label}: kernel exited during the throughput run")
        sent_ns = time.perf_counter_ns()
        last_progress = time.monotonic()
        seen = n_replies + n_idles
        while n_replies < count or n_idles < count:
            msg = client.recv_iopub(timeout_s=0.5)
            if msg is not None:
                take(msg)
            if n_replies + n_idles != seen:
                seen = n_replies + n_idles
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > STALL_TIMEOUT_S:
                break
            elif msg is None and not live.kernel.is_alive():
                raise BenchError(f"{live.result.label}: kernel exited during the throughput run")
    finally:
        gc.enable()
    complete = n_replies == count and n_idles == count
    rate = count / ((last_ns - t0) / 1e9) if complete else math.nan
    return ThroughputRound(
        rate, (sent_ns - t0) / 1e6, count - n_replies, count - n_idles, duplicates, wrong
    )


def record_throughput(live: Live, count: int, *, record: bool) -> None:
    r = run_throughput(live, count)
    problems: list[str] = []
    if r.missing_replies or r.missing_idles:
        problems.append(
            f"{r.missing_replies} answers and {r.missing_idles} idles of {count} never arrived "
            f"(nothing new for {STALL_TIMEOUT_S:g} s)"
        )
    if r.duplicates:
        problems.append(f"{r.duplicates} duplicate answers or idles")
    if r.wrong_answers:
        problems.append(f"{r.wrong_answers} comm_msgs with a wrong or missing id")
    if record:
        live.result.throughput_msgs_per_s.append(r.rate)
        live.result.throughput_send_ms.append(r.send_ms)
    live.result.problems += [f"throughput ({count} messages): {p}" for p in problems]
    status = "ok" if not problems else "FAIL: " + "; ".join(problems)
    rate = "n/a" if math.isnan(r.rate) else f"{r.rate:9.0f}"
    progress(
        f"tput   {live.result.label:<14} {rate} msg/s{'' if record else ' (warm-up)'}"
        f"  ({count} messages, all sent after {r.send_ms:.0f} ms), {status}"
    )


# --------------------------------------------------------------------------- 3. ordering


class OrderWatch:
    """IOPub handler: stdout lines and comm_msg {"i": i} of one cell, checked against each
    other (a comm_msg i before the stdout line i is a violation)."""

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.partial = ""
        self.printed: set[int] = set()
        self.line_order_errors = 0
        self.next_line = 0
        self.comm_seen = 0
        self.next_comm = 0
        self.comm_order_errors = 0
        self.violations = 0
        self.first_violation: str | None = None

    def __call__(self, msg_type: str, msg: RawMessage) -> None:
        if msg_type == "stream":
            content = msg.content
            if content.get("name") != "stdout":
                return
            *complete, self.partial = (self.partial + str(content.get("text", ""))).split("\n")
            for line in complete:
                try:
                    value = int(line)
                except ValueError:
                    self.line_order_errors += 1
                    continue
                if value != self.next_line:
                    self.line_order_errors += 1
                self.next_line = value + 1
                self.printed.add(value)
        elif msg_type == "comm_msg":
            data = msg.content.get("data")
            if not isinstance(data, dict) or "i" not in data:
                return
            i = data["i"]
            self.comm_seen += 1
            if i != self.next_comm:
                self.comm_order_errors += 1
            self.next_comm = i + 1
            if i not in self.printed:
                self.violations += 1
                if self.first_violation is None:
                    self.first_violation = (
                        f"comm_msg {i} arrived when {len(self.printed)} lines had"
                    )

    def complete(self) -> bool:
        return len(self.printed) >= self.lines and self.comm_seen >= self.lines


def run_order(live: Live, lines: int, round_no: int) -> None:
    watch = OrderWatch(lines)
    code = ORDER_CODE.format(target=ORDER_TARGET, lines=lines)
    ex = execute(live, code, on_iopub=watch, timeout_s=120.0)
    late = not watch.complete()
    if late:
        live.client.collect_iopub(ex.msg_id, watch, until=watch.complete, timeout_s=LATE_GRACE_S)
    problems: list[str] = []
    if late:
        problems.append("output arrived after the idle status")
    if len(watch.printed) != lines or watch.line_order_errors:
        problems.append(
            f"stdout: {len(watch.printed)} of {lines} lines, "
            f"{watch.line_order_errors} out of order or garbled"
        )
    if watch.comm_seen != lines or watch.comm_order_errors:
        problems.append(
            f"comm: {watch.comm_seen} of {lines} comm_msgs, {watch.comm_order_errors} out of order"
        )
    live.result.order_violations.append(watch.violations)
    live.result.problems += [f"ordering round {round_no}: {p}" for p in problems]
    detail = f" (first: {watch.first_violation})" if watch.first_violation else ""
    status = "ok" if not problems else "FAIL: " + "; ".join(problems)
    progress(
        f"order  {live.result.label:<14} {watch.violations:6d} of {lines} comm_msgs before "
        f"their line{detail}, {status}"
    )


# --------------------------------------------------------------------------- 4. load


def run_executes(live: Live, count: int, *, stop_at: float = math.inf) -> list[float]:
    """Up to `count` `pass` executes (fewer if time.monotonic() passes `stop_at`), in us."""
    client = live.client
    content = execute_content("pass")
    samples: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(count):
            if time.monotonic() >= stop_at:
                break
            msg_id, frames = client.build("execute_request", content)
            ex = client.exchange_frames("shell", msg_id, frames, timeout_s=REQUEST_TIMEOUT_S)
            samples.append(ex.to_idle_ns / 1e3)
            check_ok(live, ex.reply, "execute `pass`")
    finally:
        gc.enable()
    return samples


def process_cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return math.nan
    return float(times.user + times.system)


def wait_for(
    live: Live, until: Callable[[RawMessage], bool], *, timeout_s: float, what: str
) -> None:
    """Read IOPub (any parent) until `until(msg)` is true; BenchError at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError(f"{live.result.label}: timed out waiting for {what}")
        msg = live.client.recv_iopub(timeout_s=min(left, 0.5))
        if msg is not None and until(msg):
            return
        if msg is None and not live.kernel.is_alive():
            raise BenchError(f"{live.result.label}: the kernel exited while waiting for {what}")


def parented_to(msg: RawMessage, msg_id: str) -> bool:
    return msg_id.encode() in msg.frames[msg.at + 2]


def is_status(msg: RawMessage, state: str) -> bool:
    return msg.msg_type == "status" and msg.content.get("execution_state") == state


def run_load_mpkernel(live: Live, settings: Settings) -> None:
    """Idle executes, executes while the echo worker burns a core, idle executes again."""
    n = settings.load_executes
    run_executes(live, min(n, 100))  # warm-up
    idle = run_executes(live, n)
    pid = int(rpc(live, live.echo_comm, "pid", {}))
    rpc_id = live.next_rpc_id("burn")
    data = rpc_data(rpc_id, "burn", {"seconds": settings.burn_seconds})
    msg_id, frames = live.client.build("comm_msg", comm_msg_content(live.echo_comm, data))
    burn_sent = time.monotonic()
    live.client.send_frames("shell", frames)
    # The router has taken the request once its busy is out; then let the loop get going.
    wait_for(
        live,
        lambda m: parented_to(m, msg_id) and is_status(m, "busy"),
        timeout_s=REQUEST_TIMEOUT_S,
        what="the busy status of the burn request",
    )
    time.sleep(0.2)
    # Stop well before the burn ends: its answer must not arrive during an execute (the
    # execute's exchange would drop it), and every loaded execute must overlap the burn.
    stop_at = burn_sent + settings.burn_seconds * 0.6
    cpu0, wall0 = process_cpu(pid), time.monotonic()
    loaded = run_executes(live, n, stop_at=stop_at)
    cpu1, wall1 = process_cpu(pid), time.monotonic()
    got: set[str] = set()

    def burn_done(msg: RawMessage) -> bool:
        if parented_to(msg, msg_id):
            if msg.msg_type == "comm_msg" and msg.content.get("data", {}).get("id") == rpc_id:
                got.add("reply")
            elif is_status(msg, "idle"):
                got.add("idle")
        return got == {"reply", "idle"}

    wait_for(
        live,
        burn_done,
        timeout_s=settings.burn_seconds + REQUEST_TIMEOUT_S,
        what="the answer to the burn RPC",
    )
    after = run_executes(live, n)
    live.result.exec_idle_us += idle + after
    live.result.exec_idle_p50_before_after = [percentile(idle, 50), percentile(after, 50)]
    live.result.exec_loaded_us += loaded
    live.result.worker_busy_fraction = (cpu1 - cpu0) / (wall1 - wall0)
    # By construction every loaded execute ended before the burn could; check that the
    # worker really was burning meanwhile.
    if not live.result.worker_busy_fraction >= MIN_BUSY_FRACTION:
        live.result.warnings.append(
            f"load: the echo worker used only {fmt(live.result.worker_busy_fraction * 100, '.0f')}"
            "% of a core during the loaded executes"
        )
    if len(loaded) < n:
        live.result.warnings.append(
            f"load: only {len(loaded)} of {n} executes fit into the burn (--burn-seconds)"
        )
    progress(
        f"load   {live.result.label:<14} p50 idle {percentile(idle + after, 50):9.1f} us, "
        f"worker busy {percentile(loaded, 50):9.1f} us ({len(loaded)} executes, worker at "
        f"{live.result.worker_busy_fraction:.0%} of a core)"
    )


def run_load_ipykernel(live: Live, settings: Settings) -> None:
    """Idle executes; then one execute sent right behind a busy in-process comm handler."""
    n = settings.load_executes
    run_executes(live, min(n, 100))  # warm-up
    idle = run_executes(live, n)
    seconds = settings.ipykernel_block_seconds
    if seconds > 0:
        comm_id = open_comm(live, B_BURN_TARGET)
        live.client.send("shell", "comm_msg", comm_msg_content(comm_id, {"seconds": seconds}))
        ex = execute(live, "pass", timeout_s=seconds + REQUEST_TIMEOUT_S)
        live.result.blocked_exec_ms = ex.to_idle_ns / 1e6
        after = run_executes(live, n)
        live.result.exec_idle_p50_before_after = [percentile(idle, 50), percentile(after, 50)]
        idle += after
    live.result.exec_idle_us += idle
    blocked = fmt(live.result.blocked_exec_ms * 1000.0)
    progress(
        f"load   {live.result.label:<14} p50 idle {percentile(idle, 50):9.1f} us, "
        f"behind a {seconds:g} s comm handler {blocked} us (1 execute)"
    )


# --------------------------------------------------------------------------- 5. kill


def kernel_descendants(kernel: KernelProcess) -> set[int]:
    if kernel.pid is None:
        return set()
    try:
        return {p.pid for p in psutil.Process(kernel.pid).children(recursive=True)}
    except psutil.Error:
        return set()


def run_kill(live: Live, round_no: int) -> None:
    """Open an echo comm, leave a sleep RPC pending, SIGKILL the worker, time the close."""
    result = live.result
    comm_id = open_comm(live, ECHO_TARGET)
    pid = int(rpc(live, comm_id, "pid", {}))
    if pid not in kernel_descendants(live.kernel):
        raise BenchError(f"{result.label}: pid {pid} from the echo worker is not the kernel's")
    rpc_id = live.next_rpc_id("sleep")
    data = rpc_data(rpc_id, "sleep", {"seconds": 30})
    msg_id, frames = live.client.build("comm_msg", comm_msg_content(comm_id, data))
    live.client.send_frames("shell", frames)
    wait_for(
        live,
        lambda m: parented_to(m, msg_id) and is_status(m, "busy"),
        timeout_s=REQUEST_TIMEOUT_S,
        what="the busy status of the sleep request",
    )
    time.sleep(0.02)  # the request reaches the worker and the sleep begins
    seen: dict[str, int] = {}
    close_data: JsonDict = {}
    error_data: Any = None

    def take(msg: RawMessage) -> bool:
        nonlocal close_data, error_data
        msg_type = msg.msg_type
        if msg_type == "comm_close" and msg.content.get("comm_id") == comm_id:
            seen.setdefault("close", msg.received_ns)
            close_data = msg.content.get("data") or {}
        elif msg_type == "comm_msg" and msg.content.get("comm_id") == comm_id:
            answer = msg.content.get("data")
            if isinstance(answer, dict) and answer.get("id") == rpc_id:
                seen.setdefault("error", msg.received_ns)
                error_data = answer
        elif parented_to(msg, msg_id) and is_status(msg, "idle"):
            seen.setdefault("idle", msg.received_ns)
        return len(seen) == 3

    t0 = time.perf_counter_ns()
    os.kill(pid, signal.SIGKILL)
    try:
        wait_for(live, take, timeout_s=KILL_TIMEOUT_S, what="comm_close after the SIGKILL")
    except BenchError:
        missing = sorted({"close", "error", "idle"} - set(seen))
        result.problems.append(
            f"kill round {round_no}: {', '.join(missing)} missing {KILL_TIMEOUT_S:g} s after "
            f"SIGKILL of worker {pid}"
        )
        if "close" not in seen:
            return
    close_ms = (seen["close"] - t0) / 1e6
    result.kill_close_ms.append(close_ms)
    problems: list[str] = []
    if "error" in seen:
        result.kill_error_ms.append((seen["error"] - t0) / 1e6)
        if seen["error"] < seen["close"]:
            result.kill_error_first += 1
        else:
            problems.append("the error reply came after the comm_close")
        if not isinstance(error_data, dict) or "error" not in error_data:
            problems.append(f"the pending RPC was answered without an error: {error_data}")
    if "idle" in seen and seen["idle"] < seen["close"]:
        problems.append("the sleep request's idle came before the comm_close")
    if close_data.get("reason") != "worker_crashed":
        problems.append(f"comm_close data {json.dumps(close_data)}")
    result.problems += [f"kill round {round_no}: {p}" for p in problems]
    if round_no == 1 or round_no % 10 == 0 or problems:
        progress(
            f"kill   {result.label:<14} round {round_no:3d}: comm_close after {close_ms:7.1f} ms"
            + ("" if not problems else "; " + "; ".join(problems))
        )


def worker_crashes(live: Live) -> int | None:
    """The echo worker's crash count as the kernel's `mpkernel.health` status reports it."""
    try:
        comm_id = open_comm(live, HEALTH_TARGET)
        status = rpc(live, comm_id, "status", {})
    except BenchError as exc:
        live.result.problems.append(f"health status: {exc}")
        return None
    for worker in status.get("workers", []):
        if worker.get("name") == "echo":
            return int(worker.get("crashes", 0))
    return None


# --------------------------------------------------------------------------- driver


def run_phases(settings: Settings, a: Live, b: Live) -> None:
    lives = [a, b]
    for live in lives:
        run_echo(live, settings.warmup, record=False)
    done = 0
    while done < settings.round_trips:
        block = min(ROUND_TRIP_BLOCK, settings.round_trips - done)
        for live in lives:
            run_echo(live, block, record=True)
        done += block
    for live in lives:
        r = live.result
        progress(
            f"echo   {r.label:<14} p50 {percentile(r.echo_us, 50):9.1f} us, "
            f"p99 {percentile(r.echo_us, 99):9.1f} us"
        )

    warm = max(1, settings.throughput_messages // 10)
    for live in lives:
        record_throughput(live, warm, record=False)
    for _ in range(settings.throughput_rounds):
        for live in lives:
            record_throughput(live, settings.throughput_messages, record=True)

    for round_no in range(1, settings.order_rounds + 1):
        for live in lives:
            run_order(live, settings.order_lines, round_no)

    run_load_mpkernel(a, settings)
    run_load_ipykernel(b, settings)

    for round_no in range(1, settings.kills + 1):
        run_kill(a, round_no)
    crashes = a.result.worker_crashes_seen = worker_crashes(a)
    if crashes is not None and crashes != settings.kills:
        a.result.problems.append(
            f"kill: the kernel counted {crashes} echo worker crashes after {settings.kills} kills"
        )
    r = a.result
    progress(
        f"kill   {r.label:<14} comm_close p50 {percentile(r.kill_close_ms, 50):7.1f} ms, "
        f"p99 {percentile(r.kill_close_ms, 99):7.1f} ms over {len(r.kill_close_ms)} kills; "
        f"echo worker crashes counted by the kernel: {r.worker_crashes_seen}"
    )


def run(settings: Settings, results: list[KernelResult], workdir: Path, notes: list[str]) -> None:
    kernels = KernelSet(workdir, os.environ)
    context: Context = zmq.Context()
    lives: list[Live] = []
    try:
        for result, is_mp in zip(results, (True, False), strict=True):
            lives.append(start_live(kernels, result, workdir, context, is_mpkernel=is_mp))
        try:
            run_phases(settings, lives[0], lives[1])
        except BenchError as exc:
            # The end of the log of the kernel the error is about (or of a dead one).
            for live in lives:
                if live.result.label in str(exc) or not live.kernel.is_alive():
                    raise with_log(live.kernel, exc) from exc
            raise
    finally:
        try:
            context.destroy(linger=0)  # every client socket
        finally:
            try:
                kernels.close()
            finally:
                notes += kernels.cleanup_notes


# --------------------------------------------------------------------------- report


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def fmt(value: float, spec: str = ".1f") -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def judge(key: str, value: float) -> str:
    """The verdict on a figure with a target, judged as printed (two decimals)."""
    if key not in TARGETS:
        return ""
    if math.isnan(value):
        return "n/a"
    op, limit, _ = TARGETS[key]
    value = round(value, 2)
    met = {"<=": value <= limit, ">=": value >= limit, "<": value < limit}[op]
    if met:
        return "ok"
    return "FAIL" if key == "order_violations" else "MISS"


@dataclass
class Row:
    """One line of the table: a figure of both kernels (B is NaN for mpkernel-only ones)."""

    name: str
    key: str
    spec: str
    a: float
    b: float
    show_ratio: bool

    def ratio(self) -> float:
        return ratio(self.a, self.b) if self.show_ratio else math.nan

    def verdict(self) -> str:
        """Judged on the ratio A/B for RATIO_TARGETS, else on A's own figure."""
        return judge(self.key, ratio(self.a, self.b) if self.key in RATIO_TARGETS else self.a)


def figure_rows(settings: Settings, a: KernelResult, b: KernelResult) -> list[Row]:
    sa, sb = a.summary(), b.summary()

    def both(name: str, key: str, spec: str = ".1f", *, show_ratio: bool = True) -> Row:
        return Row(name, key, spec, sa[key], sb[key], show_ratio)

    def a_only(name: str, key: str) -> Row:
        return Row(name, key, ".1f", sa[key], math.nan, False)

    order_n = settings.order_lines * settings.order_rounds
    return [
        both("comm echo round trip p50 (us)", "echo_us_p50"),
        both("comm echo round trip p99 (us)", "echo_us_p99"),
        both(
            f"pipelined {settings.throughput_messages} comm_msgs, median (msg/s)",
            "throughput_msgs_per_s",
            ".0f",
        ),
        both(
            f"print/comm ordering violations (of {order_n})",
            "order_violations",
            ".0f",
            show_ratio=False,
        ),
        both("execute `pass` p50, idle (us)", "exec_idle_us_p50"),
        both("execute `pass` p50, comm handler busy (us)", "exec_loaded_us_p50", show_ratio=False),
        both("  busy / idle (x)", "load_exec_ratio", ".2f", show_ratio=False),
        a_only("worker SIGKILL -> comm_close p50 (ms)", "kill_close_ms_p50"),
        a_only("worker SIGKILL -> comm_close p99 (ms)", "kill_close_ms_p99"),
        a_only("worker SIGKILL -> error reply p50 (ms)", "kill_error_ms_p50"),
    ]


def report(env: dict[str, str], settings: Settings, results: list[KernelResult]) -> str:
    a, b = results
    rows: list[list[str]] = []
    for row in figure_rows(settings, a, b):
        a_over_b = row.ratio()
        judged = row.verdict()
        if row.key == "order_violations" and any(p.startswith("ordering") for p in a.problems):
            judged = "FAIL"
        rows.append(
            [
                row.name,
                fmt(row.a, row.spec),
                fmt(row.b, row.spec),
                "" if math.isnan(a_over_b) else f"{a_over_b:.2f}x",
                TARGETS[row.key][2] if row.key in TARGETS else "",
                judged,
            ]
        )
    header = [
        "comm benchmark: A mpkernel (comms in worker processes) and B ipykernel (in-process "
        "comms), alternating where both apply, one raw ZMQ client for both",
        f"host: {env['cpu_count']} CPUs (os.cpu_count), {env['platform']}, "
        f"{env['python_impl']} {env['python']}, load average {env['loadavg_1m']} at start",
        f"pyzmq {env['pyzmq']} / libzmq {env['libzmq']}, jupyter_client {env['jupyter_client']}, "
        f"ipykernel {env['ipykernel']}, mpkernel {env['mpkernel']}",
        *(
            f"{r.label}: {r.implementation} {r.implementation_version}; argv {shlex.join(r.argv)}"
            for r in results
        ),
        f"settings: {settings.round_trips} echo round trips (+{settings.warmup} warm-up), "
        f"{settings.throughput_rounds} x {settings.throughput_messages} pipelined comm_msgs "
        f"(+1 x {max(1, settings.throughput_messages // 10)} warm-up), "
        f"{settings.order_rounds} x {settings.order_lines} print/comm pairs, "
        f"{settings.load_executes} executes per load state, burn {settings.burn_seconds:g} s, "
        f"{settings.kills} worker kills",
    ]
    sa = a.summary()
    notes = [
        "throughput rounds (msg/s): "
        + ", ".join(
            f"{r.label} [{' '.join(fmt(v, '.0f') for v in r.throughput_msgs_per_s)}]"
            for r in results
        ),
        "ordering violations per round: "
        + ", ".join(f"{r.label} {r.order_violations}" for r in results),
        f"A under load: {len(a.exec_loaded_us)} executes while the echo worker burned "
        f"{fmt(a.worker_busy_fraction * 100, '.0f')}% of a core; B: one execute sent behind a "
        f"{settings.ipykernel_block_seconds:g} s busy loop in an in-process comm handler "
        "(ipykernel runs comm handlers on its shell thread, so it waits for the loop)",
        "idle execute p50 before / after the busy phase (us): "
        + ", ".join(
            f"{r.label} {' / '.join(fmt(v) for v in r.exec_idle_p50_before_after) or 'n/a'}"
            for r in results
        ),
        f"A kills: comm_close max {fmt(sa['kill_close_ms_max'])} ms; error reply before "
        f"comm_close in {a.kill_error_first} of {len(a.kill_close_ms)}; echo worker crashes "
        f"counted by the kernel: {a.worker_crashes_seen}",
        "A's echo runs through a worker process (kernel io thread -> worker -> kernel), B's in "
        "the kernel process; both figures include the same client's cost",
        "noise: the figures move with other load on the machine; see docs/benchmarks.md",
    ]
    for r in results:
        kind = "FAIL" if r is a else "note"
        notes += [f"{kind} {r.label}: {p}" for p in r.problems]
        notes += [f"warning {r.label}: {w}" for w in r.warnings]
    table = render_table(["figure", a.label, b.label, "A/B", "target", ""], rows)
    return "\n".join([*header, "", table, "", *notes])


def failed(results: list[KernelResult]) -> bool:
    """mpkernel (A) failed a correctness check: a problem or an ordering violation."""
    a = results[0]
    return bool(a.problems) or any(a.order_violations)


def write_json(
    path: Path, env: dict[str, str], settings: Settings, results: list[KernelResult]
) -> None:
    def clean(value: float) -> float | None:
        return None if math.isnan(value) else value

    a, b = results
    doc: JsonDict = {
        "environment": env,
        "settings": asdict(settings),
        "kernels": [
            {
                **asdict(r),
                "worker_busy_fraction": clean(r.worker_busy_fraction),
                "blocked_exec_ms": clean(r.blocked_exec_ms),
                "summary": {k: clean(v) for k, v in r.summary().items()},
            }
            for r in results
        ],
        "figures": [
            {
                "name": row.name.strip(),
                "key": row.key,
                "a": clean(row.a),
                "b": clean(row.b),
                "a_over_b": clean(row.ratio()),
                "target": TARGETS[row.key][2] if row.key in TARGETS else None,
                "verdict": row.verdict() or None,
            }
            for row in figure_rows(settings, a, b)
        ],
        "ok": not failed(results),
    }
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark mpkernel's worker comms against ipykernel's in-process comms."
    )
    parser.add_argument("--mpkernel", default="mpkernel", help="kernelspec of A [%(default)s]")
    parser.add_argument("--ipykernel", default="python3", help="kernelspec of B [%(default)s]")
    parser.add_argument("--round-trips", type=int, default=1000, help="timed echo round trips")
    parser.add_argument("--warmup", type=int, default=100, help="untimed echo round trips")
    parser.add_argument(
        "--throughput-messages",
        type=int,
        default=10_000,
        help="comm_msgs per pipelined round [%(default)s]",
    )
    parser.add_argument("--throughput-rounds", type=int, default=3, help="timed pipelined rounds")
    parser.add_argument("--order-lines", type=int, default=1000, help="print/comm pairs per cell")
    parser.add_argument("--order-rounds", type=int, default=2, help="ordering cells per kernel")
    parser.add_argument(
        "--load-executes",
        type=int,
        default=300,
        help="`pass` executes per load state [%(default)s]",
    )
    parser.add_argument(
        "--burn-seconds",
        type=float,
        default=10.0,
        help="length of A's worker CPU loop [%(default)s]",
    )
    parser.add_argument(
        "--ipykernel-block-seconds",
        type=float,
        default=2.0,
        help="B's in-process busy comm handler; 0 skips it [%(default)s]",
    )
    parser.add_argument("--kills", type=int, default=50, help="worker SIGKILL rounds on A")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    for opt in (
        "round_trips",
        "throughput_messages",
        "throughput_rounds",
        "order_lines",
        "order_rounds",
        "load_executes",
        "kills",
    ):
        if getattr(args, opt) < 1:
            parser.error(f"--{opt.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.ipykernel_block_seconds < 0:
        parser.error("--warmup and --ipykernel-block-seconds must not be negative")
    if args.burn_seconds < 1:
        parser.error("--burn-seconds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(
        kernels=(args.mpkernel, args.ipykernel),
        round_trips=args.round_trips,
        warmup=args.warmup,
        throughput_messages=args.throughput_messages,
        throughput_rounds=args.throughput_rounds,
        order_lines=args.order_lines,
        order_rounds=args.order_rounds,
        load_executes=args.load_executes,
        burn_seconds=args.burn_seconds,
        ipykernel_block_seconds=args.ipykernel_block_seconds,
        kills=args.kills,
    )
    return drive_benchmark(
        settings,
        settings.kernels,
        KernelResult,
        run,
        report,
        write_json,
        args.json,
        failed,
    )


if __name__ == "__main__":
    sys.exit(main())
