"""Side-by-side kernel benchmark: mpkernel against ipykernel, in one run.

Run it from the repository root:

    .venv/bin/python tools/bench_kernel.py                        # mpkernel vs python3
    .venv/bin/python tools/bench_kernel.py --kernels python3,python3 --json out.json

Both kernels (A and B, by kernelspec name) are measured in alternation, A B A B ..., so
that machine noise falls on both alike, and through the same raw ZMQ client (`_benchlib`),
whose cost is included in both columns. Figures, per kernel:

1. cold start: from just before `KernelManager(kernel_name=...).start_kernel()` to the first
   kernel_info_reply on shell (the client sends kernel_info_request until one is answered).
   Median over --start-rounds fresh kernels (one unmeasured start of each first, to warm the
   disk cache and the isolated IPython profile).
2. `pass` execute round trip: execute_request sent -> the idle status on IOPub parented to
   it (the execute_reply is awaited too). p50 and p99 over --executes requests after
   --warmup unmeasured ones, in blocks of 100 alternating between the kernels. Also the
   kernel's CPU time (process and descendants) per execute.
3. stream: `for i in range(N): print(i)` with N = --stream-lines (100000), from send to
   the idle with every line in hand; the stdout text received must be exactly the N lines,
   otherwise the figure is marked FAIL. Median over --stream-rounds.
4. idle RSS of the kernel process plus all descendants (workers), after the warm-up.

The table ends with the ratio A/B for each figure and, where DESIGN section 8 sets one, the
target. Kernels run with IPYTHONDIR pointing at a fresh temporary directory (no user
profile, startup files or history). Every kernel started is shut down on the way out, on
errors and Ctrl-C too. Exit status: 0 done, 1 a correctness check failed, 2 could not run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
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
    environment_info,
    kernelspec_argv,
    median,
    percentile,
    render_table,
    sigterm_raises,
)

MIB = 1024 * 1024
EXECUTE_BLOCK = 100
START_TIMEOUT_S = 60.0
EXECUTE_TIMEOUT_S = 30.0
STREAM_TIMEOUT_S = 300.0
LATE_OUTPUT_GRACE_S = 2.0
# DESIGN.md section 8, as (hard target, aim) on the ratio A/B.
TARGETS: dict[str, tuple[float, float | None]] = {
    "start": (1.0, None),
    "exec_p50": (1.0, 0.7),
    "stream": (1.0, None),
}


@dataclass
class KernelResult:
    slot: str
    kernel_name: str
    argv: list[str]
    implementation: str = ""
    implementation_version: str = ""
    language_version: str = ""
    start_ms: list[float] = field(default_factory=list)
    exec_us: list[float] = field(default_factory=list)
    exec_kernel_cpu_us: float = 0.0
    exec_client_cpu_us: float = 0.0
    stream_ms: list[float] = field(default_factory=list)
    stream_problems: list[str] = field(default_factory=list)
    rss_mib: float = 0.0
    processes: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.slot} {self.kernel_name}"

    def summary(self) -> dict[str, float]:
        return {
            "start_ms_median": median(self.start_ms),
            "start_ms_min": min(self.start_ms, default=float("nan")),
            "start_ms_max": max(self.start_ms, default=float("nan")),
            "exec_us_p50": percentile(self.exec_us, 50),
            "exec_us_p99": percentile(self.exec_us, 99),
            "exec_kernel_cpu_us": self.exec_kernel_cpu_us,
            "exec_client_cpu_us": self.exec_client_cpu_us,
            "stream_ms_median": median(self.stream_ms),
            "rss_mib": self.rss_mib,
        }


@dataclass
class Settings:
    kernels: tuple[str, str]
    start_rounds: int
    executes: int
    warmup: int
    stream_lines: int
    stream_rounds: int


# --------------------------------------------------------------------------- phases


def measure_cold_start(kernels: KernelSet, result: KernelResult, *, record: bool) -> None:
    """Start one fresh kernel, time start_kernel() -> first kernel_info_reply, shut it down."""
    kernel = kernels.create(result.kernel_name, f"start-{result.slot}")
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    client: RawClient | None = None
    try:
        kernel.open_log()
        t0 = time.perf_counter_ns()
        kernel.start()
        client = RawClient(kernel.connection_info(), context=context)
        reply = client.wait_for_kernel_info(timeout_s=START_TIMEOUT_S)
        elapsed_ms = (reply.received_ns - t0) / 1e6
        if not client.verify(reply):
            raise BenchError(f"{result.label}: kernel_info_reply has a bad signature")
        if not result.implementation:
            content = reply.content
            result.implementation = str(content.get("implementation", "?"))
            result.implementation_version = str(content.get("implementation_version", "?"))
            result.language_version = str(content.get("language_info", {}).get("version", "?"))
        if record:
            result.start_ms.append(elapsed_ms)
        tag = f"{elapsed_ms:8.1f} ms" if record else f"{elapsed_ms:8.1f} ms (warm-up)"
        progress(f"start {result.label:<14} {tag}")
    except BenchError as exc:
        raise BenchError(f"{result.label}: {exc}\n--- kernel log ---\n{kernel.log_tail()}") from exc
    finally:
        if client is not None:
            client.close()
        context.term()
        kernels.stop(kernel)


@dataclass
class Live:
    """A kernel kept running for the execute, stream and RSS phases, with its client."""

    result: KernelResult
    kernel: KernelProcess
    client: RawClient


def execute_content(code: str) -> bytes:
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


def check_ok(live: Live, reply: RawMessage, what: str) -> None:
    content = reply.content
    if content.get("status") != "ok":
        raise BenchError(
            f"{live.result.label}: {what} replied status={content.get('status')!r}: "
            f"{content.get('ename', '')} {content.get('evalue', '')}"
        )


def run_executes(live: Live, count: int, *, record: bool) -> None:
    """`count` pass executes back to back; the timed part is send -> idle."""
    client = live.client
    content = execute_content("pass")
    samples: list[float] = []
    cpu0 = live.kernel.cpu_seconds()
    client_cpu0 = time.process_time_ns()
    gc.collect()
    gc.disable()
    try:
        for _ in range(count):
            msg_id, frames = client.build("execute_request", content)
            ex = client.exchange_frames("shell", msg_id, frames, timeout_s=EXECUTE_TIMEOUT_S)
            samples.append(ex.to_idle_ns / 1e3)
            check_ok(live, ex.reply, "execute `pass`")
    finally:
        gc.enable()
    if record:
        n_before = len(live.result.exec_us)
        live.result.exec_us += samples
        n = len(live.result.exec_us)
        kernel_us = (live.kernel.cpu_seconds() - cpu0) * 1e6
        client_us = (time.process_time_ns() - client_cpu0) / 1e3
        # running means over all recorded blocks
        live.result.exec_kernel_cpu_us = (live.result.exec_kernel_cpu_us * n_before + kernel_us) / n
        live.result.exec_client_cpu_us = (live.result.exec_client_cpu_us * n_before + client_us) / n


class StreamCounter:
    """Collects stdout text of one request and notes when the last of it arrived."""

    def __init__(self, lines: int) -> None:
        self.expected_lines = lines
        self.chunks: list[str] = []
        self.newlines = 0
        self.last_ns = 0
        self.messages = 0
        self.other: dict[str, int] = {}

    def __call__(self, msg_type: str, msg: RawMessage) -> None:
        if msg_type == "stream":
            content = msg.content
            if content.get("name") == "stdout":
                text = str(content.get("text", ""))
                self.chunks.append(text)
                self.newlines += text.count("\n")
                self.last_ns = msg.received_ns
                self.messages += 1
                return
            msg_type = f"stream/{content.get('name')}"
        self.other[msg_type] = self.other.get(msg_type, 0) + 1

    def complete(self) -> bool:
        return self.newlines >= self.expected_lines


def run_stream(live: Live, lines: int) -> None:
    client = live.client
    content = execute_content(f"for i in range({lines}):\n    print(i)\n")
    counter = StreamCounter(lines)
    gc.collect()
    gc.disable()
    try:
        msg_id, frames = client.build("execute_request", content)
        ex = client.exchange_frames(
            "shell", msg_id, frames, timeout_s=STREAM_TIMEOUT_S, on_iopub=counter
        )
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
            f"stdout text differs: {counter.newlines} of {lines} lines "
            f"({len(text)} chars) in {counter.messages} stream messages"
        )
    if counter.last_ns > ex.idle_ns:
        problems.append("stream output arrived after idle (ordering)")
    if not in_time:
        problems.append(f"lines still missing {LATE_OUTPUT_GRACE_S:g} s after idle")
    live.result.stream_ms.append(elapsed_ms)
    live.result.stream_problems += problems
    status = "ok" if not problems else "FAIL: " + "; ".join(problems)
    progress(
        f"stream {live.result.label:<14} {elapsed_ms:8.1f} ms  "
        f"{counter.messages} stream msgs  {status}"
    )


# --------------------------------------------------------------------------- driver


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(settings: Settings, results: list[KernelResult], workdir: Path) -> list[str]:
    """All phases, alternating between the kernels; returns cleanup notes."""
    env = dict(os.environ)
    env["IPYTHONDIR"] = str(workdir / "ipython")
    with KernelSet(workdir, env) as kernels:
        for round_no in range(-1, settings.start_rounds):
            for result in results:
                measure_cold_start(kernels, result, record=round_no >= 0)

        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        lives: list[Live] = []
        try:
            for result in results:
                kernel = kernels.create(result.kernel_name, f"bench-{result.slot}")
                kernel.start()
                client = RawClient(kernel.connection_info(), context=context)
                lives.append(Live(result, kernel, client))
                try:
                    client.wait_ready(timeout_s=START_TIMEOUT_S)
                except BenchError as exc:
                    raise BenchError(
                        f"{result.label}: {exc}\n--- kernel log ---\n{kernel.log_tail()}"
                    ) from exc

            for live in lives:
                run_executes(live, settings.warmup, record=False)
            for live in lives:
                rss, procs = live.kernel.rss()
                live.result.rss_mib = rss / MIB
                live.result.processes = procs
                progress(f"rss    {live.result.label:<14} {rss / MIB:8.1f} MiB ({procs} processes)")

            done = 0
            while done < settings.executes:
                block = min(EXECUTE_BLOCK, settings.executes - done)
                for live in lives:
                    run_executes(live, block, record=True)
                done += block
            for live in lives:
                p50 = percentile(live.result.exec_us, 50)
                p99 = percentile(live.result.exec_us, 99)
                progress(f"exec   {live.result.label:<14} p50 {p50:7.1f} us  p99 {p99:7.1f} us")

            for _ in range(settings.stream_rounds):
                for live in lives:
                    run_stream(live, settings.stream_lines)
        finally:
            for live in lives:
                live.client.close()
            for live in lives:
                kernels.stop(live.kernel)
            context.term()
    return kernels.cleanup_notes


# --------------------------------------------------------------------------- report


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def verdict(key: str, value: float) -> tuple[str, str]:
    if key not in TARGETS:
        return "", ""
    target, aim = TARGETS[key]
    text = f"<= {target:.1f}x" + (f", aim {aim:.1f}x" if aim is not None else "")
    if value != value:  # NaN
        return text, "n/a"
    if value > target:
        return text, "MISS"
    if aim is not None:
        return text, "ok, aim met" if value <= aim else "ok, aim not met"
    return text, "ok"


def header_lines(env: dict[str, str], settings: Settings, results: list[KernelResult]) -> str:
    lines = [
        "kernel benchmark: A/B alternating (A B A B ...), one raw ZMQ client for both",
        f"host: {env['cpu_count']} CPUs (os.cpu_count), {env['platform']}, "
        f"{env['python_impl']} {env['python']}",
        f"pyzmq {env['pyzmq']} / libzmq {env['libzmq']}, jupyter_client {env['jupyter_client']}, "
        f"ipykernel {env['ipykernel']}, mpkernel {env['mpkernel']}",
    ]
    for r in results:
        impl = f"{r.implementation} {r.implementation_version}, Python {r.language_version}"
        lines.append(f"{r.label}: {impl}; argv {' '.join(r.argv)}")
    lines.append(
        f"settings: {settings.start_rounds} start rounds, {settings.executes} executes "
        f"(+{settings.warmup} warm-up), {settings.stream_rounds} x {settings.stream_lines} "
        f"printed lines"
    )
    return "\n".join(lines)


def report(env: dict[str, str], settings: Settings, results: list[KernelResult]) -> str:
    a, b = results
    sa, sb = a.summary(), b.summary()
    rows: list[list[str]] = []

    def row(name: str, key: str, fmt: str, target: str | None = None) -> None:
        r = ratio(sa[key], sb[key])
        t_text, t_verdict = verdict(target, r) if target else ("", "")
        rows.append([name, format(sa[key], fmt), format(sb[key], fmt), f"{r:.2f}x", t_text, t_verdict])

    row(f"cold start -> kernel_info_reply, median of {settings.start_rounds} (ms)",
        "start_ms_median", ".1f", "start")
    row("execute `pass` -> idle, p50 (us)", "exec_us_p50", ".1f", "exec_p50")
    row("execute `pass` -> idle, p99 (us)", "exec_us_p99", ".1f")
    row("kernel CPU per execute, incl. children (us)", "exec_kernel_cpu_us", ".1f")
    row(f"{settings.stream_lines} prints -> idle, median of {settings.stream_rounds} (ms)",
        "stream_ms_median", ".1f", "stream")
    row("idle RSS after warm-up, incl. children (MiB)", "rss_mib", ".1f")
    for r, cell in ((a, 1), (b, 2)):
        if r.stream_problems:
            rows[4][cell] += " FAIL"
    table = render_table(["figure", a.label, b.label, "A/B", "target", ""], rows)

    notes = [
        f"cold start min..max (ms): {a.label} {sa['start_ms_min']:.1f}..{sa['start_ms_max']:.1f}, "
        f"{b.label} {sb['start_ms_min']:.1f}..{sb['start_ms_max']:.1f}",
        "stream rounds (ms): "
        + ", ".join(f"{r.label} [{' '.join(f'{v:.0f}' for v in r.stream_ms)}]" for r in results),
        f"processes measured for RSS: {a.label} {a.processes}, {b.label} {b.processes}",
        f"client cost (included in every figure above, both sides alike): "
        f"{sa['exec_client_cpu_us']:.1f} / {sb['exec_client_cpu_us']:.1f} us "
        "of benchmark-process CPU per execute round trip (A / B)",
    ]
    for r in results:
        notes += [f"FAIL {r.label}: {p}" for p in r.stream_problems]
    return "\n".join([header_lines(env, settings, results), "", table, "", *notes])


def write_json(
    path: Path, env: dict[str, str], settings: Settings, results: list[KernelResult]
) -> None:
    a, b = results
    sa, sb = a.summary(), b.summary()
    doc: JsonDict = {
        "environment": env,
        "settings": asdict(settings),
        "kernels": [{**asdict(r), "summary": r.summary()} for r in results],
        "ratios_a_over_b": {k: ratio(sa[k], sb[k]) for k in sa},
        "targets": {k: {"max": t, "aim": aim} for k, (t, aim) in TARGETS.items()},
        "ok": not any(r.stream_problems for r in results),
    }
    path.write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark two kernels side by side (default: mpkernel vs ipykernel)."
    )
    parser.add_argument(
        "--kernels", default="mpkernel,python3",
        help="two kernelspec names A,B; ratios are A/B (default: %(default)s)",
    )
    parser.add_argument("--start-rounds", type=int, default=10, help="cold starts per kernel")
    parser.add_argument("--executes", type=int, default=2000, help="timed `pass` executes")
    parser.add_argument("--warmup", type=int, default=100, help="untimed executes first")
    parser.add_argument("--stream-lines", type=int, default=100_000, help="lines printed")
    parser.add_argument("--stream-rounds", type=int, default=3, help="print runs per kernel")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.kernels.split(",") if n.strip()]
    if len(names) != 2:
        parser.error("--kernels takes exactly two kernelspec names, e.g. mpkernel,python3")
    args.kernels = (names[0], names[1])
    for opt in ("start_rounds", "executes", "stream_lines", "stream_rounds"):
        if getattr(args, opt) < 1:
            parser.error(f"--{opt.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
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
    began = time.monotonic()
    env = environment_info()
    try:
        results = [
            KernelResult(slot, name, kernelspec_argv(name))
            for slot, name in zip("AB", settings.kernels, strict=True)
        ]
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with sigterm_raises(), tempfile.TemporaryDirectory(prefix="mpkernel-bench-") as tmp:
            notes = run(settings, results, Path(tmp))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; every kernel started has been shut down", file=sys.stderr)
        return 130
    print(report(env, settings, results))
    for note in notes:
        print(f"cleanup: {note}")
    print(f"total run time: {time.monotonic() - began:.1f} s")
    if args.json is not None:
        write_json(args.json, env, settings, results)
        print(f"results written to {args.json}")
    return 1 if any(r.stream_problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
