"""mpkernel's benchmarks: every figure of docs/architecture.md section 8, mpkernel against
ipykernel, one run.

Run it from the repository root (the kernelspec `mpkernel` must be installed: tools/demo.sh
does it, or `.venv/bin/mpkernel install --sys-prefix --name mpkernel`):

    .venv/bin/python tools/bench.py                     # every scenario, default counts
    .venv/bin/python tools/bench.py --quick             # every scenario, smallest counts (smoke)
    .venv/bin/python tools/bench.py execute comm_echo   # some scenarios (or groups: comms...)
    .venv/bin/python tools/bench.py --kernels python3,python3   # noise floor: A against A
    .venv/bin/python tools/bench.py --kernels mpkernel,python3  # without the peer (C) column
    .venv/bin/python tools/bench.py --list              # the scenarios and their counts

Layout (each module has one job):

    bench.py             this command line: picks scenarios, hands them to the driver
    _benchdriver.py      the A/B driver: sides, alternation, statistics, ratios, report, JSON
    _benchclient.py      the one frontend (pyzmq sockets + mpkernel.wire Signer/encode/decode)
    _benchkernels.py     kernel processes: start from a kernelspec, stop everything, always
    bench_kernel.py      scenarios: cold_start, execute, stream, rss
    bench_comms.py       scenarios: comm_echo, comm_throughput, ordering, busy_worker, worker_kill
    bench_disconnect.py  scenarios: disconnect_close, disconnect_kill, disconnect_hang
    bench_workers.py     scenario: worker_start (forkserver against spawn)

Adding a scenario (e.g. a snapshot benchmark): create `tools/bench_<group>.py` with a
module-level `SCENARIOS` list; this tool imports every `tools/bench_*.py` and runs what
they declare, in file-name order (bench_kernel and bench_comms first), no edit here needed:

    from _benchdriver import Figure, Round, Samples, Scenario, Target

    def snapshot_open(r: Round) -> Samples:          # one round on one side
        live = r.live()                              # the side's running kernel + client
        t0 = time.perf_counter_ns()
        answer = live.client.comm_request(comm_id, "open", {...}, timeout_s=30)
        return {"open_ms": [(answer.done_ns - t0) / 1e6]}

    SCENARIOS = [
        Scenario(
            "snapshot_open", "data explorer open + first page", snapshot_open,
            figures=(Figure("open + first page, p50 (ms)", "open_ms",
                            target=Target("<", 1000.0, on_ratio=False)),),
            rounds=5, size=10_000_000, quick_rounds=1, quick_size=1000,
            sides=lambda a, b: (a,),                 # mpkernel only; default: A and B
        ),
    ]

`Round` gives `live()` (a shared running kernel; `live.state` keeps per-kernel setup such
as an open comm), `size`, `warm`, `last`, `problem()` (a failed check), `note()` and `say()`;
`Run.start()` gives a kernel of its own. Comm requests go through `Client.comm_request` /
`Client.rpc` in Positron's shape (no JSON-RPC `id`; the answer is matched by its parent
header). Then add the scenario's figure to docs/benchmarks.md and, for a README figure,
to the README's table.
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from _benchdriver import Scenario, drive
from _benchkernels import BenchError, Contender, kernelspec_argv

TOOLS = Path(__file__).resolve().parent
FIRST = ("bench_kernel", "bench_comms")  # the shared kernels warm up on the simple ones
DEFAULT_KERNELS = ("mpkernel", "python3")  # A: mpkernel, B: ipykernel
PEER = "xpython"  # C: xeus-python, the fastest Python kernel there is


def discover() -> dict[str, list[Scenario]]:
    """group name (module without `bench_`) -> its SCENARIOS, in run order."""
    modules = sorted(p.stem for p in TOOLS.glob("bench_*.py"))
    modules.sort(key=lambda m: (FIRST.index(m) if m in FIRST else len(FIRST), m))
    groups: dict[str, list[Scenario]] = {}
    for name in modules:
        scenarios = getattr(importlib.import_module(name), "SCENARIOS", None)
        if scenarios:
            groups[name.removeprefix("bench_")] = list(scenarios)
    return groups


def parse_args(argv: Sequence[str] | None, groups: dict[str, list[Scenario]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="mpkernel against ipykernel, side by side: one scenario per figure.",
        epilog="Scenarios and groups: "
        + "; ".join(f"{g}: {' '.join(s.name for s in ss)}" for g, ss in groups.items()),
    )
    parser.add_argument("only", nargs="*", metavar="SCENARIO", help="scenarios or groups to run")
    parser.add_argument(
        "--kernels",
        default=None,
        help="kernelspecs A,B[,C]; ratios are A/B and A/C; C (a peer kernel) runs the "
        "scenarios marked peer; failed checks on A set the exit status (default: "
        f"{','.join(DEFAULT_KERNELS)}, with {PEER} when that kernelspec is installed)",
    )
    parser.add_argument("--quick", action="store_true", help="smallest counts: a smoke run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every sample here")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.kernels is None:
        names = list(DEFAULT_KERNELS)
        try:
            kernelspec_argv(PEER)
            names.append(PEER)
        except BenchError:
            print(f"no {PEER} kernelspec (pip install xeus-python): no C column", file=sys.stderr)
    else:
        names = [n.strip() for n in args.kernels.split(",") if n.strip()]
    if len(names) not in (2, 3):
        parser.error("--kernels takes two or three kernelspec names, e.g. mpkernel,python3")
    args.kernels = names
    known = {s.name for ss in groups.values() for s in ss} | set(groups)
    unknown = [n for n in args.only if n not in known]
    if unknown:
        parser.error(f"unknown scenario or group {', '.join(unknown)}; --list shows them")
    return args


def compile_bytecode() -> None:
    """Write the bytecode of mpkernel's packages, as installing a wheel does: an editable
    install under PYTHONDONTWRITEBYTECODE would otherwise compile every module again at
    every kernel and worker start, which no installed kernel does (ipykernel's wheel has
    its bytecode)."""
    import mpkernel_workers

    import mpkernel

    for package in (mpkernel, mpkernel_workers):
        directory = Path(package.__file__ or "").parent
        if not compileall.compile_dir(directory, quiet=1):
            print(f"could not compile {directory}: kernels compile at start", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    groups = discover()
    args = parse_args(argv, groups)
    if not args.list:
        compile_bytecode()
    picked = [
        s
        for group, scenarios in groups.items()
        for s in scenarios
        if not args.only or group in args.only or s.name in args.only
    ]
    if args.list:
        for group, scenarios in groups.items():
            for s in scenarios:
                counts = f"{s.rounds} rounds" + (f" x {s.size}" if s.size else "")
                quick = f"{s.quick_rounds}" + (f" x {s.quick_size}" if s.quick_size else "")
                title = s.title.format(size=s.size, rounds=s.rounds)
                print(f"{group:<11} {s.name:<20} {counts:<18} quick {quick:<10} {title}")
        return 0
    a = Contender(args.kernels[0], args.kernels[0])
    b = Contender(args.kernels[1], args.kernels[1], checked=False)
    if a.key == b.key:  # A/A: two kernels, not one shared
        b = Contender(f"{b.label}'", b.kernel_name, config="# B\n", checked=False)
    c = Contender(args.kernels[2], args.kernels[2], checked=False) if args.kernels[2:] else None
    return drive(picked, a, b, quick=args.quick, json_path=args.json, c=c)


if __name__ == "__main__":
    sys.exit(main())
