"""Memory scenario: does a kernel give back what a workload took? (`memory_workload`)

A fresh kernel per round: the PSS of its process tree just after start (its first execute
answered), once warm (its comm
open and used: mpkernel has started the echo worker), then after `size` comm round trips and
`size / 10` executes; the growth since warm is memory the workload kept. mpkernel's comm goes
through its echo worker, ipykernel's is an in-process `comm` target (bench_comms.SETUP_CODE);
the peer (C) runs the executes only, as its comm support is not the `comm` package's.

Run through `tools/bench.py` (`.venv/bin/python tools/bench.py memory`).
"""

from __future__ import annotations

import gc

from _benchdriver import Figure, Live, Round, Samples, Scenario, Target
from _benchkernels import BenchError
from bench_comms import REQUEST_TIMEOUT_S, echo_comm

MIB = 1024 * 1024
WARM_ROUND_TRIPS = 100


def memory_workload(r: Round) -> Samples:
    kernel, client, info = r.run.start(r.contender, f"memory-{r.side.slot}-{r.index}")
    try:
        # Started means able to run code: a kernel may answer kernel_info while it is still
        # being assembled (mpkernel does), so the fresh figure is taken after one execute.
        client.execute("pass", timeout_s=REQUEST_TIMEOUT_S)
        fresh, _ = kernel.memory()
        with_comms = r.side.slot != "C"
        comm_id = echo_comm(Live(kernel, client, info)) if with_comms else ""

        def work(round_trips: int, executes: int) -> None:
            for i in range(executes):
                client.execute(f"_bench_x = {i}", timeout_s=REQUEST_TIMEOUT_S)
            for i in range(round_trips if with_comms else 0):
                answer = client.comm_request(comm_id, "echo", {"n": i}, timeout_s=REQUEST_TIMEOUT_S)
                if not isinstance(answer.data, dict) or answer.data.get("result") != {"n": i}:
                    raise BenchError(f"{r.side.label}: echo answered {answer.data!r}")

        # Warm: the worker started, caches filled; what grows after this is kept memory.
        work(WARM_ROUND_TRIPS, WARM_ROUND_TRIPS // 10)
        gc.collect()
        warm, _ = kernel.memory()
        work(r.size, r.size // 10)
        after, _ = kernel.memory()
    finally:
        client.close()
        r.run.kernels.stop(kernel)
    done = f"{r.size} comm round trips and " if with_comms else ""
    r.say(
        f"PSS fresh {fresh / MIB:6.1f}, warm {warm / MIB:6.1f}, after {done}"
        f"{r.size // 10} executes {after / MIB:6.1f} MiB"
    )
    return {
        "fresh_mib": [fresh / MIB],
        "warm_mib": [warm / MIB],
        "after_mib": [after / MIB],
        "growth_mib": [(after - warm) / MIB],
    }


SCENARIOS = [
    Scenario(
        "memory_workload",
        "PSS of a fresh kernel's tree, then after {size} comm round trips + executes",
        memory_workload,
        figures=(
            Figure("fresh kernel, PSS of the tree (MiB)", "fresh_mib", "median", Target("<=", 1.0)),
            Figure("warm (comm open, 100 round trips), PSS (MiB)", "warm_mib", "median"),
            Figure("after the workload, PSS of the tree (MiB)", "after_mib", "median"),
            Figure(
                "  growth since warm (MiB)",
                "growth_mib",
                "median",
                Target("<=", 10.0, on_ratio=False),
                ratio=False,
            ),
        ),
        rounds=1,
        size=10_000,
        warmup=0,
        quick_size=200,
        peer=True,
    ),
]
