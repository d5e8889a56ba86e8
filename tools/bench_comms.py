"""Comm scenarios: mpkernel's worker-served comms against ipykernel's in-process comms.

Run through `tools/bench.py` (`.venv/bin/python tools/bench.py comms`).

On mpkernel the comm is `mpkernel.echo`, served by the echo worker process. On any other
kernel, a cell first registers `bench.echo` through the `comm` package (SETUP_CODE): an
in-process handler that answers the same requests the same way (`echo` -> params, `pid`,
`burn`), on the kernel's shell thread. Every request is Positron-shaped (no JSON-RPC id) and
its answer is the comm_msg on that comm parented to it.
"""

from __future__ import annotations

import gc
import math
import os
import signal
import textwrap
import time
from collections.abc import Callable
from typing import Any

import psutil
from _benchclient import Client, Received
from _benchdriver import Figure, Live, Round, Samples, Scenario, Target, median
from _benchkernels import BenchError, Contender

ECHO_TARGET = "mpkernel.echo"  # served by mpkernel's echo worker
HEALTH_TARGET = "mpkernel.health"
B_ECHO_TARGET = "bench.echo"  # registered in-process by SETUP_CODE
ORDER_TARGET = "bench.order"  # opened from the kernel side; no frontend target needed
REQUEST_TIMEOUT_S = 30.0
STALL_TIMEOUT_S = 15.0  # throughput: give up when nothing new arrived for this long
KILL_TIMEOUT_S = 10.0
MIN_BUSY_FRACTION = 0.25  # below this share of a core the busy-worker figure means little
# The echo worker's restart budget for the kill scenario (default: 5 crashes in 60 s).
KILL_CONFIG = "[workers.echo]\nmax_restarts = 1000\n"

