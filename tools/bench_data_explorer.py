"""Data explorer scenarios on a 10M x 10 table, pandas and polars.

Run through `tools/bench.py` (`.venv/bin/python tools/bench.py data_explorer`, one
scenario by name, or `--quick` for a smoke run with 100,000 rows). mpkernel only (side A's
kernelspec with the default configuration: the variables pane and the data explorer on, and
no user file read): the reference is Positron's own
Python kernel, measured on this kind of machine on the same table (`POSITRON_MS` below, printed
beside each figure as a note).

The table: 10M rows, f0..f3 float64 (f3 with 10 % missing), i0..i2 int64, s0 and s1
strings (100,000 and 100 distinct values), d0 datetimes. Scenarios, each for pandas and
polars:

- `de_view_*`: the variables pane's `view` request (when the `positron.variables` worker
  answers it; else `mpkernel.view(t)` in a cell, which opens the same way) -> comm_open ->
  `get_state` -> `get_schema` -> `get_data_values` for 100 rows x 10 columns. Every round
  opens a new explorer (a new worker process, the table sent through shared memory), then
  closes it.
- `de_page_*`: the next page (100 x 10 rows from the middle) of an open explorer.
- `de_sort_*`: `set_sort_columns` on f1 (alternately ascending and descending) + first page.
- `de_filter_*`: a `between` filter on f0 + first page (sort cleared).
- `de_profiles_*`: `get_column_profiles` with `null_count` and `summary_stats` for all ten
  columns: from the request until the `return_column_profiles` event.
- `de_pass_behind_sort_*`: `set_sort_columns` sent, then at once `pass` in the console:
  the `pass`'s send -> idle (the sort runs in the table's worker process meanwhile).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from _benchclient import Received
from _benchdriver import Figure, Live, Round, Samples, Scenario, Target
from _benchkernels import BenchError, Contender

TIMEOUT_S = 300.0
EXPLORER = "positron.dataExplorer"
VARIABLES = "positron.variables"
# Not empty, so that a configuration file of the user running the benchmark is not read.
CONFIG = "# the built-in defaults\n"
QUICK_ROWS = 100_000
FORMAT = {
    "large_num_digits": 2,
    "small_num_digits": 4,
    "max_integral_digits": 7,
    "max_value_length": 1000,
    "thousands_sep": ",",
}
PAGE = 100
NUM_COLUMNS = 10


def all_profiles_request(callback: str, num_columns: int = NUM_COLUMNS) -> dict[str, Any]:
    """`get_column_profiles` params: null_count and summary_stats of every column."""
    return {
        "callback_id": callback,
        "profiles": [
            {
                "column_index": i,
                "profiles": [{"profile_type": "null_count"}, {"profile_type": "summary_stats"}],
            }
            for i in range(num_columns)
        ],
        "format_options": FORMAT,
    }


def profiles_of(m: Received, comm: str, callback: str) -> dict[str, Any] | None:
    """The params of the `return_column_profiles` event for `callback` on `comm`, if `m` is it."""
    data = m.content.get("data")
    if (
        m.msg_type == "comm_msg"
        and m.content.get("comm_id") == comm
        and isinstance(data, dict)
        and data.get("method") == "return_column_profiles"
        and data.get("params", {}).get("callback_id") == callback
    ):
        params: dict[str, Any] = data["params"]
        return params
    return None


# Positron's Python kernel on the same table, on this kind of machine (ms).
POSITRON_MS = {
    ("view", "pandas"): 40,
    ("view", "polars"): 40,
    ("page", "pandas"): 5,
    ("page", "polars"): 5,
    ("sort", "pandas"): 2152,
    ("sort", "polars"): 1032,
    ("filter", "pandas"): 47,
    ("filter", "polars"): 49,
    ("profiles", "pandas"): 26273,
    ("profiles", "polars"): 1543,
    ("pass_behind_sort", "pandas"): 2238,
    ("pass_behind_sort", "polars"): 1338,
}


def explorer_only(a: Contender, b: Contender) -> tuple[Contender, ...]:
    return (Contender(f"{a.label}/explorer", a.kernel_name, config=CONFIG),)


def setup_cell(lib: str, rows: int) -> str:
    """The table as `t` (built with polars, the fastest way to make 10M strings)."""
    make = (
        "import numpy as np, pandas as pd, polars as pl, mpkernel\n"
        f"_n = {rows}\n"
        "_rng = np.random.default_rng(0)\n"
        "_f3 = _rng.random(_n)\n"
        "_f3[_rng.random(_n) < 0.1] = np.nan\n"
        "t = pl.DataFrame({\n"
        "    **{f'f{i}': _rng.random(_n) for i in range(3)}, 'f3': _f3,\n"
        "    **{f'i{i}': _rng.integers(0, 1_000_000, _n) for i in range(3)},\n"
        "    's0': pl.Series(_rng.integers(0, 100_000, _n)).cast(pl.String),\n"
        "    's1': pl.Series(_rng.integers(0, 100, _n)).cast(pl.String),\n"
        "    'd0': pl.from_epoch(pl.Series(_rng.integers(1.5e9, 1.7e9, _n)), time_unit='s'),\n"
        "}).with_columns(pl.col('f3').fill_nan(None))\n"
    )
    if lib == "pandas":
        make += "t = t.to_pandas()\n"
    return make + "del _f3, _rng\n"


def columns(first: int, last: int) -> list[dict[str, Any]]:
    spec = {"first_index": first, "last_index": last}
    return [{"column_index": i, "spec": spec} for i in range(NUM_COLUMNS)]


def prepare(r: Round, lib: str) -> Live:
    """The side's kernel holding the table of `lib` as `t`."""
    live = r.live()
    if live.state.get("lib") != lib:
        rows = QUICK_ROWS if r.run.quick else 10_000_000
        for key in ("explorer",):
            comm = live.state.pop(key, None)
            if comm is not None:
                live.client.comm_close(comm, timeout_s=TIMEOUT_S)
        # Not `%reset -f`: it empties `__main__`, and a worker started afterwards fails
        # ("module '__main__' has no attribute '__spec__'"; reported to the platform).
        live.client.execute("t = None\n", timeout_s=TIMEOUT_S)
        t0 = time.perf_counter()
        live.client.execute(setup_cell(lib, rows), timeout_s=TIMEOUT_S)
        r.say(f"{lib}: table of {rows:,} rows built in {time.perf_counter() - t0:.1f} s")
        live.state["lib"] = lib
    return live


