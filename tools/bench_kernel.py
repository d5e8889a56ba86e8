"""Side-by-side kernel benchmark: mpkernel against ipykernel, in one run.

Run it from the repository root:

    .venv/bin/python tools/bench_kernel.py                        # mpkernel vs python3
    .venv/bin/python tools/bench_kernel.py --kernels python3,python3 --json out.json

Both kernels (A and B, by kernelspec name) are measured in alternation, A B A B ..., so
that machine noise falls on both alike, and through the same raw ZMQ client (`_benchlib`),
whose cost is included in both columns. Figures, per kernel:

1. cold start: from just before `KernelManager(kernel_name=...).start_kernel()` to the first
   kernel_info_reply on shell (the client sends kernel_info_request until one is answered).
   Median of --start-rounds fresh kernels, after one unmeasured start of each (disk cache,
   byte-code, a fresh IPython profile).
2. `pass` execute round trip: execute_request sent -> the idle status on IOPub parented to
   it (the execute_reply is read too, untimed). p50 and p99 of --executes requests after
   --warmup unmeasured ones, in blocks of 100 alternating between the kernels. Also the
   kernel's CPU time (process and descendants) per execute.
3. stream: `for i in range(N): print(i)`, N = --stream-lines (100000), from send to the idle
   with every line received; the stdout text must be exactly those N lines, otherwise the
   figure is marked FAIL. Median of --stream-rounds after one unmeasured round each.
4. idle RSS of the kernel process plus all its descendants (workers), after the warm-up.

Then a table with the ratio A/B of each figure and, where DESIGN.md section 8 sets one, the
target. Each kernel slot gets its own empty IPYTHONDIR (no user profile, startup files or
shared history). Every kernel started is shut down on the way out, on errors, Ctrl-C and
SIGTERM too. Exit status: 0 done, 1 a correctness check failed, 2 could not finish (the
figures measured so far are still printed).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import zmq
from _benchlib import (
    BenchError,
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

MIB = 1024 * 1024
EXECUTE_BLOCK = 100
START_TIMEOUT_S = 60.0
EXECUTE_TIMEOUT_S = 30.0
STREAM_TIMEOUT_S = 300.0
LATE_OUTPUT_GRACE_S = 2.0
# DESIGN.md section 8, as (hard limit, aim) on the ratio A/B.
TARGETS: dict[str, tuple[float, float | None]] = {
    "start_ms_median": (1.0, None),
    "exec_us_p50": (1.0, 0.7),
    "stream_ms_median": (1.0, None),
}

Context = zmq.Context[zmq.Socket[bytes]]


@dataclass
class Settings:
    kernels: tuple[str, str]
    start_rounds: int
    executes: int
    warmup: int
    stream_lines: int
    stream_rounds: int


@dataclass
class KernelResult:
    """Raw samples for one kernel slot; `summary()` turns them into the reported figures."""

    slot: str
    kernel_name: str
    argv: list[str]
    implementation: str = "?"
    implementation_version: str = "?"
    language_version: str = "?"
    start_ms: list[float] = field(default_factory=list)
    exec_us: list[float] = field(default_factory=list)
    exec_kernel_cpu_s: float = 0.0
    exec_client_cpu_s: float = 0.0
    stream_ms: list[float] = field(default_factory=list)
    stream_problems: list[str] = field(default_factory=list)
    rss_mib: float = math.nan
    processes: int = 0

    @property
    def label(self) -> str:
        return f"{self.slot} {self.kernel_name}"

    def summary(self) -> dict[str, float]:
        n_exec = len(self.exec_us) or math.nan
        return {
            "start_ms_median": median(self.start_ms),
            "start_ms_min": min(self.start_ms, default=math.nan),
            "start_ms_max": max(self.start_ms, default=math.nan),
            "exec_us_p50": percentile(self.exec_us, 50),
            "exec_us_p99": percentile(self.exec_us, 99),
            "exec_kernel_cpu_us": self.exec_kernel_cpu_s * 1e6 / n_exec,
            "exec_client_cpu_us": self.exec_client_cpu_s * 1e6 / n_exec,
            "stream_ms_median": median(self.stream_ms),
            "rss_mib": self.rss_mib,
        }


@dataclass
class Live:
    """A kernel kept running for the RSS, execute and stream phases, with its client."""

    result: KernelResult
    kernel: KernelProcess
    client: RawClient


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def with_log(kernel: KernelProcess, exc: BenchError) -> BenchError:
    """The error with the kernel's exit status and the end of its log attached."""
    status = kernel.exit_status()
    where = kernel.label if status is None else f"{kernel.label} (exit status {status})"
    return BenchError(f"{where}: {exc}\n--- kernel log (tail) ---\n{kernel.log_tail()}")


