"""Kernel scenarios: cold start, idle RSS, `pass` execute round trip, 100k prints.

Run through `tools/bench.py` (`.venv/bin/python tools/bench.py kernel`).
"""

from __future__ import annotations

import gc
import time

from _benchclient import Client, Received
from _benchdriver import Figure, Round, Samples, Scenario, Target, with_log
from _benchkernels import BenchError

ECHO_TARGET = "mpkernel.echo"  # served by mpkernel's echo worker
EXECUTE_TIMEOUT_S = 30.0
STREAM_TIMEOUT_S = 300.0
START_TIMEOUT_S = 60.0
LATE_OUTPUT_GRACE_S = 2.0
MIB = 1024 * 1024


def cold_start(r: Round) -> Samples:
    """A fresh kernel: from just before start_kernel() to its first kernel_info_reply."""
    kernel = r.run.kernels.create(r.contender, f"start-{r.side.slot}")
    kernel.open_log()
    try:
        t0 = time.perf_counter_ns()
        kernel.start()
        client = r.run.client(kernel)
        try:
            reply = client.wait_for_kernel_info(timeout_s=START_TIMEOUT_S)
            comm_ms = first_comm_ms(client) if is_mpkernel(reply) else None
        finally:
            client.close()
    except BenchError as exc:
        raise with_log(kernel, exc) from exc
    finally:
        r.run.kernels.stop(kernel)
    r.side.implementation = str(reply.content.get("implementation", "?"))
    ms = (reply.at_ns - t0) / 1e6
    samples = {"start_ms": [ms]}
    if comm_ms is not None:
        samples["first_comm_ms"] = [comm_ms]
    r.say(f"cold start {ms:8.1f} ms" + (f", first comm {comm_ms:6.1f} ms" if comm_ms else ""))
    return samples


def is_mpkernel(reply: Received) -> bool:
    return reply.content.get("implementation") == "mpkernel"


def first_comm_ms(client: Client) -> float:
    """Right after start: a comm served by a worker opened and its first request answered
    (what start-up defers must not make the first comm slow)."""
    t0 = time.perf_counter_ns()
    comm_id = client.comm_open(ECHO_TARGET, timeout_s=START_TIMEOUT_S)
    answer = client.comm_request(comm_id, "echo", {"first": True}, timeout_s=START_TIMEOUT_S)
    return (answer.done_ns - t0) / 1e6


def execute(r: Round) -> Samples:
    """A block of `size` `pass` executes back to back, each from its send to its idle."""
    live = r.live()
    client = live.client
    samples: list[float] = []
    gc.collect()
    cpu0, own0 = live.kernel.cpu_seconds(), time.process_time()
    gc.disable()
    try:
        for _ in range(r.size):
            ex = client.execute("pass", timeout_s=EXECUTE_TIMEOUT_S)
            samples.append(ex.to_idle_ns / 1e3)
    finally:
        gc.enable()
    per = 1e6 / max(1, r.size)
    kernel_cpu = (live.kernel.cpu_seconds() - cpu0) * per
    client_cpu = (time.process_time() - own0) * per
    if r.index == 0:
        r.say(f"{r.size} executes")
    return {"exec_us": samples, "kernel_cpu_us": [kernel_cpu], "client_cpu_us": [client_cpu]}


def stream(r: Round) -> Samples:
    """`for i in range(size): print(i)` from the send to the idle with every line received;
    the stdout text must be exactly those lines, in order, before the idle."""
    client = r.live().client
    lines = r.size
    chunks: list[str] = []
    last_ns = [0]

    def take(got: Received) -> None:
        if got.msg_type == "stream" and got.content.get("name") == "stdout":
            chunks.append(str(got.content.get("text", "")))
            last_ns[0] = got.at_ns

    expected = "".join(f"{i}\n" for i in range(lines))
    gc.collect()
    gc.disable()
    try:
        ex = client.execute(
            f"for i in range({lines}):\n    print(i)\n", timeout_s=STREAM_TIMEOUT_S, on_iopub=take
        )
        in_time = client.collect_iopub(
            ex.msg_id,
            take,
            until=lambda: sum(c.count("\n") for c in chunks) >= lines,
            timeout_s=LATE_OUTPUT_GRACE_S,
        )
    finally:
        gc.enable()
    text = "".join(chunks)
    if text != expected:
        r.problem(f"stdout differs from the {lines} lines printed ({text.count(chr(10))} lines)")
    if last_ns[0] > ex.idle_ns:
        r.problem("stdout arrived after the idle status (ordering)")
    if not in_time:
        r.problem(f"lines still missing {LATE_OUTPUT_GRACE_S:g} s after the idle")
    ms = (max(ex.idle_ns, last_ns[0]) - ex.sent_ns) / 1e6
    r.say(f"{lines} prints {ms:8.1f} ms in {len(chunks)} stream messages")
    return {"stream_ms": [ms], "stream_msgs": [float(len(chunks))]}


