"""The A/B driver: runs scenarios on two kernels side by side, alternating, and reports ratios.

A `Scenario` is one short measurement behind one figure (a few statistics of it at most):
a function that runs one round on one side and returns samples. The driver

- starts the sides' kernels (a `Contender` each; by default the run's A and B), sharing a
  running kernel (`Live`) between scenarios that use the same contender, and stopping it
  once no scenario left needs it;
- runs `warmup` unrecorded rounds, then `rounds` recorded ones, alternating A B A B ... so
  that drift on the machine lands on both sides alike;
- turns the samples into figures (`Figure`: a statistic of a series), the ratio A/B, and a
  verdict against the target of docs/architecture.md section 8 (`Target`);
- goes on with the next scenario when one fails (its error and the kernel's log tail are
  reported; exit status 2; its sides' shared kernels are replaced), and stops every
  kernel, worker and client on the way out, on errors, Ctrl-C and SIGTERM too.

Exit status: 0 done, 1 a correctness check failed on a checked side (`Contender.checked`:
mpkernel, not the reference), 2 a scenario could not finish, 130 interrupted.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import zmq
from _benchclient import Client
from _benchkernels import (
    BenchError,
    Contender,
    KernelProcess,
    KernelSet,
    kernelspec_argv,
    sigterm_raises,
)

__all__ = [
    "Figure",
    "Live",
    "Round",
    "Run",
    "Samples",
    "Scenario",
    "Target",
    "drive",
    "median",
    "percentile",
    "progress",
]

Samples = dict[str, list[float]]
Context = zmq.Context[zmq.Socket[bytes]]
START_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """The 50th percentile."""
    return percentile(values, 50.0)


STATS: dict[str, Callable[[Sequence[float]], float]] = {
    "p50": median,
    "median": median,
    "p99": lambda v: percentile(v, 99.0),
    "min": lambda v: min(v, default=math.nan),
    "max": lambda v: max(v, default=math.nan),
    "sum": lambda v: float(sum(v)) if v else math.nan,
    "mean": lambda v: sum(v) / len(v) if v else math.nan,
}


def progress(text: str) -> None:
    """One line of progress on stderr (the report goes to stdout)."""
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Target:
    """A docs/architecture.md section 8 target: `op limit` on the ratio A/B, or on A's own
    figure."""

    op: str  # "<=", "<" or ">="
    limit: float
    on_ratio: bool = True
    aim: float | None = None

    def text(self) -> str:
        unit = "x" if self.on_ratio else ""
        aim = f", aim {self.aim:g}{unit}" if self.aim is not None else ""
        return f"{self.op} {self.limit:g}{unit}{aim}" + ("" if self.on_ratio else " (A)")

    def judge(self, value: float) -> str:
        """ok / MISS (and whether the aim is met), judged on the value as printed."""
        if math.isnan(value):
            return "n/a"
        value = round(value, 2)
        met = {"<=": value <= self.limit, "<": value < self.limit, ">=": value >= self.limit}
        if not met[self.op]:
            return "MISS"
        if self.aim is None:
            return "ok"
        return "ok, aim met" if value <= self.aim else "ok, aim not met"


@dataclass(frozen=True)
class Figure:
    """One reported line: `stat` of the samples in `series`, per side.

    `label` may use `{size}` and `{rounds}` (the scenario's counts in this run).
    """

    label: str
    series: str
    stat: str = "p50"
    target: Target | None = None
    ratio: bool = True
    spec: str = ".1f"
    #: a target on A/C, the ratio to the run's peer kernel (C), when the scenario has one
    target_c: Target | None = None


@dataclass(frozen=True)
class Scenario:
    """One short measurement. `run` does one round on one side and returns its samples.

    `size` is the scenario's own count (executes per round, lines printed, messages...);
    `quick_*` are the counts of `--quick`. `sides`, if given, picks the contenders from the
    run's default (A, B), e.g. mpkernel alone or two mpkernel configurations. `peer`: the
    scenario also runs on the run's third kernel (C, e.g. xeus-python) when there is one.
    """

    name: str
    title: str
    run: Callable[[Round], Samples]
    figures: tuple[Figure, ...]
    rounds: int
    size: int = 0
    warmup: int = 1
    quick_rounds: int = 1
    quick_size: int = 0
    quick_warmup: int = 0
    sides: Callable[[Contender, Contender], tuple[Contender, ...]] | None = None
    peer: bool = False


@dataclass
class Live:
    """A running kernel shared by the scenarios of one contender, with its client.

    `state` is for scenarios: what they set up once per kernel (an open comm, a target
    registered by code), keyed by a name of their own.
    """

    kernel: KernelProcess
    client: Client
    info: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def is_mpkernel(self) -> bool:
        return self.info.get("implementation") == "mpkernel"


@dataclass
class SideResult:
    """What one side of one scenario produced."""

    slot: str
    contender: Contender
    samples: Samples = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    implementation: str = ""

    @property
    def label(self) -> str:
        return f"{self.slot} {self.contender.label}"

    def add(self, samples: Samples) -> None:
        for key, values in samples.items():
            self.samples.setdefault(key, []).extend(values)

    def stat(self, figure: Figure) -> float:
        return STATS[figure.stat](self.samples.get(figure.series, []))


@dataclass
class ScenarioResult:
    scenario: Scenario
    rounds: int
    size: int
    sides: list[SideResult]
    error: str | None = None
    seconds: float = 0.0


@dataclass
class Run:
    """One run of the tool: its kernels, their clients and the shared running kernels."""

    kernels: KernelSet
    context: Context
    quick: bool
    _pool: dict[tuple[str, str, str], Live] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        return self.kernels.workdir

    def start(
        self, contender: Contender, label: str
    ) -> tuple[KernelProcess, Client, dict[str, Any]]:
        """A new kernel of `contender`, ready (shell answers, IOPub subscribed); its client and
        kernel_info content. The kernel is stopped at the end of the run at the latest."""
        kernel = self.kernels.create(contender, label)
        kernel.start()
        client = self.client(kernel)
        try:
            info = client.wait_ready(timeout_s=START_TIMEOUT_S)
        except BenchError as exc:
            client.close()
            raise with_log(kernel, exc) from exc
        return kernel, client, info

    def client(self, kernel: KernelProcess) -> Client:
        """A new client of `kernel` (close it, or leave it to the end of the run)."""
        return Client(kernel.connection_info(), context=self.context, alive=kernel.is_alive)

    def live(self, contender: Contender) -> Live:
        """The running kernel of `contender`, started on first use and shared afterwards."""
        live = self._pool.get(contender.key)
        if live is not None and live.kernel.is_alive():
            return live
        if live is not None:  # it died since the last round that used it
            self.release(contender)
            raise with_log(live.kernel, BenchError("the shared kernel is no longer running"))
        kernel, client, info = self.start(contender, f"live-{contender.label.replace('/', '-')}")
        live = self._pool[contender.key] = Live(kernel, client, info)
        return live

    def release(self, contender: Contender) -> None:
        """Stop the shared kernel of `contender`, if one runs."""
        live = self._pool.pop(contender.key, None)
        if live is not None:
            live.client.close()
            self.kernels.stop(live.kernel)

    def release_if_dead(self, contender: Contender) -> KernelProcess | None:
        """Stop and forget the shared kernel of `contender` if it died; that kernel."""
        live = self._pool.get(contender.key)
        if live is None or live.kernel.is_alive():
            return None
        self.release(contender)
        return live.kernel

    def keep_only(self, keys: set[tuple[str, str, str]]) -> None:
        """Stop the shared kernels no remaining scenario needs."""
        for key in [k for k in self._pool if k not in keys]:
            self.release(self._pool[key].kernel.contender)

    def close(self) -> None:
        try:
            for live in self._pool.values():
                live.client.close()
            self._pool.clear()
            self.context.destroy(linger=0)
        finally:
            self.kernels.close()


@dataclass
class Round:
    """What a scenario's `run` gets: the run, its side, and which round this is."""

    run: Run
    side: SideResult
    index: int  # 0-based, warm-up rounds first
    warm: bool
    size: int
    last: bool  # the side's last round of this scenario

    @property
    def contender(self) -> Contender:
        return self.side.contender

    def live(self) -> Live:
        """The side's shared running kernel."""
        live = self.run.live(self.side.contender)
        self.side.implementation = str(live.info.get("implementation", "?"))
        return live

    def problem(self, text: str) -> None:
        """A failed correctness check (exit status 1 on a checked side)."""
        self.side.problems.append(f"round {self.index}{' (warm-up)' if self.warm else ''}: {text}")

    def note(self, text: str) -> None:
        """Something the reader of the figure should know (a figure that may mean little)."""
        if text not in self.side.notes:
            self.side.notes.append(text)

    def say(self, text: str) -> None:
        """A progress line for this round."""
        warm = " (warm-up)" if self.warm else ""
        progress(f"  {self.side.label:<22} {text}{warm}")


def with_log(kernel: KernelProcess, exc: BaseException) -> BenchError:
    """The error with the kernel's exit status and the end of its log attached."""
    status = kernel.exit_status()
    where = kernel.label if status is None else f"{kernel.label} (exit status {status})"
    return BenchError(f"{where}: {exc}\n--- kernel log (tail) ---\n{kernel.log_tail()}")


# --------------------------------------------------------------------------- running


def sides_of(
    scenario: Scenario, a: Contender, b: Contender, c: Contender | None = None
) -> tuple[Contender, ...]:
    """The scenario's contenders: its own pick or (A, B), then the peer C if it runs there."""
    sides = scenario.sides(a, b) if scenario.sides is not None else (a, b)
    return (*sides, c) if scenario.peer and c is not None else sides


def run_scenario(
    run: Run, scenario: Scenario, a: Contender, b: Contender, c: Contender | None = None
) -> ScenarioResult:
    rounds = scenario.quick_rounds if run.quick else scenario.rounds
    size = scenario.quick_size if run.quick else scenario.size
    warmup = scenario.quick_warmup if run.quick else scenario.warmup
    contenders = sides_of(scenario, a, b, c)
    sides = [SideResult(slot, c) for slot, c in zip("ABC", contenders, strict=False)]
    result = ScenarioResult(scenario, rounds, size, sides)
    progress(f"{scenario.name}: {scenario.title.format(size=size, rounds=rounds)}")
    began = time.monotonic()
    try:
        for index in range(warmup + rounds):
            for side in sides:
                warm = index < warmup
                last = index + 1 == warmup + rounds
                samples = scenario.run(Round(run, side, index, warm, size, last))
                if not warm:
                    side.add(samples)
    except BenchError as exc:
        # The end of the log of a shared kernel that died meanwhile. The live ones are
        # stopped too: the next scenario gets fresh kernels, not half-finished requests.
        detail = str(exc)
        for side in sides:
            dead = run.release_if_dead(side.contender)
            if dead is not None:
                detail = str(with_log(dead, exc))
            else:
                run.release(side.contender)
        result.error = detail
        progress(f"{scenario.name}: error: {detail}")
    result.seconds = time.monotonic() - began
    return result


def drive(
    scenarios: Sequence[Scenario],
    a: Contender,
    b: Contender,
    *,
    quick: bool,
    json_path: Path | None,
    c: Contender | None = None,
) -> int:
    """Run the scenarios in order, print the report; the exit status (see the module doc)."""
    began = time.monotonic()
    env = environment_info()
    contenders = {k.key: k for s in scenarios for k in sides_of(s, a, b, c)}
    try:
        argv = {key: kernelspec_argv(k.kernel_name) for key, k in contenders.items()}
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results: list[ScenarioResult] = []
    notes: list[str] = []
    try:
        with sigterm_raises(), tempfile.TemporaryDirectory(prefix="mpkernel-bench-") as tmp:
            kernels = KernelSet(Path(tmp), os.environ)
            run = Run(kernels, zmq.Context(), quick)
            try:
                for i, scenario in enumerate(scenarios):
                    results.append(run_scenario(run, scenario, a, b, c))
                    later = {k.key for s in scenarios[i + 1 :] for k in sides_of(s, a, b, c)}
                    run.keep_only(later)
            finally:
                try:
                    run.close()
                finally:
                    notes += kernels.cleanup_notes
    except KeyboardInterrupt:
        print("interrupted; every kernel started has been shut down", file=sys.stderr)
        return 130
    print(report(env, a, b, c, quick, results, argv))
    print(*(f"cleanup: {note}" for note in notes), sep="\n", end="\n" if notes else "")
    print(f"total run time: {time.monotonic() - began:.1f} s")
    if json_path is not None:
        write_json(json_path, env, quick, results)
        print(f"results written to {json_path}")
    if any(r.error for r in results):
        return 2
    return 1 if failed(results) else 0


def failed(results: Sequence[ScenarioResult]) -> bool:
    return any(s.problems and s.contender.checked for r in results for s in r.sides)


# --------------------------------------------------------------------------- report


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_info() -> dict[str, str]:
    """What a reader needs to compare two runs: machine, load, library versions."""
    return {
        "cpu_count": str(os.cpu_count()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pyzmq": zmq.pyzmq_version(),
        "libzmq": zmq.zmq_version(),
        "jupyter_client": _dist_version("jupyter_client"),
        "ipykernel": _dist_version("ipykernel"),
        "xeus-python": _dist_version("xeus-python"),
        "ipython": _dist_version("ipython"),
        "mpkernel": _dist_version("mpkernel"),
        "loadavg_1m": f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a",
    }


def fmt(value: float, spec: str = ".1f") -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


@dataclass(frozen=True)
class Line:
    """One figure of one scenario, evaluated."""

    label: str
    a: float
    b: float
    a_over_b: float
    target: str
    verdict: str
    spec: str
    c: float = math.nan
    a_over_c: float = math.nan


def lines(result: ScenarioResult) -> list[Line]:
    out: list[Line] = []
    sides = result.sides
    for figure in result.scenario.figures:
        a = sides[0].stat(figure)
        b = sides[1].stat(figure) if len(sides) > 1 else math.nan
        c = sides[2].stat(figure) if len(sides) > 2 else math.nan
        a_over_b = ratio(a, b) if figure.ratio else math.nan
        a_over_c = ratio(a, c) if figure.ratio else math.nan
        texts: list[str] = []
        verdicts: list[str] = []
        if figure.target is not None:
            texts.append(figure.target.text())
            verdicts.append(figure.target.judge(a_over_b if figure.target.on_ratio else a))
        if figure.target_c is not None and len(sides) > 2:
            texts.append(figure.target_c.text() + " of C")
            verdicts.append(figure.target_c.judge(a_over_c) + " (C)")
        verdict = "; ".join(verdicts)
        if verdicts and sides[0].problems:
            verdict = "FAIL"
        label = figure.label.format(size=result.size, rounds=result.rounds)
        out.append(Line(label, a, b, a_over_b, "; ".join(texts), verdict, figure.spec, c, a_over_c))
    return out


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; first column left-aligned, the rest right.

    Rows of one cell are section titles: printed as they are, not measured."""
    full = [header, *(r for r in rows if len(r) > 1)]
    widths = [max(len(r[i]) for r in full) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        if len(cells) == 1:
            return cells[0]
        out = [cells[0].ljust(widths[0])]
        out += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def report(
    env: dict[str, str],
    a: Contender,
    b: Contender,
    c: Contender | None,
    quick: bool,
    results: Sequence[ScenarioResult],
    argv: dict[tuple[str, str, str], list[str]],
) -> str:
    rows: list[list[str]] = []
    notes: list[str] = []
    for result in results:
        sides = result.sides
        names = ", ".join(s.label for s in sides)
        rows.append([f"{result.scenario.name} ({names}; {result.seconds:.0f} s)"])
        if result.error is not None:
            rows.append([f"  ERROR: {result.error.splitlines()[0]}"])
            notes.append(f"error in {result.scenario.name}: {result.error}")
        for line in lines(result):
            cells = [
                fmt(line.a, line.spec),
                "" if len(sides) < 2 else fmt(line.b, line.spec),
                "" if len(sides) < 3 else fmt(line.c, line.spec),
            ]
            for i, side in enumerate(sides):
                if side.problems:
                    cells[i] += " FAIL"
            ratios = [
                "" if math.isnan(value) else f"{value:.2f}x"
                for value in (line.a_over_b, line.a_over_c)
            ]
            rows.append(["  " + line.label, *cells, *ratios, line.target, line.verdict])
        for side in sides:
            kind = "FAIL" if side.contender.checked else "note"
            notes += [f"{kind} {result.scenario.name} {side.label}: {p}" for p in side.problems]
            notes += [f"note {result.scenario.name} {side.label}: {n}" for n in side.notes]
    header = [
        "mpkernel benchmarks: A, B (and C, the peer) side by side in one run, alternating "
        "A B C A B C ..., one client (mpkernel.wire) for every kernel; ratios are A/B and A/C",
        f"host: {env['cpu_count']} CPUs, {env['platform']}, Python {env['python']}, "
        f"load average {env['loadavg_1m']} at start",
        f"pyzmq {env['pyzmq']} / libzmq {env['libzmq']}, jupyter_client {env['jupyter_client']}, "
        f"ipykernel {env['ipykernel']}, xeus-python {env['xeus-python']}, "
        f"IPython {env['ipython']}, mpkernel {env['mpkernel']}",
        f"sides unless a scenario names its own: A = {a.label}, B = {b.label}"
        + (f", C = {c.label} (the scenarios marked peer)" if c is not None else ""),
        *sorted({f"kernelspec {k[0]}: {shlex.join(v)}" for k, v in argv.items()}),
        "counts: " + ("--quick (a smoke run; the figures mean little)" if quick else "defaults"),
    ]
    table = render_table(["scenario / figure", "A", "B", "C", "A/B", "A/C", "target", ""], rows)
    return "\n".join([*header, "", table, "", *notes])


def write_json(
    path: Path, env: dict[str, str], quick: bool, results: Sequence[ScenarioResult]
) -> None:
    def clean(value: float) -> float | None:
        return None if math.isnan(value) else value

    doc = {
        "environment": env,
        "quick": quick,
        "scenarios": [
            {
                "name": r.scenario.name,
                "title": r.scenario.title.format(size=r.size, rounds=r.rounds),
                "rounds": r.rounds,
                "size": r.size,
                "seconds": r.seconds,
                "error": r.error,
                "sides": [
                    {
                        "slot": s.slot,
                        "label": s.contender.label,
                        "kernel_name": s.contender.kernel_name,
                        "config": s.contender.config,
                        "transport": s.contender.transport,
                        "implementation": s.implementation,
                        "samples": {
                            k: [clean(v) for v in values] for k, values in s.samples.items()
                        },
                        "problems": s.problems,
                        "notes": s.notes,
                    }
                    for s in r.sides
                ],
                "figures": [
                    {
                        "label": line.label,
                        "a": clean(line.a),
                        "b": clean(line.b),
                        "a_over_b": clean(line.a_over_b),
                        "c": clean(line.c),
                        "a_over_c": clean(line.a_over_c),
                        "target": line.target or None,
                        "verdict": line.verdict or None,
                    }
                    for line in lines(r)
                ],
            }
            for r in results
        ],
        "ok": not failed(results) and not any(r.error for r in results),
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