# --------------------------------------------------------------------------- cold start


def time_start(kernel: KernelProcess, context: Context) -> tuple[float, RawMessage]:
    """start_kernel() -> first kernel_info_reply, in ms, and that reply (signature checked)."""
    kernel.open_log()
    t0 = time.perf_counter_ns()
    kernel.start()
    client = RawClient(kernel.connection_info(), context=context, alive=kernel.is_alive)
    try:
        reply = client.wait_for_kernel_info(timeout_s=START_TIMEOUT_S)
        if not client.verify(reply):
            raise BenchError("kernel_info_reply has a bad signature")
    finally:
        client.close()
    return (reply.received_ns - t0) / 1e6, reply


def measure_cold_start(
    kernels: KernelSet, result: KernelResult, env: dict[str, str], *, record: bool
) -> None:
    """One fresh kernel: time it to the first kernel_info_reply, then shut it down."""
    kernel = kernels.create(result.kernel_name, f"start-{result.slot}", env=env)
    context: Context = zmq.Context()
    try:
        elapsed_ms, reply = time_start(kernel, context)
    except BenchError as exc:
        raise with_log(kernel, exc) from exc
    finally:
        context.term()
        kernels.stop(kernel)
    if result.implementation == "?":
        content = reply.content
        result.implementation = str(content.get("implementation", "?"))
        result.implementation_version = str(content.get("implementation_version", "?"))
        result.language_version = str(content.get("language_info", {}).get("version", "?"))
    if record:
        result.start_ms.append(elapsed_ms)
    progress(f"start  {result.label:<14} {elapsed_ms:9.1f} ms{'' if record else ' (warm-up)'}")


# --------------------------------------------------------------------------- execute


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


def check_ok(live: Live, reply: RawMessage | None, what: str) -> None:
    if reply is None:
        raise BenchError(f"{live.result.label}: {what} got no reply")
    content = reply.content
    if content.get("status") != "ok":
        raise BenchError(
            f"{live.result.label}: {what} replied status={content.get('status')!r}: "
            f"{content.get('ename', '')} {content.get('evalue', '')}"
        )


def run_executes(live: Live, count: int, *, record: bool) -> None:
    """`count` `pass` executes back to back; each is timed from send to its idle."""
    client = live.client
    content = execute_content("pass")
    samples: list[float] = []
    gc.collect()
    kernel_cpu0 = live.kernel.cpu_seconds()
    client_cpu0 = time.process_time()
    gc.disable()
    try:
        for _ in range(count):
            msg_id, frames = client.build("execute_request", content)
            ex = client.exchange_frames("shell", msg_id, frames, timeout_s=EXECUTE_TIMEOUT_S)
            samples.append(ex.to_idle_ns / 1e3)
            check_ok(live, ex.reply, "execute `pass`")
    finally:
        gc.enable()
    client_cpu = time.process_time() - client_cpu0
    kernel_cpu = live.kernel.cpu_seconds() - kernel_cpu0
    if record:
        live.result.exec_us += samples
        live.result.exec_kernel_cpu_s += kernel_cpu
        live.result.exec_client_cpu_s += client_cpu


# --------------------------------------------------------------------------- stream


