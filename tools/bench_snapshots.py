"""Snapshot scenarios: what a worker that consumes snapshots costs the console, and how fast
an in-place mutation of a big frame reaches it.

Run through `tools/bench.py` (`.venv/bin/python tools/bench.py snapshots`, or one scenario
by name). Both sides are side A's kernelspec with the diagnostic probe worker configured
(`mpkernel.snapshot_probe`, the consumer of docs/architecture.md section 4): on side A a probe comm
is open, so every execution is followed by the snapshot builder; on side B none is, so the
builder does nothing. Each `snapshot_pass_*` scenario first gives both kernels the same
namespace (`%reset -f`, then the data), waits on side A until the probe worker holds the
data (an `evaluate` RPC that reads it), then times `pass` executes (send -> idle), so the
ratio A/B is the cost of having a consumer with that namespace.

`snapshot_mutation` (side A only): with the 10M x 10 pandas frame in place, a round sends
`df.iloc[0, 0] = <new value>` and, once it is idle, an `evaluate` RPC reading that cell in
the worker; timed from the execute's send until the RPC's answer carries the new value (the
worker waits for data the kernel is still writing, so the answer comes when the data is
there). The console's own wait (execute -> idle) is reported beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from _benchdriver import Figure, Live, Round, Samples, Scenario, Target
from _benchkernels import BenchError, Contender

TIMEOUT_S = 120.0
PROBE = "mpkernel.snapshot_probe"
PROBE_CONFIG = (
    "[workers.probe]\n"
    f'target = "{PROBE}"\n'
    'handler = "mpkernel_workers.snapshot_probe:SnapshotProbeHandler"\n'
)
QUICK_ROWS = 100_000


def sides(a: Contender, b: Contender) -> tuple[Contender, ...]:
    """A: a probe comm consumes snapshots; B: the same kernel and config, no consumer."""
    return (
        Contender(f"{a.label}/consumer", a.kernel_name, config=PROBE_CONFIG),
        # The comment only makes the configuration differ, so B gets a kernel of its own.
        Contender(f"{a.label}/none", a.kernel_name, config=PROBE_CONFIG + "# no consumer\n"),
    )


def consumer_only(a: Contender, b: Contender) -> tuple[Contender, ...]:
    return sides(a, b)[:1]


def namespaces(rows: int) -> dict[str, tuple[str, str]]:
    """name -> (setup cell, expression the worker evaluates once it holds the data)."""
    return {
        "empty": ("pass", "0"),
        "small": (
            "for _k in range(10_000):\n    exec(f'v{_k} = {_k} * 1.5')",
            "v9999",
        ),
        "dicts": (
            f"lst = [{{'a': i, 'b': str(i), 'c': [i]}} for i in range({rows // 10})]",
            "len(lst)",
        ),
        "pandas": (
            "import numpy as np, pandas as pd\n"
            f"df = pd.DataFrame(np.random.default_rng(0).random(({rows}, 10)))",
            "float(df.iloc[-1, -1])",
        ),
        "polars": (
            "import numpy as np, polars as pl\n"
            "pf = pl.DataFrame("
            f"{{f'c{{i}}': np.random.default_rng(i).random({rows}) for i in range(10)}})",
            "float(pf[-1, -1])",
        ),
    }


def prepare(r: Round, name: str) -> Live:
    """The side's kernel with namespace `name` (and, on A, the worker holding it)."""
    live = r.live()
    client = live.client
    consumer = r.contender.label.endswith("/consumer")
    if consumer and "probe" not in live.state:
        live.state["probe"] = client.comm_open(PROBE, timeout_s=TIMEOUT_S)
    if live.state.get("namespace") != name:
        rows = QUICK_ROWS if r.run.quick else 10_000_000
        setup, check = namespaces(rows)[name]
        client.execute("%reset -f\n", timeout_s=TIMEOUT_S)
        t0 = time.perf_counter()
        client.execute(setup, timeout_s=TIMEOUT_S)
        expected = client_eval(live, check) if consumer else None
        if consumer:
            r.say(f"{name}: the worker holds the data after {time.perf_counter() - t0:.2f} s")
            if expected is None:
                r.problem(f"{name}: the worker could not read {check!r}")
        live.state["namespace"] = name
    return live


def client_eval(live: Live, expression: str) -> Any:
    result = live.client.rpc(
        live.state["probe"], "evaluate", {"expression": expression}, timeout_s=TIMEOUT_S
    )
    if not isinstance(result, dict) or "value" not in result:
        raise BenchError(f"evaluate {expression!r} answered {result!r}")
    return result["value"]


def pass_round(name: str) -> Callable[[Round], Samples]:
    def run(r: Round) -> Samples:
        client = prepare(r, name).client
        times = []
        for _ in range(r.size):
            ex = client.execute("pass", timeout_s=TIMEOUT_S)
            times.append(ex.to_idle_ns / 1e3)
        return {"pass_us": times}

    return run


def mutation(r: Round) -> Samples:
    live = prepare(r, "pandas")
    client = live.client
    value = float(r.index) + 0.25
    t0 = time.perf_counter_ns()
    ex = client.execute(f"df.iloc[0, 0] = {value!r}", timeout_s=TIMEOUT_S)
    answer = live.client.comm_request(
        live.state["probe"],
        "evaluate",
        {"expression": "float(df.iloc[0, 0])"},
        timeout_s=TIMEOUT_S,
    )
    got = answer.data.get("result", {}).get("value") if isinstance(answer.data, dict) else None
    if got != value:
        r.problem(f"the worker read {got!r} after writing {value!r}")
    return {"visible_ms": [(answer.at_ns - t0) / 1e6], "idle_ms": [ex.to_idle_ns / 1e6]}


TITLES = {
    "empty": "an empty namespace",
    "small": "10,000 small variables",
    "dicts": "a list of 1,000,000 dicts",
    "pandas": "a 10M x 10 pandas DataFrame",
    "polars": "a 10M x 10 polars DataFrame",
}

SCENARIOS = [
    *(
        Scenario(
            f"snapshot_pass_{name}",
            f"execute `pass` -> idle with {title}: snapshot consumer (A) vs none (B)",
            pass_round(name),
            figures=(
                Figure(
                    f"`pass` p50 with {title} (us)",
                    "pass_us",
                    "p50",
                    target=Target("<=", 1.2),
                ),
            ),
            rounds=6,
            size=200,
            warmup=1,
            quick_rounds=1,
            quick_size=20,
            sides=sides,
        )
        for name, title in TITLES.items()
    ),
    Scenario(
        "snapshot_mutation",
        "in-place mutation of the 10M x 10 pandas frame -> the worker reads the new value",
        mutation,
        figures=(
            Figure(
                "mutation -> visible in the worker, p50 (ms)",
                "visible_ms",
                "p50",
                target=Target("<", 1000.0, on_ratio=False),
                ratio=False,
            ),
            Figure("mutation -> visible in the worker, max (ms)", "visible_ms", "max", ratio=False),
            Figure("the console's wait for that cell, p50 (ms)", "idle_ms", "p50", ratio=False),
        ),
        rounds=7,
        warmup=1,
        quick_rounds=1,
        sides=consumer_only,
    ),
]
