"""What the Positron panes cost on BIG frames: memory, the console's wait, the panes' news.

The frame has the shape users have: ten columns, f0..f3 float64 (f1 with ~10 %
NaN; missing values in polars), i0 and i1 int64, s0 (1,000 distinct short strings) and s1
(100,000 distinct strings), d0 datetime64[us] (~5 % NaT) and d1 datetime64[ns], built with
`numpy.random.default_rng(0)`. In pandas it is `big` (pandas 3 makes the strings its
Arrow-backed "str", pandas 2 object columns: whatever the kernel's environment has); in
polars it is `pbig`. Its own size is computed in the kernel (pandas:
`memory_usage(deep=True).sum()`, polars: `estimated_size()`) and reported. Each frame is
built once per kernel (untimed) and kept for every round.

Scenarios, `bigframes_<lib>_<size>` for pandas and polars at 10M (3 rounds) and 30M rows
(2 rounds; under `--quick` only when named, as they would repeat the 10M ones), no warm-up.
Side A is side A's kernelspec (mpkernel, built-in defaults) where the panes get opened; side
B the same kernelspec and defaults in a kernel of its own where no pane is ever opened.
Round 0 is the kernel's first open of each pane; each later round opens them again after
the round before closed both, on top of whatever the kernel kept (what a user who closes
and reopens the panes gets). The memory figures with a target are the first open's; every
round's are given as min / median / max beside them. A round on A:

1. memory, settled, with no pane open; then a `positron.variables` comm opened, waited for
   until its `refresh`/`update` lists the frame as a table (not the "being copied"
   placeholder); memory settled again: **opening the variables pane adds** (also: open ->
   listed, ms);
2. the pane's `view` RPC on the frame (`mpkernel.view(...)` in a cell when the pane cannot)
   -> the explorer's comm_open -> `get_state` -> `get_schema` -> `get_data_values` (100
   rows x 10 columns): **view -> first page**; `set_sort_columns` on f1 + the first page
   (checked sorted): **sort + first page**; `get_column_profiles` (null_count and
   summary_stats, all ten columns) until its `return_column_profiles` event: **all-column
   profiles**; memory settled: **an open explorer adds (settled)**, against before the view;
3. `set_sort_columns` sent and `pass` at once behind it: the `pass`'s send -> idle,
   **pass behind a sort**;
4. three in-place edits, `big.loc[k, "f0"] = v` (`pbig[k, "f0"] = v`; k and v new each
   time) with both panes open, each paired with the same kind of edit on side B's kernel
   (alternately first and second): send -> idle on each (**in-place edit: extra console
   time with both panes open** is A - B of each pair); send -> the pane's `update` listing
   the frame in `assigned` (**edit -> the pane's update**) and -> the explorer's
   `data_update` or `schema_update` (**edit -> the explorer's data_update**);
5. both comms closed, memory settled: what the kernel still holds against step 1's start.

A step that fails (a worker killed, a request never answered: each wait may take 20 s + 6 s
per million rows) is a FAIL of side A (exit status 1), named with the request and the end
of the kernel's log; the round goes on with the steps that do not need it, and the figures
measured are still reported.

A round on B does its three edits (the B column of "send -> idle"; A/B is that ratio).

Memory, two ways, as deltas between settled readings (read every second, every 0.25 s under
`--quick`, until two readings differ by less than 8 MiB, at most 30 s):

- the machine's MemAvailable (/proc/meminfo; counts tmpfs, so the shared-memory segments;
  anything else running on the machine moves it too);
- the kernel's own, "PSS + shm": the PSS of the kernel and all its descendants (forkserver,
  workers) plus the allocated size of the kernel's shared-memory files (its
  `/dev/shm/mpkernel-<uid>-<pid>/` directory, and files unlinked from it that a process of
  the tree still maps or holds open; hard links counted once), the mappings of those files
  left out of the PSS so that they count once. PSS rather than USS: a page that two
  processes of the tree share (the forkserver's modules; the kernel's frame in an explorer
  forked from the kernel) is in neither one's USS, so a sum of USS loses it (it made an
  explorer forked from the kernel look like it freed 600 MiB), while PSS counts it once.

Each is given in MiB and as % of the frame; the target lines take the budget, 5 %
(pane) or 15 % (explorer) of the frame + 64 MiB, as (delta - 64 MiB) in % of the frame.

`bigframes_huge` (side A only): 100M rows of the pandas frame (about 9 GB; building it takes
about twice that for a moment, and in the 10M runs the pane and the explorer each held about
one frame more: the machine needs room for three to four frames), the pane and an explorer
opened, sort, a `between` row filter on f0 (+ first page), profiles, `pass` behind a sort,
one edit, and whether the kernel is alive at the end. It is declared only when the
command line names it (`tools/bench.py bigframes_huge`) or lists the scenarios (`--list`):
a run of the group, or of everything, leaves it out.

Run it (kernelspec `mpkernel` installed, see tools/bench.py):

    .venv/bin/python tools/bench.py bigframes                 # 10M and 30M, pandas and polars
    .venv/bin/python tools/bench.py bigframes_pandas_10m bigframes_polars_10m
    .venv/bin/python tools/bench.py bigframes --quick         # the 10M ones at 100,000 rows
    .venv/bin/python tools/bench.py bigframes_huge            # 100M rows, alone

Targets (docs/benchmarks.md): pane <= 5 % of the frame + 64 MiB; explorer <= 15 % + 64 MiB;
extra console time of an edit <= 20 ms; edit -> update <= 100 ms; view -> first page
<= 100 ms (aim 40); edit -> data_update <= 250 ms; sort + first page <= 2,152 ms (pandas) /
1,032 ms (polars); profiles <= 13,137 / 772 ms; `pass` behind a sort < 50 ms.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
from _benchclient import Client, Received
from _benchdriver import Figure, Live, Round, Samples, Scenario, Target
from _benchkernels import BenchError, Contender, KernelProcess
from bench_data_explorer import FORMAT, all_profiles_request, profiles_of

VARIABLES = "positron.variables"
EXPLORER = "positron.dataExplorer"
QUICK_ROWS = 100_000
HUGE = "bigframes_huge"
MIB = 1 << 20
# The memory budget: a share of the frame + this much.
BUDGET_BASE = 64 * MIB
SETTLE_STEP_S = 1.0
QUICK_SETTLE_STEP_S = 0.25  # --quick: a smoke run, its memory figures mean little anyway
SETTLE_BAND = 8 * MIB
SETTLE_MAX_S = 30.0
EDITS = 3  # per round and side
PAGE = 100
NUM_COLUMNS = 10
SORT_COLUMN = 1  # f1, the one with missing values
FILTER_COLUMN = 0  # f0
NAMES = {"pandas": "big", "polars": "pbig"}
# Latency targets, ms.
SORT_TARGET_MS = {"pandas": 2152.0, "polars": 1032.0}
PROFILES_TARGET_MS = {"pandas": 13137.0, "polars": 772.0}

_values = itertools.count()


# --------------------------------------------------------------------------- sides


def config_text(tag: str, panes: bool) -> str:
    """An mpkernel configuration of comments only (the built-in defaults; no user file is
    read), different per scenario and side so that each has kernels of its own."""
    return f"# bigframes {tag}: {'the panes get opened' if panes else 'no pane'}\n"


def twin(a: Contender, tag: str) -> Contender:
    """Side B of the scenario `tag`, seen from its side A (same key: the same kernel)."""
    base = a.label.rsplit("/", 1)[0]
    return Contender(f"{base}/no-pane", a.kernel_name, config=config_text(tag, panes=False))


def sides_of(tag: str) -> Callable[[Contender, Contender], tuple[Contender, ...]]:
    def sides(a: Contender, b: Contender) -> tuple[Contender, ...]:
        """A: the panes get opened; B: the same kernelspec and defaults, no pane."""
        panes = Contender(f"{a.label}/panes", a.kernel_name, config=config_text(tag, panes=True))
        return (panes, twin(panes, tag))

    return sides


def huge_side(a: Contender, b: Contender) -> tuple[Contender, ...]:
    return (Contender(f"{a.label}/panes", a.kernel_name, config=config_text("huge", True)),)


def declared(name: str, *, quick_too: bool) -> bool:
    """Whether to declare a scenario that runs only when the command line names it (not
    only its group, or everything): `bigframes_huge` always, the 30M ones under `--quick`
    (at the quick size they would repeat the 10M ones). `--list` lists them all."""
    args = sys.argv[1:]
    if name in args or "--list" in args:
        return True
    return quick_too and "--quick" not in args


# --------------------------------------------------------------------------- the frame


def setup_cell(lib: str, rows: int) -> str:
    """Build the frame (`big` or `pbig`), drop the temporaries, print the frame's size."""
    name = NAMES[lib]
    cell = (
        "import mpkernel\n"
        "import numpy as np\n"
        f"_n = {rows}\n"
        "_rng = np.random.default_rng(0)\n"
        "_f1 = _rng.random(_n)\n"
        "_f1[_rng.random(_n) < 0.1] = np.nan\n"
        "_d0 = np.datetime64('2015-01-01T00:00:00', 'us') + _rng.integers(\n"
        "    0, 10 * 365 * 86_400 * 10**6, _n\n"
        ").astype('timedelta64[us]')\n"
        "_d0[_rng.random(_n) < 0.05] = np.datetime64('NaT')\n"
        "_d1 = np.datetime64('2024-01-01', 'ns') + _rng.integers(\n"
        "    0, 30 * 86_400 * 10**9, _n\n"
        ").astype('timedelta64[ns]')\n"
        "_v0 = [f'k{_i:03d}' for _i in range(1_000)]\n"
        "_v1 = [f'name-{_i:06d}' for _i in range(100_000)]\n"
        "_cols = {\n"
        "    'f0': _rng.random(_n), 'f1': _f1, 'f2': _rng.normal(size=_n),\n"
        "    'f3': _rng.random(_n) * 1000.0,\n"
        "    'i0': _rng.integers(0, 1_000_000, _n), 'i1': _rng.integers(-2**40, 2**40, _n),\n"
        "}\n"
    )
    if lib == "pandas":
        cell += (
            "import pandas as pd\n"
            "_cols['s0'] = np.array(_v0, dtype=object)[_rng.integers(0, 1_000, _n)]\n"
            "_cols['s1'] = np.array(_v1, dtype=object)[_rng.integers(0, 100_000, _n)]\n"
            "_cols['d0'], _cols['d1'] = _d0, _d1\n"
            f"{name} = pd.DataFrame(_cols)\n"
            "del _cols, _f1, _d0, _d1, _v0, _v1, _rng, _n\n"
            f"print(int({name}.memory_usage(deep=True).sum()))\n"
        )
    else:
        cell += (
            "import polars as pl\n"
            "_cols['s0'] = pl.Series(_v0).gather(_rng.integers(0, 1_000, _n))\n"
            "_cols['s1'] = pl.Series(_v1).gather(_rng.integers(0, 100_000, _n))\n"
            "_cols['d0'], _cols['d1'] = _d0, _d1\n"
            f"{name} = pl.DataFrame(_cols).with_columns(pl.col('f1').fill_nan(None))\n"
            "del _cols, _f1, _d0, _d1, _v0, _v1, _rng, _n\n"
            f"print(int({name}.estimated_size()))\n"
        )
    return cell