def open_explorer(r: Round, live: Live) -> tuple[str, str]:
    """View `t`; (comm id, how it was opened). Returns once comm_open has arrived."""
    client = live.client
    opened: list[str] = []

    def watch(got: Received) -> None:
        c = got.content
        if got.msg_type == "comm_open" and c.get("target_name") == EXPLORER:
            opened.append(c["comm_id"])

    with client.watch(watch):
        how = "mpkernel.view"
        variables = live.state.get("variables")
        if variables is None and "no_variables" not in live.state:
            try:
                variables = live.state["variables"] = client.comm_open(
                    VARIABLES, timeout_s=TIMEOUT_S
                )
            except BenchError:
                live.state["no_variables"] = True
        if variables is not None:
            answer = client.comm_request(
                variables, "view", {"path": ['{"type":"str","data":"t"}']}, timeout_s=TIMEOUT_S
            )
            if isinstance(answer.data, dict) and "result" in answer.data:
                how = "variables view"
            else:
                live.state["no_variables"] = True
                live.state.pop("variables", None)
        if how == "mpkernel.view":
            client.execute("mpkernel.view(t, 't')", timeout_s=TIMEOUT_S)
        if not opened:
            client.wait_iopub(
                lambda _: bool(opened), timeout_s=TIMEOUT_S, what="the explorer's comm_open"
            )
    r.note(f"opened through {how}")
    return opened[0], how


def first_page(live: Live, comm: str, first: int = 0) -> Any:
    client = live.client
    result = client.rpc(
        comm,
        "get_data_values",
        {"columns": columns(first, first + PAGE - 1), "format_options": FORMAT},
        timeout_s=TIMEOUT_S,
    )
    return result["columns"]


def explorer(r: Round, lib: str) -> tuple[Live, str]:
    live = prepare(r, lib)
    comm = live.state.get("explorer")
    if comm is None:
        comm, _ = open_explorer(r, live)
        live.client.rpc(comm, "get_state", {}, timeout_s=TIMEOUT_S)
        live.state["explorer"] = comm
    return live, comm


def positron_note(r: Round, what: str, lib: str) -> None:
    r.note(f"Positron's Python kernel: {POSITRON_MS[(what, lib)]:,} ms (same table)")