def rss(r: Round) -> Samples:
    """Memory of the kernel and all its descendants after `size` executes: RSS, PSS of the
    tree, USS of each child (workers, forkserver)."""
    live = r.live()
    for _ in range(r.size):
        live.client.execute("pass", timeout_s=EXECUTE_TIMEOUT_S)
    total, count = live.kernel.rss()
    pss, children = live.kernel.memory()
    r.note(f"{count} process(es) in the RSS")
    r.say(f"RSS {total / MIB:8.1f} MiB, PSS {pss / MIB:8.1f} MiB in {count} process(es)")
    samples = {"rss_mib": [total / MIB], "pss_mib": [pss / MIB], "processes": [float(count)]}
    if children:
        samples["child_uss_mib"] = [max(children) / MIB]
    return samples


SCENARIOS = [
    Scenario(
        "cold_start",
        "start_kernel() -> first kernel_info_reply, a fresh kernel per round",
        cold_start,
        figures=(
            Figure(
                "cold start -> kernel_info_reply, median of {rounds} (ms)",
                "start_ms",
                "median",
                Target("<=", 0.6),
            ),
            Figure(
                "  then comm_open + first echo through a worker (ms)",
                "first_comm_ms",
                "median",
                Target("<=", 50.0, on_ratio=False),
                ratio=False,
            ),
            Figure("  fastest (ms)", "start_ms", "min", ratio=False),
            Figure("  slowest (ms)", "start_ms", "max", ratio=False),
        ),
        rounds=10,
        quick_rounds=1,
        peer=True,
    ),
    Scenario(
        "rss",
        "idle RSS of the kernel and its descendants (workers) after a warm-up",
        rss,
        figures=(
            Figure("idle RSS, incl. children (MiB)", "rss_mib", "median"),
            Figure("idle PSS of the process tree (MiB)", "pss_mib", "median", Target("<=", 1.0)),
            Figure(
                "  USS of the largest child process (MiB)",
                "child_uss_mib",
                "median",
                Target("<", 15.0, on_ratio=False),
                ratio=False,
            ),
        ),
        rounds=1,
        size=100,
        warmup=0,
        quick_size=5,
        peer=True,
    ),
    Scenario(
        "execute",
        "`pass` execute_request -> idle, in alternating blocks",
        execute,
        figures=(
            Figure(
                "execute `pass` -> idle, p50 (us)",
                "exec_us",
                "p50",
                Target("<=", 1.0, aim=0.7),
                target_c=Target("<=", 1.0),
            ),
            Figure("execute `pass` -> idle, p99 (us)", "exec_us", "p99"),
            Figure("kernel CPU per execute, incl. children (us)", "kernel_cpu_us", "mean"),
            Figure(
                "  client CPU per execute, both sides alike (us)",
                "client_cpu_us",
                "mean",
                ratio=False,
            ),
        ),
        rounds=20,
        size=100,
        quick_rounds=1,
        quick_size=20,
        quick_warmup=1,
        peer=True,
    ),
    Scenario(
        "stream",
        "a print loop -> idle with every line received, output checked",
        stream,
        figures=(
            Figure(
                "{size} prints -> idle, median of {rounds} (ms)",
                "stream_ms",
                "median",
                Target("<=", 0.8),
            ),
            Figure("  stream messages per loop", "stream_msgs", "median", ratio=False, spec=".0f"),
        ),
        rounds=5,
        size=100_000,
        quick_rounds=1,
        quick_size=1000,
    ),
]