def ensure_frame(r: Round, live: Live, lib: str, rows: int, timeout_s: float) -> int:
    """The kernel of `live` holds the frame (built on first use); its size in bytes."""
    key = f"bigframes:{lib}:{rows}"
    if key not in live.state:
        out: list[str] = []

        def on_iopub(got: Received) -> None:
            if got.msg_type == "stream" and got.content.get("name") == "stdout":
                out.append(str(got.content.get("text", "")))

        t0 = time.perf_counter()
        live.client.execute(setup_cell(lib, rows), timeout_s=timeout_s, on_iopub=on_iopub)
        try:
            size = int("".join(out).split()[-1])
        except (IndexError, ValueError):
            raise BenchError(f"the frame's size did not come back: {''.join(out)!r}") from None
        live.state[key] = size
        r.say(
            f"{lib} frame of {rows:,} rows, {size / MIB:,.0f} MiB, built in "
            f"{time.perf_counter() - t0:.1f} s ({live.kernel.label})"
        )
    size = live.state[key]
    assert isinstance(size, int)
    return size


def edit_code(lib: str, rows: int) -> str:
    """An in-place edit of one cell of f0, a new row and value each time."""
    n = next(_values)
    k = (n * 104_729 + 12_345) % rows
    value = float(n) + 0.5
    if lib == "pandas":
        return f"big.loc[{k}, 'f0'] = {value!r}"
    return f"pbig[{k}, 'f0'] = {value!r}"