class StreamCounter:
    """IOPub handler: collects one request's stdout text and when the last of it arrived."""

    def __init__(self, lines: int) -> None:
        self.expected_lines = lines
        self.chunks: list[str] = []
        self.newlines = 0
        self.last_ns = 0
        self.messages = 0

    def __call__(self, msg_type: str, msg: RawMessage) -> None:
        if msg_type != "stream":
            return
        content = msg.content
        if content.get("name") == "stdout":
            text = str(content.get("text", ""))
            self.chunks.append(text)
            self.newlines += text.count("\n")
            self.last_ns = msg.received_ns
            self.messages += 1

    def complete(self) -> bool:
        return self.newlines >= self.expected_lines


def run_stream(live: Live, lines: int, *, record: bool) -> None:
    """One print loop, timed from send to the idle with every line received, then checked."""
    client = live.client
    content = execute_content(f"for i in range({lines}):\n    print(i)\n")
    counter = StreamCounter(lines)
    msg_id, frames = client.build("execute_request", content)
    gc.collect()
    gc.disable()
    try:
        ex = client.exchange_frames(
            "shell", msg_id, frames, timeout_s=STREAM_TIMEOUT_S, on_iopub=counter
        )
        # Lines after the idle would be an ordering bug; wait a little so the count is right.
        in_time = client.collect_iopub(
            msg_id, counter, until=counter.complete, timeout_s=LATE_OUTPUT_GRACE_S
        )
    finally:
        gc.enable()
    check_ok(live, ex.reply, "the print loop")
    elapsed_ms = (max(ex.idle_ns, counter.last_ns) - ex.sent_ns) / 1e6
    problems: list[str] = []
    text = "".join(counter.chunks)
    if text != "".join(f"{i}\n" for i in range(lines)):
        problems.append(
            f"stdout differs from the {lines} lines printed: {counter.newlines} lines, "
            f"{len(text)} chars in {counter.messages} stream messages"
        )
    if counter.last_ns > ex.idle_ns:
        problems.append("stdout arrived after the idle status (ordering)")
    if not in_time:
        problems.append(f"lines still missing {LATE_OUTPUT_GRACE_S:g} s after the idle")
    if record:
        live.result.stream_ms.append(elapsed_ms)
    round_name = f"round {len(live.result.stream_ms)}" if record else "warm-up round"
    live.result.stream_problems += [f"{round_name}: {p}" for p in problems]
    status = "ok" if not problems else "FAIL: " + "; ".join(problems)
    progress(
        f"stream {live.result.label:<14} {elapsed_ms:9.1f} ms{'' if record else ' (warm-up)'}"
        f"  {counter.messages} stream messages, {status}"
    )


# --------------------------------------------------------------------------- driver


def slot_env(workdir: Path, result: KernelResult) -> dict[str, str]:
    """An empty IPython directory per slot: no user profile, startup files or extensions,
    and the two long-lived kernels do not share one history database."""
    return {"IPYTHONDIR": str(workdir / f"ipython-{result.slot}")}


def start_live(kernels: KernelSet, result: KernelResult, workdir: Path, context: Context) -> Live:
    kernel = kernels.create(
        result.kernel_name, f"bench-{result.slot}", env=slot_env(workdir, result)
    )
    kernel.start()
    client = RawClient(kernel.connection_info(), context=context, alive=kernel.is_alive)
    try:
        client.wait_ready(timeout_s=START_TIMEOUT_S)
    except BenchError as exc:
        client.close()
        raise with_log(kernel, exc) from exc
    return Live(result, kernel, client)