def view_round(lib: str) -> Callable[[Round], Samples]:
    def run(r: Round) -> Samples:
        live = prepare(r, lib)
        t0 = time.perf_counter_ns()
        comm, _ = open_explorer(r, live)
        client = live.client
        state = client.rpc(comm, "get_state", {}, timeout_s=TIMEOUT_S)
        client.rpc(
            comm, "get_schema", {"column_indices": list(range(NUM_COLUMNS))}, timeout_s=TIMEOUT_S
        )
        page = first_page(live, comm)
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        rows = QUICK_ROWS if r.run.quick else 10_000_000
        if state["table_shape"]["num_rows"] != rows or len(page[0]) != PAGE:
            r.problem(f"state {state['table_shape']}, page of {len(page[0])} rows")
        client.comm_close(comm, timeout_s=TIMEOUT_S)
        positron_note(r, "view", lib)
        return {"view_ms": [elapsed]}

    return run


def page_round(lib: str) -> Callable[[Round], Samples]:
    def run(r: Round) -> Samples:
        live, comm = explorer(r, lib)
        live.client.rpc(comm, "set_row_filters", {"filters": []}, timeout_s=TIMEOUT_S)
        live.client.rpc(comm, "set_sort_columns", {"sort_keys": []}, timeout_s=TIMEOUT_S)
        rows = QUICK_ROWS if r.run.quick else 10_000_000
        times = []
        for k in range(r.size):
            first = (rows // 2 + k * PAGE) % (rows - PAGE)
            t0 = time.perf_counter_ns()
            page = first_page(live, comm, first)
            times.append((time.perf_counter_ns() - t0) / 1e6)
            if len(page[0]) != PAGE:
                r.problem(f"page of {len(page[0])} rows")
        positron_note(r, "page", lib)
        return {"page_ms": times}

    return run


def sort_keys(r: Round) -> list[dict[str, Any]]:
    return [{"column_index": 1, "ascending": r.index % 2 == 0}]


def sort_round(lib: str) -> Callable[[Round], Samples]:
    def run(r: Round) -> Samples:
        live, comm = explorer(r, lib)
        client = live.client
        client.rpc(comm, "set_row_filters", {"filters": []}, timeout_s=TIMEOUT_S)
        t0 = time.perf_counter_ns()
        client.rpc(comm, "set_sort_columns", {"sort_keys": sort_keys(r)}, timeout_s=TIMEOUT_S)
        page = first_page(live, comm)
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        values = [float(v.replace(",", "")) for v in page[1] if isinstance(v, str)]
        ordered = sorted(values, reverse=r.index % 2 == 1)
        if values != ordered:
            r.problem("the first page is not sorted")
        client.rpc(comm, "set_sort_columns", {"sort_keys": []}, timeout_s=TIMEOUT_S)
        positron_note(r, "sort", lib)
        return {"sort_ms": [elapsed]}

    return run


def filter_round(lib: str) -> Callable[[Round], Samples]:
    def run(r: Round) -> Samples:
        live, comm = explorer(r, lib)
        client = live.client
        client.rpc(comm, "set_sort_columns", {"sort_keys": []}, timeout_s=TIMEOUT_S)
        schema = client.rpc(comm, "get_schema", {"column_indices": [0]}, timeout_s=TIMEOUT_S)
        low = 0.25 + 0.01 * r.index  # a new filter each round
        between = {
            "filter_id": f"between-{r.index}",
            "filter_type": "between",
            "column_schema": schema["columns"][0],
            "condition": "and",
            "params": {"left_value": str(low), "right_value": str(low + 0.5)},
        }
        t0 = time.perf_counter_ns()
        result = client.rpc(comm, "set_row_filters", {"filters": [between]}, timeout_s=TIMEOUT_S)
        page = first_page(live, comm)
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        rows = QUICK_ROWS if r.run.quick else 10_000_000
        if not 0.45 * rows < result["selected_num_rows"] < 0.55 * rows or len(page[0]) != PAGE:
            r.problem(f"between kept {result['selected_num_rows']} rows")
        client.rpc(comm, "set_row_filters", {"filters": []}, timeout_s=TIMEOUT_S)
        positron_note(r, "filter", lib)
        return {"filter_ms": [elapsed]}

    return run


def profiles_round(lib: str) -> Callable[[Round], Samples]:
    def run(r: Round) -> Samples:
        live, comm = explorer(r, lib)
        client = live.client
        callback = f"cb-{r.index}-{time.perf_counter_ns()}"
        got: list[Any] = []

        def watch(m: Received) -> None:
            params = profiles_of(m, comm, callback)
            if params is not None:
                got.append(params)

        request = all_profiles_request(callback)
        with client.watch(watch):
            t0 = time.perf_counter_ns()
            reply = client.comm_request(comm, "get_column_profiles", request, timeout_s=TIMEOUT_S)
            reply_ms = (reply.at_ns - t0) / 1e6
            if not got:
                client.wait_iopub(lambda _: bool(got), timeout_s=TIMEOUT_S, what="profiles")
            elapsed = (time.perf_counter_ns() - t0) / 1e6
        profiles = got[0]["profiles"]
        if len(profiles) != NUM_COLUMNS or "error_message" in got[0]:
            r.problem(f"profiles: {got[0].get('error_message')}")
        positron_note(r, "profiles", lib)
        return {"profiles_ms": [elapsed], "reply_ms": [reply_ms]}

    return run


def pass_behind_sort_round(lib: str) -> Callable[[Round], Samples]:
    def run(r: Round) -> Samples:
        live, comm = explorer(r, lib)
        client = live.client
        client.rpc(comm, "set_row_filters", {"filters": []}, timeout_s=TIMEOUT_S)
        sort = client.prepare_comm_request(comm, "set_sort_columns", {"sort_keys": sort_keys(r)})
        sort_idle: list[int] = []

        def watch(m: Received) -> None:
            if m.parent_id == sort.msg_id and m.is_status("idle"):
                sort_idle.append(m.at_ns)

        with client.watch(watch):
            client.send_prepared("shell", sort)
            ex = client.execute("pass", timeout_s=TIMEOUT_S)
            if not sort_idle:
                client.wait_iopub(lambda _: bool(sort_idle), timeout_s=TIMEOUT_S, what="sort")
        if sort_idle[0] < ex.idle_ns:
            r.note("a sort finished before the `pass` (the figure then means little)")
        client.rpc(comm, "set_sort_columns", {"sort_keys": []}, timeout_s=TIMEOUT_S)
        positron_note(r, "pass_behind_sort", lib)
        return {"pass_ms": [ex.to_idle_ns / 1e6], "sort_ms": [(sort_idle[0] - ex.sent_ns) / 1e6]}

    return run


def scenarios(lib: str) -> list[Scenario]:
    def one(
        what: str,
        title: str,
        run: Callable[[Round], Samples],
        figures: tuple[Figure, ...],
        **kw: Any,
    ) -> Scenario:
        counts = {"rounds": 5, "warmup": 1, "quick_rounds": 1, "quick_warmup": 0, **kw}
        return Scenario(
            f"de_{what}_{lib}", f"{title} ({lib}, 10M x 10)", run, figures=figures,
            sides=explorer_only, **counts,
        )  # fmt: skip

    def fig(label: str, series: str, stat: str = "p50", limit: float | None = None) -> Figure:
        target = Target("<", limit, on_ratio=False) if limit is not None else None
        return Figure(label, series, stat, target=target, ratio=False)

    return [
        one("view", "view -> state, schema, first page", view_round(lib),
            (fig("view -> first page, p50 (ms)", "view_ms", limit=1000.0),
             fig("view -> first page, max (ms)", "view_ms", "max")), rounds=3),
        one("page", "next page, 100 x 10", page_round(lib),
            (fig("next page, p50 (ms)", "page_ms", limit=50.0),
             fig("next page, p99 (ms)", "page_ms", "p99")), size=50, quick_size=5),
        one("sort", "sort by a float column + first page", sort_round(lib),
            (fig("sort + first page, p50 (ms)", "sort_ms",
                 limit=float(POSITRON_MS[("sort", lib)])),)),
        one("filter", "between filter + first page", filter_round(lib),
            (fig("between + first page, p50 (ms)", "filter_ms",
                 limit=float(POSITRON_MS[("filter", lib)])),)),
        one("profiles", "null_count + summary_stats, all columns", profiles_round(lib),
            (fig("profiles -> event, p50 (ms)", "profiles_ms",
                 limit=0.5 * POSITRON_MS[("profiles", lib)]),
             fig("profiles request -> its reply, p50 (ms)", "reply_ms")), rounds=3),
        one("pass_behind_sort", "`pass` sent right behind a sort", pass_behind_sort_round(lib),
            (fig("`pass` behind a sort, p50 (ms)", "pass_ms", limit=50.0),
             fig("`pass` behind a sort, max (ms)", "pass_ms", "max"),
             fig("that sort, send -> idle, p50 (ms)", "sort_ms"))),
    ]  # fmt: skip


SCENARIOS = [*scenarios("pandas"), *scenarios("polars")]