# --------------------------------------------------------------------------- memory


def mem_available() -> int:
    """The machine's MemAvailable, bytes."""
    with Path("/proc/meminfo").open() as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise BenchError("no MemAvailable in /proc/meminfo")


def settle(r: Round) -> int:
    """MemAvailable once two readings a second apart differ by less than SETTLE_BAND (at
    most SETTLE_MAX_S); the last reading."""
    began = time.monotonic()
    last = mem_available()
    step = QUICK_SETTLE_STEP_S if r.run.quick else SETTLE_STEP_S
    while True:
        time.sleep(step)  # polling the machine's memory, not waiting for a message
        now = mem_available()
        if abs(now - last) < SETTLE_BAND:
            return now
        if time.monotonic() - began > SETTLE_MAX_S:
            r.note(f"memory did not settle within {SETTLE_MAX_S:g} s (the delta may mean little)")
            return now
        last = now


def shm_dir(kernel: KernelProcess) -> Path:
    """Where the kernel keeps its shared-memory segments (mpkernel.snapshots.segments)."""
    from mpkernel.snapshots.segments import segment_root

    return segment_root() / f"mpkernel-{os.getuid()}-{kernel.pid}"


def tree_bytes(kernel: KernelProcess) -> int:
    """PSS of the kernel and its descendants, its segment-file mappings left out, + the
    allocated size of the kernel's segment files (in its directory, or unlinked and still
    held by a process of the tree), each inode once.

    PSS, not USS: a page two processes of the tree share (the forkserver's modules, or the
    kernel's frame in a worker forked from the kernel) is in neither one's USS, so a sum of
    USS would lose it; PSS counts it once over the tree. Segment pages are counted as the
    files they belong to, whoever maps them (pages a mapping copied on write stay in)."""
    prefix = str(shm_dir(kernel)) + "/"
    files: dict[tuple[int, int], int] = {}
    pss = 0
    for proc in kernel.processes():
        with contextlib.suppress(psutil.Error):
            for m in proc.memory_maps(grouped=True):
                pss += m.anonymous if m.path.startswith(prefix) else m.pss
        for kind in ("fd", "map_files"):
            with contextlib.suppress(OSError):
                for entry in os.scandir(f"/proc/{proc.pid}/{kind}"):
                    with contextlib.suppress(OSError):
                        link = Path(entry.path)
                        if str(link.readlink()).startswith(prefix):
                            st = link.stat()
                            files[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    with contextlib.suppress(OSError):
        for root, _, names in os.walk(prefix):
            for fname in names:
                with contextlib.suppress(OSError):
                    st = (Path(root) / fname).lstat()
                    files[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    return pss + sum(files.values())


def memory(r: Round, kernel: KernelProcess) -> tuple[int, int]:
    """(MemAvailable, the tree's bytes), settled."""
    avail = settle(r)
    return avail, tree_bytes(kernel)


def memory_samples(
    key: str, before: tuple[int, int], after: tuple[int, int], frame: int, *, first: bool
) -> Samples:
    """The deltas in MiB (`<key>_<how>_mib`, every round) and, on the kernel's first open,
    also as % of the frame and beyond the budget's 64 MiB in % of the frame
    (`<key>_first_<how>_...`). `how`: `avail` (MemAvailable) or `tree` (PSS + shm)."""
    added_avail = before[0] - after[0]  # MemAvailable falls as memory is taken
    added_tree = after[1] - before[1]
    out: Samples = {}
    for how, added in (("avail", added_avail), ("tree", added_tree)):
        out[f"{key}_{how}_mib"] = [added / MIB]
        if first:
            out[f"{key}_first_{how}_mib"] = [added / MIB]
            out[f"{key}_first_{how}_pct"] = [100.0 * added / frame]
            out[f"{key}_first_{how}_over_pct"] = [100.0 * (added - BUDGET_BASE) / frame]
    return out


def added_text(out: Samples, key: str) -> str:
    avail, tree = out[f"{key}_avail_mib"][-1], out[f"{key}_tree_mib"][-1]
    return f"{avail:,.0f} MiB (MemAvailable), {tree:,.0f} MiB (PSS + shm)"


def merge(into: Samples, more: Samples) -> None:
    for k, v in more.items():
        into.setdefault(k, []).extend(v)


# --------------------------------------------------------------------------- the panes


def access_key(name: str) -> str:
    return json.dumps({"type": "str", "data": name}, separators=(",", ":"))


class Panes:
    """The comms of one kernel's round: the pane and the explorer, and any close of them
    by the kernel (a crashed worker), which ends a wait at once."""

    def __init__(self, r: Round, live: Live, lib: str, timeout_s: float) -> None:
        self.r = r
        self.live = live
        self.client: Client = live.client
        self.name = NAMES[lib]
        self.timeout_s = timeout_s
        self.pane: str | None = None
        self.explorer: str | None = None
        self.closed: dict[str, Any] = {}
        self.opened: list[str] = []  # explorer comm_opens seen

    def observe(self, got: Received) -> None:
        c = got.content
        if got.msg_type == "comm_close":
            self.closed[str(c.get("comm_id"))] = c.get("data")
        elif got.msg_type == "comm_open" and c.get("target_name") == EXPLORER:
            self.opened.append(str(c.get("comm_id")))

    def check(self) -> None:
        """BenchError if the kernel closed the pane or the explorer; that comm is then
        forgotten, so that the next steps go on without it."""
        for attr in ("pane", "explorer"):
            comm = getattr(self, attr)
            if comm is not None and comm in self.closed:
                setattr(self, attr, None)
                raise BenchError(f"the kernel closed the {attr} {comm}: {self.closed[comm]}")

    def wait(self, until: Callable[[], bool], what: str) -> None:
        """Read IOPub until `until()` (checked first), failing at once on a closed comm."""
        self.check()
        if until():
            return

        def done(_: Received) -> bool:
            self.check()
            return until()

        self.client.wait_iopub(done, timeout_s=self.timeout_s, what=what)

    def listed_as_table(self, got: Received, comm: str | None) -> bool:
        """A `refresh`/`update` on the pane naming the frame as a table (not a placeholder)."""
        if got.msg_type != "comm_msg" or comm is None or got.content.get("comm_id") != comm:
            return False
        data = got.content.get("data")
        if not isinstance(data, dict) or data.get("method") not in ("refresh", "update"):
            return False
        params = data.get("params", {})
        listed = params.get("variables", []) + params.get("assigned", [])
        return any(v.get("display_name") == self.name and v.get("has_viewer") for v in listed)

    def open_pane(self) -> float:
        """Open the variables pane; ms from the send until it lists the frame."""
        seen: list[Received] = []

        def watch(got: Received) -> None:
            if got.msg_type == "comm_msg":
                seen.append(got)

        t0 = time.perf_counter_ns()
        with self.client.watch(watch):
            self.pane = self.client.comm_open(VARIABLES, timeout_s=self.timeout_s)
            listed = [g.at_ns for g in seen if self.listed_as_table(g, self.pane)]
            if not listed:
                self.wait(
                    lambda: any(self.listed_as_table(g, self.pane) for g in seen),
                    f"the pane to list {self.name}",
                )
                listed = [g.at_ns for g in seen if self.listed_as_table(g, self.pane)]
        return (listed[0] - t0) / 1e6

    def open_explorer(self) -> float:
        """The pane's `view` -> comm_open -> state, schema, first page; ms for all of it."""
        client = self.client
        pane = self.pane
        if pane is None:
            raise BenchError("no pane to view from")
        self.opened.clear()
        t0 = time.perf_counter_ns()
        with doing("the pane's view"):
            answer = client.comm_request(
                pane, "view", {"path": [access_key(self.name)]}, timeout_s=self.timeout_s
            )
        if not (isinstance(answer.data, dict) and "result" in answer.data):
            self.r.note(f"the pane's view answered {answer.data!r}: opened by mpkernel.view")
            code = f"mpkernel.view({self.name}, {self.name!r})"
            with doing(code):
                client.execute(code, timeout_s=self.timeout_s)
        self.wait(lambda: bool(self.opened), "the explorer's comm_open")
        comm = self.explorer = self.opened[0]
        with doing("get_state"):
            state = client.rpc(comm, "get_state", {}, timeout_s=self.timeout_s)
        with doing("get_schema"):
            columns = {"column_indices": list(range(NUM_COLUMNS))}
            client.rpc(comm, "get_schema", columns, timeout_s=self.timeout_s)
        with doing("get_data_values"):
            page = self.first_page()
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        if state["table_shape"]["num_rows"] != self.r.size or len(page[0]) != PAGE:
            self.r.problem(f"explorer state {state['table_shape']}, page of {len(page[0])} rows")
        return elapsed

    def first_page(self) -> Any:
        if self.explorer is None:
            raise BenchError("no explorer open")
        columns = [
            {"column_index": i, "spec": {"first_index": 0, "last_index": PAGE - 1}}
            for i in range(NUM_COLUMNS)
        ]
        result = self.client.rpc(
            self.explorer,
            "get_data_values",
            {"columns": columns, "format_options": FORMAT},
            timeout_s=self.timeout_s,
        )
        return result["columns"]

    def explorer_rpc(self, method: str, params: dict[str, Any]) -> Any:
        if self.explorer is None:
            raise BenchError("no explorer open")
        return self.client.rpc(self.explorer, method, params, timeout_s=self.timeout_s)

    def sort(self, ascending: bool) -> float:
        """set_sort_columns on f1 + the first page (checked sorted); ms."""
        keys = [{"column_index": SORT_COLUMN, "ascending": ascending}]
        t0 = time.perf_counter_ns()
        with doing("set_sort_columns"):
            self.explorer_rpc("set_sort_columns", {"sort_keys": keys})
        with doing("get_data_values"):
            page = self.first_page()
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        values = [float(v.replace(",", "")) for v in page[SORT_COLUMN] if isinstance(v, str)]
        if values != sorted(values, reverse=not ascending) or not values:
            self.r.problem("the first page after the sort is not sorted")
        return elapsed

    def between(self) -> float:
        """A `between` filter on f0 (about half the rows pass) + the first page; ms."""
        schema = self.explorer_rpc("get_schema", {"column_indices": [FILTER_COLUMN]})
        between = {
            "filter_id": "between-f0",
            "filter_type": "between",
            "column_schema": schema["columns"][0],
            "condition": "and",
            "params": {"left_value": "0.25", "right_value": "0.75"},
        }
        t0 = time.perf_counter_ns()
        result = self.explorer_rpc("set_row_filters", {"filters": [between]})
        page = self.first_page()
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        kept = result.get("selected_num_rows", -1)
        if not 0.45 * self.r.size < kept < 0.55 * self.r.size or len(page[0]) != PAGE:
            self.r.problem(f"the between filter kept {kept} rows")
        self.explorer_rpc("set_row_filters", {"filters": []})
        return elapsed

    def profiles(self) -> float:
        """null_count + summary_stats of all columns: request -> return_column_profiles; ms."""
        comm = self.explorer
        if comm is None:
            raise BenchError("no explorer open")
        callback = f"bigframes-{time.perf_counter_ns()}"
        got: list[dict[str, Any]] = []

        def watch(m: Received) -> None:
            params = profiles_of(m, comm, callback)
            if params is not None:
                got.append(params)

        request = all_profiles_request(callback)
        with self.client.watch(watch):
            t0 = time.perf_counter_ns()
            self.client.comm_request(comm, "get_column_profiles", request, timeout_s=self.timeout_s)
            self.wait(lambda: bool(got), "the column profiles")
            elapsed = (time.perf_counter_ns() - t0) / 1e6
        if len(got[0].get("profiles", [])) != NUM_COLUMNS or "error_message" in got[0]:
            self.r.problem(f"profiles: {got[0].get('error_message', got[0])}")
        return elapsed

    def pass_behind_sort(self, ascending: bool) -> float:
        """set_sort_columns sent, `pass` right behind it: the pass's send -> idle, ms."""
        comm = self.explorer
        if comm is None:
            raise BenchError("no explorer open")
        keys = [{"column_index": SORT_COLUMN, "ascending": ascending}]
        sort = self.client.prepare_comm_request(comm, "set_sort_columns", {"sort_keys": keys})
        sort_idle: list[int] = []

        def watch(m: Received) -> None:
            if m.parent_id == sort.msg_id and m.is_status("idle"):
                sort_idle.append(m.at_ns)

        with self.client.watch(watch):
            self.client.send_prepared("shell", sort)
            ex = self.client.execute("pass", timeout_s=self.timeout_s)
            self.wait(lambda: bool(sort_idle), "the sort's idle")
        if sort_idle[0] < ex.idle_ns:
            self.r.note("a sort finished before the `pass` behind it (that figure means little)")
        return ex.to_idle_ns / 1e6

    def edit(self, code: str) -> tuple[float, float, float]:
        """The edit cell: (send -> idle, -> the pane's update, -> the explorer's news), ms."""
        update: list[int] = []
        news: list[int] = []

        def watch(m: Received) -> None:
            if m.msg_type != "comm_msg":
                return
            data = m.content.get("data")
            if not isinstance(data, dict):
                return
            comm = m.content.get("comm_id")
            method = data.get("method")
            if comm == self.pane and method == "update" and not update:
                assigned = data.get("params", {}).get("assigned", [])
                if any(v.get("display_name") == self.name for v in assigned):
                    update.append(m.at_ns)
            elif comm == self.explorer and method in ("data_update", "schema_update"):
                news.append(m.at_ns)

        explorer = self.explorer is not None
        with self.client.watch(watch):
            ex = self.client.execute(code, timeout_s=self.timeout_s)
            self.wait(
                lambda: bool(update) and (bool(news) or not explorer), "the panes' news of the edit"
            )
        return (
            ex.to_idle_ns / 1e6,
            (update[0] - ex.sent_ns) / 1e6,
            (news[0] - ex.sent_ns) / 1e6 if news else math.nan,
        )

    def close(self) -> None:
        for attr in ("explorer", "pane"):
            comm = getattr(self, attr)
            if comm is not None and comm not in self.closed:
                self.client.comm_close(comm, timeout_s=self.timeout_s)
            setattr(self, attr, None)


@contextlib.contextmanager
def panes(r: Round, live: Live, lib: str, timeout_s: float) -> Iterator[Panes]:
    p = Panes(r, live, lib, timeout_s)
    with live.client.watch(p.observe):
        yield p


# --------------------------------------------------------------------------- rounds


class Steps:
    """The steps of a round: a step that fails (a crashed worker, a request that never
    completes) is a problem of the round, named with the end of the kernel's log, and the
    round goes on with the steps that do not need it, so that whatever can still be
    measured is, and whether the kernel lived through it is reported."""

    def __init__(self, r: Round, kernel: KernelProcess) -> None:
        self.r = r
        self.kernel = kernel
        self.failed: list[str] = []

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        try:
            yield
        except BenchError as exc:
            text = str(exc)
            if "--- kernel log" not in text:  # the driver adds it only for a dead kernel
                text += f"\n--- kernel log (tail) ---\n{self.kernel.log_tail(12)}"
            self.failed.append(what)
            self.r.problem(f"{what}: {text}")
            self.r.say(f"{what} failed: {text.splitlines()[0]}")


@contextlib.contextmanager
def doing(what: str) -> Iterator[None]:
    """Name the request a BenchError came from."""
    try:
        yield
    except BenchError as exc:
        raise BenchError(f"{what}: {exc}") from exc


def timeout_for(rows: int) -> float:
    """Seconds any one wait may take: 20 s + 6 s per million rows."""
    return 20.0 + 6.0 * rows / 1e6


def round_a(lib: str, tag: str, *, huge: bool = False) -> Callable[[Round], Samples]:
    """One round on the side where the panes get opened (see the module docstring)."""

    def run(r: Round) -> Samples:
        timeout_s = timeout_for(r.size)
        live = r.live()
        step = Steps(r, live.kernel)
        out: Samples = {}
        with step("building the frame"):
            frame = ensure_frame(r, live, lib, r.size, timeout_s)
            out["frame_mib"] = [frame / MIB]
        partner = None
        if not huge:  # side B's kernel and frame, for the paired edits (before any baseline)
            partner = r.run.live(twin(r.contender, tag))
            with step("building side B's frame"):
                ensure_frame(r, partner, lib, r.size, timeout_s)
        if step.failed:
            return finish(r, live, out, timeout_s)
        # The kernel's first open of the panes (round 0; later rounds re-open them after
        # closing both, on top of whatever the kernel kept).
        first = "bigframes:opened" not in live.state
        live.state["bigframes:opened"] = True
        with panes(r, live, lib, timeout_s) as p:
            start = with_pane = memory(r, live.kernel)
            with step("opening the variables pane"):
                out["listed_ms"] = [p.open_pane()]
                with_pane = memory(r, live.kernel)
                merge(out, memory_samples("pane", start, with_pane, frame, first=first))
                r.say(f"the pane adds {added_text(out, 'pane')}")
            if p.pane is not None and not step.failed:
                with step("view -> first page"):
                    out["view_ms"] = [p.open_explorer()]
            if p.explorer is not None:
                with step("sort + first page"):
                    out["sort_ms"] = [p.sort(ascending=True)]
                if huge:
                    with step("between filter + first page"):
                        out["filter_ms"] = [p.between()]
                with step("all-column profiles"):
                    out["profiles_ms"] = [p.profiles()]
                with step("the explorer's memory"):
                    with_explorer = memory(r, live.kernel)
                    merge(
                        out,
                        memory_samples("explorer", with_pane, with_explorer, frame, first=first),
                    )
                    r.say(f"the explorer adds {added_text(out, 'explorer')}")
                with step("pass behind a sort"):
                    out["pass_ms"] = [p.pass_behind_sort(ascending=False)]
            for j in range(1 if huge else EDITS):
                if p.pane is None:  # the pane's worker is gone: no update to wait for
                    break
                with step("the in-place edit"):
                    b_ms = math.nan
                    if partner is not None and j % 2 == 0:
                        b_ms = edit_on(partner, lib, r.size, timeout_s)
                    idle_ms, update_ms, news_ms = p.edit(edit_code(lib, r.size))
                    if partner is not None and j % 2 == 1:
                        b_ms = edit_on(partner, lib, r.size, timeout_s)
                    merge(out, {"edit_ms": [idle_ms], "update_ms": [update_ms]})
                    if not math.isnan(news_ms):
                        merge(out, {"data_update_ms": [news_ms]})
                    if not math.isnan(b_ms):
                        merge(out, {"edit_extra_ms": [idle_ms - b_ms]})
            with step("closing the comms"):
                p.close()
        end = memory(r, live.kernel)
        kept = memory_samples("kept", start, end, frame, first=False)
        out["kept_avail_mib"] = kept["kept_avail_mib"]
        out["kept_tree_mib"] = kept["kept_tree_mib"]
        return finish(r, live, out, timeout_s)

    return run


def edit_on(live: Live, lib: str, rows: int, timeout_s: float) -> float:
    """The edit on a kernel with no pane: send -> idle, ms."""
    return live.client.execute(edit_code(lib, rows), timeout_s=timeout_s).to_idle_ns / 1e6


def finish(r: Round, live: Live, out: Samples, timeout_s: float) -> Samples:
    """Whether the kernel is alive (and answers) at the end of the round."""
    alive = live.kernel.is_alive()
    if alive:
        try:
            live.client.execute("pass", timeout_s=timeout_s)
        except BenchError as exc:
            r.problem(f"the kernel runs but does not answer: {exc}")
            alive = False
    else:
        r.problem(f"the kernel died (exit status {live.kernel.exit_status()})")
    out["alive"] = [1.0 if alive else 0.0]
    return out


def round_b(lib: str) -> Callable[[Round], Samples]:
    """One round on the side with no pane: the same edits, send -> idle."""

    def run(r: Round) -> Samples:
        live = r.live()
        timeout_s = timeout_for(r.size)
        frame = ensure_frame(r, live, lib, r.size, timeout_s)
        times = [edit_on(live, lib, r.size, timeout_s) for _ in range(EDITS)]
        return {"frame_mib": [frame / MIB], "edit_ms": times}

    return run


def either(lib: str, tag: str) -> Callable[[Round], Samples]:
    a, b = round_a(lib, tag), round_b(lib)

    def run(r: Round) -> Samples:
        return b(r) if r.contender.label.endswith("/no-pane") else a(r)

    return run


# --------------------------------------------------------------------------- figures


def fig(label: str, series: str, stat: str = "p50", target: Target | None = None) -> Figure:
    return Figure(label, series, stat, target=target, ratio=False)


def spread(label: str, series: str, unit: str, target: Target | None = None) -> tuple[Figure, ...]:
    """min, median (with the target) and max of a series."""
    return (
        fig(f"{label}, min ({unit})", series, "min"),
        fig(f"{label}, median ({unit})", series, "p50", target),
        fig(f"{label}, max ({unit})", series, "max"),
    )


def at_most(limit: float, aim: float | None = None) -> Target:
    return Target("<=", limit, on_ratio=False, aim=aim)


def memory_figures(key: str, label: str, share: float) -> tuple[Figure, ...]:
    """The kernel's first open (MiB, % of the frame, the target), then every round's."""
    measures = (("avail", "MemAvailable"), ("tree", "PSS + shm"))
    out: list[Figure] = []
    for how, what in measures:
        out.append(fig(f"{label}, first open, {what} (MiB)", f"{key}_first_{how}_mib", "max"))
    for how, what in measures:
        out.append(fig(f"{label}, first open, {what}, % of the frame", f"{key}_first_{how}_pct"))
    for how, what in measures:
        out.append(
            fig(
                f"{label}, first open, {what}, beyond 64 MiB, % of the frame",
                f"{key}_first_{how}_over_pct",
                target=at_most(share),
            )
        )
    for how, what in measures:
        out += spread(f"{label}, every round, {what}", f"{key}_{how}_mib", "MiB")
    return tuple(out)


def figures(lib: str, *, huge: bool = False) -> tuple[Figure, ...]:
    out: list[Figure] = [fig("the frame, computed in the kernel (MiB)", "frame_mib", "max")]
    out += memory_figures("pane", "opening the variables pane adds", 5.0)
    out.append(fig("opening the pane -> it lists the frame, median (ms)", "listed_ms"))
    out += memory_figures("explorer", "an open explorer adds (settled)", 15.0)
    out += spread("view -> first page", "view_ms", "ms", at_most(100.0, aim=40.0))
    out += spread("sort + first page", "sort_ms", "ms", at_most(SORT_TARGET_MS[lib]))
    if huge:
        out += spread("between filter on f0 + first page", "filter_ms", "ms")
    out += spread("all-column profiles", "profiles_ms", "ms", at_most(PROFILES_TARGET_MS[lib]))
    out += spread("pass behind a sort", "pass_ms", "ms", Target("<", 50.0, on_ratio=False))
    if not huge:
        out.append(
            Figure("in-place edit send -> idle, median (ms); A/B", "edit_ms", "p50", spec=".1f")
        )
        out += spread(
            "in-place edit: extra console time with both panes open (A - B)",
            "edit_extra_ms",
            "ms",
            at_most(20.0),
        )
    else:
        out.append(fig("in-place edit send -> idle, median (ms)", "edit_ms"))
    out += spread("edit -> the pane's update", "update_ms", "ms", at_most(100.0))
    out += spread("edit -> the explorer's data_update", "data_update_ms", "ms", at_most(250.0))
    out.append(
        fig("both comms closed: still held, MemAvailable, max (MiB)", "kept_avail_mib", "max")
    )
    out.append(fig("both comms closed: still held, PSS + shm, max (MiB)", "kept_tree_mib", "max"))
    out.append(fig("the kernel alive at the end of every round (1 = yes)", "alive", "min"))
    return tuple(out)


def scenario(lib: str, rows: int, rounds: int) -> Scenario:
    tag = f"{lib}_{rows // 1_000_000}m"
    name = NAMES[lib]
    return Scenario(
        f"bigframes_{tag}",
        f"{lib} frame `{name}`, {{size:,}} rows x 10: the panes' memory, the console's wait, "
        "their news; A: the panes open, B: none",
        either(lib, tag),
        figures=figures(lib),
        rounds=rounds,
        size=rows,
        warmup=0,
        quick_rounds=1,
        quick_size=QUICK_ROWS,
        quick_warmup=0,
        sides=sides_of(tag),
    )


HUGE_SCENARIO = Scenario(
    HUGE,
    "pandas frame `big`, {size:,} rows x 10 (about 9 GB), panes open, sort, filter, "
    "profiles, an edit; the kernel alive at the end (selected by name only)",
    round_a("pandas", "huge", huge=True),
    figures=figures("pandas", huge=True),
    rounds=1,
    size=100_000_000,
    warmup=0,
    quick_rounds=1,
    quick_size=QUICK_ROWS,
    quick_warmup=0,
    sides=huge_side,
)

SCENARIOS = [
    scenario("pandas", 10_000_000, 3),
    scenario("polars", 10_000_000, 3),
    *(
        s
        for s in (scenario("pandas", 30_000_000, 2), scenario("polars", 30_000_000, 2))
        if declared(s.name, quick_too=True)
    ),
    *([HUGE_SCENARIO] if declared(HUGE, quick_too=False) else []),
]