def run_live_phases(settings: Settings, lives: list[Live]) -> None:
    """Warm-up, RSS, executes in alternating blocks, then alternating print loops."""
    for live in lives:
        run_executes(live, settings.warmup, record=False)
    for live in lives:
        rss, procs = live.kernel.rss()
        live.result.rss_mib = rss / MIB
        live.result.processes = procs
        progress(f"rss    {live.result.label:<14} {rss / MIB:9.1f} MiB in {procs} process(es)")

    done = 0
    while done < settings.executes:
        block = min(EXECUTE_BLOCK, settings.executes - done)
        for live in lives:
            run_executes(live, block, record=True)
        done += block
    for live in lives:
        p50 = percentile(live.result.exec_us, 50)
        p99 = percentile(live.result.exec_us, 99)
        progress(f"exec   {live.result.label:<14} p50 {p50:9.1f} us, p99 {p99:9.1f} us")

    for round_no in range(-1, settings.stream_rounds):
        for live in lives:
            run_stream(live, settings.stream_lines, record=round_no >= 0)


def run(settings: Settings, results: list[KernelResult], workdir: Path, notes: list[str]) -> None:
    """Every phase, alternating between the kernels; cleanup notes go to `notes`."""
    kernels = KernelSet(workdir, os.environ)
    try:
        for round_no in range(-1, settings.start_rounds):
            for result in results:
                env = slot_env(workdir, result)
                measure_cold_start(kernels, result, env, record=round_no >= 0)

        context: Context = zmq.Context()
        lives: list[Live] = []
        try:
            for result in results:
                lives.append(start_live(kernels, result, workdir, context))
            run_live_phases(settings, lives)
        finally:
            for live in lives:
                live.client.close()
            context.term()
    finally:
        try:
            kernels.close()
        finally:
            notes += kernels.cleanup_notes


# --------------------------------------------------------------------------- report


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def fmt(value: float, spec: str = ".1f") -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def verdict(key: str, value: float) -> tuple[str, str]:
    """(target text, verdict) for a figure with a DESIGN target, judged as printed."""
    if key not in TARGETS:
        return "", ""
    limit, aim = TARGETS[key]
    text = f"<= {limit:.1f}x" + (f", aim {aim:.1f}x" if aim is not None else "")
    if math.isnan(value):
        return text, "n/a"
    value = round(value, 2)
    if value > limit:
        return text, "MISS"
    if aim is not None:
        return text, "ok, aim met" if value <= aim else "ok, aim not met"
    return text, "ok"


def report(env: dict[str, str], settings: Settings, results: list[KernelResult]) -> str:
    a, b = results
    sa, sb = a.summary(), b.summary()
    figures = [
        (
            f"cold start -> kernel_info_reply, median of {settings.start_rounds} (ms)",
            "start_ms_median",
        ),
        ("execute `pass` -> idle, p50 (us)", "exec_us_p50"),
        ("execute `pass` -> idle, p99 (us)", "exec_us_p99"),
        ("kernel CPU per execute, incl. children (us)", "exec_kernel_cpu_us"),
        (
            f"{settings.stream_lines} prints -> idle, median of {settings.stream_rounds} (ms)",
            "stream_ms_median",
        ),
        ("idle RSS after warm-up, incl. children (MiB)", "rss_mib"),
    ]
    rows: list[list[str]] = []
    for name, key in figures:
        cells = [fmt(sa[key]), fmt(sb[key])]
        if key == "stream_ms_median":
            cells = [
                cell + (" FAIL" if res.stream_problems else "")
                for cell, res in zip(cells, results, strict=True)
            ]
        a_over_b = ratio(sa[key], sb[key])
        target, judged = verdict(key, a_over_b)
        if key == "stream_ms_median" and any(res.stream_problems for res in results):
            judged = "FAIL"
        ratio_text = "n/a" if math.isnan(a_over_b) else f"{a_over_b:.2f}x"
        rows.append([name, *cells, ratio_text, target, judged])

    header = [
        "kernel benchmark: A and B alternating (A B A B ...), one raw ZMQ client for both",
        f"host: {env['cpu_count']} CPUs (os.cpu_count), {env['platform']}, "
        f"{env['python_impl']} {env['python']}, load average {env['loadavg_1m']} at start",
        f"pyzmq {env['pyzmq']} / libzmq {env['libzmq']}, jupyter_client {env['jupyter_client']}, "
        f"ipykernel {env['ipykernel']}, mpkernel {env['mpkernel']}",
        *(
            f"{r.label}: {r.implementation} {r.implementation_version}, "
            f"Python {r.language_version}; argv {shlex.join(r.argv)}"
            for r in results
        ),
        f"settings: {settings.start_rounds} cold starts, {settings.executes} executes "
        f"(+{settings.warmup} warm-up), {settings.stream_rounds} x {settings.stream_lines} "
        "printed lines (+1 warm-up) per kernel",
    ]
    notes = [
        f"cold start min..max (ms): {a.label} {fmt(sa['start_ms_min'])}..{fmt(sa['start_ms_max'])}"
        f", {b.label} {fmt(sb['start_ms_min'])}..{fmt(sb['start_ms_max'])}",
        "print rounds (ms): "
        + ", ".join(f"{r.label} [{' '.join(fmt(v, '.0f') for v in r.stream_ms)}]" for r in results),
        f"processes in RSS: {a.label} {a.processes}, {b.label} {b.processes}",
        "client cost, included in every figure on both sides alike: "
        f"{fmt(sa['exec_client_cpu_us'])} / {fmt(sb['exec_client_cpu_us'])} us of benchmark "
        "process CPU per execute round trip (A / B)",
        "noise floor: run --kernels python3,python3; ratios within its spread are a tie",
    ]
    for r in results:
        notes += [f"FAIL {r.label}: {p}" for p in r.stream_problems]
    table = render_table(["figure", a.label, b.label, "A/B", "target", ""], rows)
    return "\n".join([*header, "", table, "", *notes])


