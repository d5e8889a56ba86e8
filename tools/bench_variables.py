"""Variables pane scenarios: what an open `positron.variables` comm costs the console, how
fast an in-place edit of a big frame reaches the pane, and whether the pane answers while
a cell runs.

`variables_peer_*` time the same with the pane open against the run's B (ipykernel, no
pane).

Run through `tools/bench.py` (`.venv/bin/python tools/bench.py variables`, or one scenario
by name; `--quick` for a smoke run with 100,000 rows). Both sides are side A's kernelspec
with the built-in variables worker: on side A the pane is open (a variables comm, so each
execution that changes something is followed by a snapshot and an `update`); on side B
it is closed. Each `variables_pass_*` scenario gives both kernels the same namespace
(`%reset -f`, then the data), waits on side A until the pane lists the data (the event
that names it), then times `pass` executes (send -> idle).

`variables_edit` (side A only): with the 10M x 10 pandas frame in place, a round sends
`df.iloc[0, 0] = <new value>`; timed from the send until the `update` assigning `df`
arrives (the console's own wait, execute -> idle, beside it).

`variables_inspect_busy` (side A only): while a cell runs `time.sleep(1)`, an `inspect`
of the frame's children (its columns) is sent; timed from its send to its answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from _benchclient import Received
from _benchdriver import Figure, Live, Round, Samples, Scenario, Target
from _benchkernels import BenchError, Contender

TIMEOUT_S = 180.0
VARIABLES = "positron.variables"
QUICK_ROWS = 100_000
FRAME_KEY = '{"type":"str","data":"df"}'


def sides(a: Contender, b: Contender) -> tuple[Contender, ...]:
    """A: the variables pane is open; B: the same kernel and config, pane closed."""
    return (
        Contender(f"{a.label}/pane-open", a.kernel_name, config="# variables pane open\n"),
        Contender(f"{a.label}/pane-closed", a.kernel_name, config="# variables pane closed\n"),
    )


def open_only(a: Contender, b: Contender) -> tuple[Contender, ...]:
    return sides(a, b)[:1]


def open_and_peer(a: Contender, b: Contender) -> tuple[Contender, ...]:
    """A: the pane open (the same kernel as `sides`'s A); B: the run's B (ipykernel), which
    has no pane."""
    return (sides(a, b)[0], b)


def namespaces(rows: int) -> dict[str, tuple[str, str]]:
    """name -> (setup cell, a variable the pane lists once the worker holds the data)."""
    return {
        "empty": ("marker = 0", "marker"),
        "small": ("for _k in range(10_000):\n    exec(f'v{_k} = {_k} * 1.5')", "v9999"),
        "dicts": (
            f"lst = [{{'a': i, 'b': str(i), 'c': [i]}} for i in range({rows // 10})]",
            "lst",
        ),
        "pandas": (
            "import numpy as np, pandas as pd\n"
            f"df = pd.DataFrame(np.random.default_rng(0).random(({rows}, 10)))",
            "df",
        ),
        "polars": (
            "import numpy as np, polars as pl\n"
            "pf = pl.DataFrame("
            f"{{f'c{{i}}': np.random.default_rng(i).random({rows}) for i in range(10)}})",
            "pf",
        ),
    }


def names_in(got: Received, comm_id: str) -> set[str] | None:
    """The names a `refresh` or `update` on `comm_id` lists as known (assigned), else None."""
    if got.msg_type != "comm_msg" or got.content.get("comm_id") != comm_id:
        return None
    data = got.content.get("data")
    if not isinstance(data, dict) or data.get("method") not in ("refresh", "update"):
        return None
    params = data.get("params", {})
    listed = params.get("variables", []) + params.get("assigned", [])
    return {v["display_name"] for v in listed}


def wait_listed(live: Live, name: str, *, timeout_s: float = TIMEOUT_S) -> int:
    """Wait until the pane's events name `name` as assigned; when that event arrived."""
    comm_id = live.state["pane"]
    seen: list[int] = []

    def until(got: Received) -> bool:
        names = names_in(got, comm_id)
        if names is not None and name in names:
            seen.append(got.at_ns)
            return True
        return False

    live.client.wait_iopub(until, timeout_s=timeout_s, what=f"an update naming {name}")
    return seen[0]


def prepare(r: Round, name: str) -> Live:
    """The side's kernel with namespace `name` (and, with the pane open, the pane showing it)."""
    live = r.live()
    client = live.client
    pane_open = r.contender.label.endswith("/pane-open")
    if pane_open and "pane" not in live.state:
        live.state["pane"] = client.comm_open(VARIABLES, timeout_s=TIMEOUT_S)
    if live.state.get("namespace") != name:
        rows = QUICK_ROWS if r.run.quick else 10_000_000
        setup, listed = namespaces(rows)[name]
        client.execute("%reset -f\nimport time\n", timeout_s=TIMEOUT_S)
        t0 = time.perf_counter()
        seen: list[int] = []

        def on_iopub(got: Received) -> None:
            names = names_in(got, live.state["pane"]) if pane_open else None
            if names is not None and listed in names:
                seen.append(got.at_ns)

        # Within the post-execute budget the update comes before the idle, inside the
        # execution; otherwise later.
        client.execute(setup, timeout_s=TIMEOUT_S, on_iopub=on_iopub)
        if pane_open:
            if not seen:
                wait_listed(live, listed)
            r.say(f"{name}: the pane lists {listed} after {time.perf_counter() - t0:.2f} s")
        live.state["namespace"] = name
    return live


def pass_round(name: str) -> Callable[[Round], Samples]:
    def run(r: Round) -> Samples:
        client = prepare(r, name).client
        times = []
        for _ in range(r.size):
            ex = client.execute("pass", timeout_s=TIMEOUT_S)
            times.append(ex.to_idle_ns / 1e3)
        return {"pass_us": times}

    return run


def edit(r: Round) -> Samples:
    live = prepare(r, "pandas")
    comm_id = live.state["pane"]
    value = float(r.index) + 0.25
    found: list[int] = []

    def on_iopub(got: Received) -> None:
        names = names_in(got, comm_id)
        if names is not None and "df" in names and not found:
            found.append(got.at_ns)

    ex = live.client.execute(f"df.iloc[0, 0] = {value!r}", timeout_s=TIMEOUT_S, on_iopub=on_iopub)
    if not found:  # after the idle: the snapshot did not fit the post-execute budget
        found.append(wait_listed(live, "df"))
        r.say("the update came after the execution's idle")
    return {"update_ms": [(found[0] - ex.sent_ns) / 1e6], "idle_ms": [ex.to_idle_ns / 1e6]}


def inspect_busy(r: Round) -> Samples:
    live = prepare(r, "pandas")
    client = live.client
    busy = client.prepare("execute_request", _execute("time.sleep(1)"))
    client.send_prepared("shell", busy)
    client.wait_iopub(
        lambda m: m.parent_id == busy.msg_id and m.msg_type == "execute_input",
        timeout_s=TIMEOUT_S,
        what="the sleeping cell's start",
    )
    answer = client.comm_request(
        live.state["pane"], "inspect", {"path": [FRAME_KEY]}, timeout_s=TIMEOUT_S
    )
    data: Any = answer.data
    if not isinstance(data, dict) or len(data.get("result", {}).get("children", [])) != 10:
        raise BenchError(f"inspect answered {data!r}")
    took_ms = (answer.at_ns - answer.exchange.sent_ns) / 1e6
    client.execute("pass", timeout_s=TIMEOUT_S)  # behind the sleeping cell
    if took_ms > 900:
        r.problem(f"inspect took {took_ms:.0f} ms: it waited for the cell")
    return {"inspect_ms": [took_ms]}


def _execute(code: str) -> dict[str, Any]:
    from _benchclient import execute_content

    return execute_content(code)


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
            f"variables_pass_{name}",
            f"execute `pass` -> idle with {title}: variables pane open (A) vs closed (B)",
            pass_round(name),
            figures=(
                Figure(
                    f"`pass` p50 with {title}, pane open vs closed (us)",
                    "pass_us",
                    "p50",
                    target=Target("<=", 1.2),
                ),
            ),
            rounds=4,
            size=200,
            warmup=1,
            quick_rounds=1,
            quick_size=20,
            sides=sides,
        )
        for name, title in TITLES.items()
    ),
    *(
        Scenario(
            f"variables_peer_{name}",
            f"execute `pass` -> idle with {title}: variables pane open (A) vs the peer (B)",
            pass_round(name),
            figures=(
                Figure(f"`pass` p50 with {title}, pane open vs the peer (us)", "pass_us", "p50"),
            ),
            rounds=4,
            size=200,
            warmup=1,
            quick_rounds=1,
            quick_size=20,
            sides=open_and_peer,
        )
        for name, title in TITLES.items()
    ),
    Scenario(
        "variables_edit",
        "in-place edit of the 10M x 10 pandas frame -> its `update` on the pane",
        edit,
        figures=(
            Figure(
                "edit -> update, p50 (ms)",
                "update_ms",
                "p50",
                target=Target("<", 1000.0, on_ratio=False),
                ratio=False,
            ),
            Figure("edit -> update, max (ms)", "update_ms", "max", ratio=False),
            Figure("the console's wait for that cell, p50 (ms)", "idle_ms", "p50", ratio=False),
        ),
        rounds=7,
        warmup=1,
        quick_rounds=1,
        sides=open_only,
    ),
    Scenario(
        "variables_inspect_busy",
        "inspect of the frame's columns while a cell sleeps -> its answer",
        inspect_busy,
        figures=(
            Figure(
                "inspect while a cell runs, p50 (ms)",
                "inspect_ms",
                "p50",
                target=Target("<", 100.0, on_ratio=False),
                ratio=False,
            ),
        ),
        rounds=7,
        warmup=1,
        quick_rounds=1,
        sides=open_only,
    ),
]