SETUP_CODE = textwrap.dedent(
    f"""
    import comm as _bench_comm, os as _bench_os, time as _bench_time

    def _bench_burn(seconds):
        end = _bench_time.perf_counter() + float(seconds)
        n = 0
        while _bench_time.perf_counter() < end:
            n += 1
        return {{"iterations": n}}

    _bench_methods = {{"echo": lambda **p: p, "pid": _bench_os.getpid, "burn": _bench_burn}}

    def _bench_open(c, msg):
        def on_msg(m):
            data = m["content"]["data"]
            result = _bench_methods[data["method"]](**data.get("params", {{}}))
            c.send({{"jsonrpc": "2.0", "result": result}})
        c.on_msg(on_msg)

    _bench_comm.get_comm_manager().register_target({B_ECHO_TARGET!r}, _bench_open)
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


def echo_comm(live: Live) -> str:
    """The kernel's echo comm (opened once per kernel): the worker's, or the in-process one."""
    comm_id: str | None = live.state.get("echo_comm")
    if comm_id is None:
        if live.is_mpkernel:
            target = ECHO_TARGET
        else:
            live.client.execute(SETUP_CODE, timeout_s=REQUEST_TIMEOUT_S)
            target = B_ECHO_TARGET
        comm_id = live.state["echo_comm"] = live.client.comm_open(
            target, timeout_s=REQUEST_TIMEOUT_S
        )
    return comm_id


# --------------------------------------------------------------------------- echo


def comm_echo(r: Round) -> Samples:
    """`size` echo requests, each from its send until its answer and its idle are in."""
    live = r.live()
    comm_id = echo_comm(live)
    samples: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for i in range(r.size):
            params = {"text": "hello", "n": i}
            answer = live.client.comm_request(comm_id, "echo", params, timeout_s=REQUEST_TIMEOUT_S)
            samples.append((answer.done_ns - answer.exchange.sent_ns) / 1e3)
            if not isinstance(answer.data, dict) or answer.data.get("result") != params:
                raise BenchError(f"{r.side.label}: echo answered {answer.data!r}")
            if answer.at_ns > answer.exchange.idle_ns:
                r.problem("an echo answer arrived after its idle status")
    finally:
        gc.enable()
    if r.index == 0:
        r.say(f"{r.size} echo round trips")
    return {"echo_us": samples}


# --------------------------------------------------------------------------- throughput


def comm_throughput(r: Round) -> Samples:
    """`size` echo requests sent back to back (IOPub is read whenever the shell socket would
    block); done when every answer and every idle has arrived. The warm-up is a tenth."""
    live = r.live()
    client = live.client
    comm_id = echo_comm(live)
    count = max(1, r.size // 10) if r.warm else r.size
    batch = [client.prepare_comm_request(comm_id, "echo", {"i": i}) for i in range(count)]
    index = {p.msg_id: i for i, p in enumerate(batch)}
    answers = bytearray(count)
    idles = bytearray(count)
    counts = {"answers": 0, "idles": 0, "duplicates": 0, "wrong": 0}
    last_ns = 0

    def take(got: Received) -> None:
        nonlocal last_ns
        i = index.get(got.parent_id or "")
        if i is None:
            return
        if got.msg_type == "comm_msg":
            data = got.content.get("data")
            if not isinstance(data, dict) or data.get("result") != {"i": i}:
                counts["wrong"] += 1
            elif answers[i]:
                counts["duplicates"] += 1
            else:
                answers[i] = 1
                counts["answers"] += 1
                last_ns = got.at_ns
        elif got.is_status("idle"):
            if idles[i]:
                counts["duplicates"] += 1
            else:
                idles[i] = 1
                counts["idles"] += 1
                last_ns = got.at_ns

    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        sent = 0
        while sent < count:
            if client.send_prepared("shell", batch[sent], block=False):
                sent += 1
                continue
            got = client.recv_iopub(timeout_s=0.001)  # the kernel is behind: read, retry
            if got is not None:
                take(got)
            elif not live.kernel.is_alive():
                raise BenchError(f"{r.side.label}: kernel exited during the throughput run")
        sent_ms = (time.perf_counter_ns() - t0) / 1e6
        last_progress = time.monotonic()
        seen = 0
        while counts["answers"] < count or counts["idles"] < count:
            got = client.recv_iopub(timeout_s=0.5)
            if got is not None:
                take(got)
            if counts["answers"] + counts["idles"] != seen:
                seen = counts["answers"] + counts["idles"]
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > STALL_TIMEOUT_S:
                break
            elif got is None and not live.kernel.is_alive():
                raise BenchError(f"{r.side.label}: kernel exited during the throughput run")
    finally:
        gc.enable()
    missing = (count - counts["answers"], count - counts["idles"])
    if any(missing):
        r.problem(f"{missing[0]} answers and {missing[1]} idles of {count} never arrived")
    if counts["duplicates"] or counts["wrong"]:
        r.problem(f"{counts['duplicates']} duplicates, {counts['wrong']} wrong answers")
    rate = count / ((last_ns - t0) / 1e9) if not any(missing) else math.nan
    r.say(f"{rate:9.0f} msg/s ({count} messages, all sent after {sent_ms:.0f} ms)")
    return {"msgs_per_s": [rate]}


# --------------------------------------------------------------------------- ordering


def ordering(r: Round) -> Samples:
    """A cell that prints line i then sends comm_msg i, `size` times, on a comm opened by
    the `comm` package: how often comm_msg i arrives before the line i."""
    live = r.live()
    printed: set[int] = set()
    partial = [""]
    comm_seen: list[int] = []
    violations = 0

    def take(got: Received) -> None:
        nonlocal violations
        if got.msg_type == "stream" and got.content.get("name") == "stdout":
            *complete, partial[0] = (partial[0] + str(got.content.get("text", ""))).split("\n")
            printed.update(int(line) for line in complete if line.isdigit())
        elif got.msg_type == "comm_msg":
            data = got.content.get("data")
            if isinstance(data, dict) and isinstance(data.get("i"), int):
                comm_seen.append(data["i"])
                if data["i"] not in printed:
                    violations += 1

    lines = r.size
    code = ORDER_CODE.format(target=ORDER_TARGET, lines=lines)
    ex = live.client.execute(code, timeout_s=120.0, on_iopub=take)

    def done() -> bool:
        return len(printed) >= lines and len(comm_seen) >= lines

    if not done():
        live.client.collect_iopub(ex.msg_id, take, until=done, timeout_s=2.0)
        r.problem("output arrived after the idle status")
    if printed != set(range(lines)) or comm_seen != list(range(lines)):
        r.problem(f"{len(printed)} lines and {len(comm_seen)} comm_msgs (in order?) of {lines}")
    r.say(f"{violations} of {lines} comm_msgs before their line")
    return {"violations": [float(violations)]}


# --------------------------------------------------------------------------- busy worker


def executes(client: Client, count: int, *, stop_at: float = math.inf) -> list[float]:
    """Up to `count` `pass` executes (fewer once time.monotonic() passes `stop_at`), in us."""
    samples: list[float] = []
    for _ in range(count):
        if time.monotonic() >= stop_at:
            break
        samples.append(client.execute("pass", timeout_s=REQUEST_TIMEOUT_S).to_idle_ns / 1e3)
    return samples


def process_cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return math.nan
    return float(times.user + times.system)


def busy_worker(r: Round) -> Samples:
    """`pass` executes while the echo comm's handler burns CPU (`size` seconds), against
    executes before and after. mpkernel's handler runs in a worker; ipykernel's in-process
    handler runs on the shell thread, so there the first execute waits out the whole loop."""
    live = r.live()
    client = live.client
    comm_id = echo_comm(live)
    n = 100 if not r.run.quick else 5
    executes(client, n)  # warm-up
    before = executes(client, n)
    pid = int(client.rpc(comm_id, "pid", {}, timeout_s=REQUEST_TIMEOUT_S))
    seconds = float(r.size)
    burn = client.prepare_comm_request(comm_id, "burn", {"seconds": seconds})
    got: set[str] = set()

    def spy(msg: Received) -> None:
        if msg.parent_id != burn.msg_id:
            return
        if msg.msg_type == "comm_msg":
            got.add("answer")
        elif msg.is_status("busy"):
            got.add("busy")
        elif msg.is_status("idle"):
            got.add("idle")

    with client.watch(spy):
        burn_sent = time.monotonic()
        client.send_prepared("shell", burn)
        # The kernel has taken the request once its busy is out; let the loop get going.
        client.wait_iopub(lambda m: "busy" in got, timeout_s=REQUEST_TIMEOUT_S, what="busy")
        time.sleep(0.2)
        # Stop well before the burn ends, so every busy execute overlaps the loop.
        cpu0, wall0 = process_cpu(pid), time.monotonic()
        busy = executes(client, 10**9, stop_at=burn_sent + seconds * 0.6)
        fraction = (process_cpu(pid) - cpu0) / (time.monotonic() - wall0)
        if not {"answer", "idle"} <= got:
            client.wait_iopub(
                lambda m: {"answer", "idle"} <= got,
                timeout_s=seconds + REQUEST_TIMEOUT_S,
                what="the answer to the burn request",
            )
    after = executes(client, n)
    idle_p50 = median(before + after)
    if live.is_mpkernel and not fraction >= MIN_BUSY_FRACTION:
        r.note(f"the echo worker used only {fraction:.0%} of a core during the busy executes")
    r.say(
        f"p50 idle {idle_p50:9.1f} us (before {median(before):.1f}, after {median(after):.1f}), "
        f"busy {median(busy):9.1f} us over {len(busy)} executes, "
        f"handler at {fraction:.0%} of a core"
    )
    return {
        "idle_us": before + after,
        "busy_us": busy,
        "busy_over_idle": [median(busy) / idle_p50],
    }


# --------------------------------------------------------------------------- worker kill


def worker_kill(r: Round) -> Samples:
    """Open an echo comm, leave a `sleep` request pending, SIGKILL its worker; time the
    comm_close, and the pending request's error answer, on IOPub."""
    live = r.live()
    client = live.client
    comm_id = client.comm_open(ECHO_TARGET, timeout_s=REQUEST_TIMEOUT_S)
    pid = int(client.rpc(comm_id, "pid", {}, timeout_s=REQUEST_TIMEOUT_S))
    if pid not in {p.pid for p in live.kernel.processes()}:
        raise BenchError(f"{r.side.label}: pid {pid} from the echo worker is not the kernel's")
    sleep = client.prepare_comm_request(comm_id, "sleep", {"seconds": 30})
    client.send_prepared("shell", sleep)
    client.wait_iopub(
        lambda m: m.parent_id == sleep.msg_id and m.is_status("busy"),
        timeout_s=REQUEST_TIMEOUT_S,
        what="the busy status of the sleep request",
    )
    time.sleep(0.02)  # the request reaches the worker and the sleep begins
    seen: dict[str, int] = {}
    data: dict[str, Any] = {}

    def take(m: Received) -> bool:
        if m.msg_type == "comm_close" and m.content.get("comm_id") == comm_id:
            seen.setdefault("close", m.at_ns)
            data["close"] = m.content.get("data") or {}
        elif m.parent_id == sleep.msg_id and m.msg_type == "comm_msg":
            seen.setdefault("error", m.at_ns)
            data["error"] = m.content.get("data")
        elif m.parent_id == sleep.msg_id and m.is_status("idle"):
            seen.setdefault("idle", m.at_ns)
        return len(seen) == 3

    t0 = time.perf_counter_ns()
    os.kill(pid, signal.SIGKILL)
    try:
        client.wait_iopub(take, timeout_s=KILL_TIMEOUT_S, what="comm_close after the SIGKILL")
    except BenchError:
        r.problem(f"{sorted({'close', 'error', 'idle'} - set(seen))} missing after the SIGKILL")
        if "close" not in seen:
            return {}
    samples: Samples = {"close_ms": [(seen["close"] - t0) / 1e6]}
    if "error" in seen:
        samples["error_ms"] = [(seen["error"] - t0) / 1e6]
        if seen["error"] > seen["close"]:
            r.problem("the error answer came after the comm_close")
        if not isinstance(data["error"], dict) or "error" not in data["error"]:
            r.problem(f"the pending request was answered without an error: {data['error']}")
    if seen.get("idle", math.inf) < seen["close"]:
        r.problem("the sleep request's idle came before the comm_close")
    if data["close"].get("reason") != "worker_crashed":
        r.problem(f"comm_close data {data['close']}")
    kills = live.state["kills"] = live.state.get("kills", 0) + 1
    if r.index == 0 or kills % 10 == 0:
        r.say(f"kill {kills}: comm_close after {samples['close_ms'][0]:.1f} ms")
    if r.last:
        check_crash_count(r, live, kills)
    return samples


def check_crash_count(r: Round, live: Live, kills: int) -> None:
    """The kernel's own `mpkernel.health` status must count every kill as an echo crash."""
    health = live.client.comm_open(HEALTH_TARGET, timeout_s=REQUEST_TIMEOUT_S)
    status = live.client.rpc(health, "status", {}, timeout_s=REQUEST_TIMEOUT_S)
    crashes = [w.get("crashes") for w in status.get("workers", []) if w.get("name") == "echo"]
    if crashes != [kills]:
        r.problem(f"the kernel counted {crashes} echo worker crashes after {kills} kills")


def mpkernel_only(config: str = "") -> Callable[[Contender, Contender], tuple[Contender, ...]]:
    """`Scenario.sides`: side A's kernelspec alone, with `config` as MPKERNEL_CONFIG."""

    def sides(a: Contender, b: Contender) -> tuple[Contender, ...]:
        return (Contender(a.label, a.kernel_name, config=config),)

    return sides


SCENARIOS = [
    Scenario(
        "comm_echo",
        "echo request on a comm (mpkernel: through the worker; ipykernel: in-process)",
        comm_echo,
        figures=(
            Figure("comm echo round trip, p50 (us)", "echo_us", "p50", Target("<=", 1.0)),
            Figure("comm echo round trip, p99 (us)", "echo_us", "p99"),
        ),
        rounds=10,
        size=100,
        quick_size=10,
    ),
    Scenario(
        "comm_throughput",
        "pipelined echo requests until every answer and idle is in",
        comm_throughput,
        figures=(
            Figure(
                "pipelined {size} comm requests, median (msg/s)",
                "msgs_per_s",
                "median",
                Target(">=", 2.0),
                spec=".0f",
            ),
        ),
        rounds=3,
        size=10_000,
        quick_size=50,
    ),
    Scenario(
        "ordering",
        "print(i); comm.send(i) in one cell: comm_msgs ahead of their line",
        ordering,
        figures=(
            Figure(
                "print/comm ordering violations (of {rounds} x {size})",
                "violations",
                "sum",
                Target("<=", 0.0, on_ratio=False),
                ratio=False,
                spec=".0f",
            ),
        ),
        rounds=2,
        size=1000,
        warmup=0,
        quick_size=20,
    ),
    Scenario(
        "busy_worker",
        "execute latency while the echo comm's handler burns CPU for {size} s",
        busy_worker,
        figures=(
            Figure("execute `pass` p50, idle (us)", "idle_us", "p50"),
            Figure("execute `pass` p50, comm handler busy (us)", "busy_us", "p50", ratio=False),
            Figure(
                "  busy / idle (x)",
                "busy_over_idle",
                "median",
                Target("<", 1.5, on_ratio=False),
                ratio=False,
                spec=".2f",
            ),
        ),
        rounds=1,
        size=6,
        warmup=0,
        quick_size=1,
    ),
    Scenario(
        "worker_kill",
        "SIGKILL of the echo worker with a request pending -> error answer + comm_close",
        worker_kill,
        figures=(
            Figure("worker SIGKILL -> comm_close, p50 (ms)", "close_ms", "p50"),
            Figure(
                "worker SIGKILL -> comm_close, p99 (ms)",
                "close_ms",
                "p99",
                Target("<", 100.0, on_ratio=False),
            ),
            Figure("worker SIGKILL -> error answer, p50 (ms)", "error_ms", "p50"),
        ),
        rounds=50,
        warmup=0,
        sides=mpkernel_only(KILL_CONFIG),
    ),
]