def write_json(
    path: Path, env: dict[str, str], settings: Settings, results: list[KernelResult]
) -> None:
    def clean(value: float) -> float | None:
        return None if math.isnan(value) else value

    a, b = results
    sa, sb = a.summary(), b.summary()
    doc: JsonDict = {
        "environment": env,
        "settings": asdict(settings),
        "kernels": [
            {
                **asdict(r),
                "rss_mib": clean(r.rss_mib),
                "summary": {k: clean(v) for k, v in r.summary().items()},
            }
            for r in results
        ],
        "ratios_a_over_b": {k: clean(ratio(sa[k], sb[k])) for k in sa},
        "targets": {k: {"max": limit, "aim": aim} for k, (limit, aim) in TARGETS.items()},
        "ok": not any(r.stream_problems for r in results),
    }
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark two kernels side by side (default: mpkernel against ipykernel)."
    )
    parser.add_argument(
        "--kernels",
        default="mpkernel,python3",
        help="two kernelspec names A,B; ratios are A/B (default: %(default)s)",
    )
    parser.add_argument("--start-rounds", type=int, default=10, help="cold starts per kernel")
    parser.add_argument("--executes", type=int, default=2000, help="timed `pass` executes")
    parser.add_argument("--warmup", type=int, default=100, help="untimed executes before them")
    parser.add_argument("--stream-lines", type=int, default=100_000, help="lines per print loop")
    parser.add_argument("--stream-rounds", type=int, default=5, help="timed print loops")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.kernels.split(",") if n.strip()]
    if len(names) != 2:
        parser.error("--kernels takes exactly two kernelspec names, e.g. mpkernel,python3")
    args.kernels = (names[0], names[1])
    for opt in ("start_rounds", "executes", "stream_lines", "stream_rounds"):
        if getattr(args, opt) < 1:
            parser.error(f"--{opt.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(
        kernels=args.kernels,
        start_rounds=args.start_rounds,
        executes=args.executes,
        warmup=args.warmup,
        stream_lines=args.stream_lines,
        stream_rounds=args.stream_rounds,
    )
    return drive_benchmark(
        settings,
        settings.kernels,
        KernelResult,
        run,
        report,
        write_json,
        args.json,
        lambda results: any(r.stream_problems for r in results),
    )


if __name__ == "__main__":
    sys.exit(main())
