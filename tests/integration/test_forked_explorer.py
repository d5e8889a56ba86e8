"""The data explorer served by a copy-on-write fork of the kernel: the hazards of forking a
multithreaded process, each through a real kernel (jupyter_client, the test kernelspec) with
the default configuration of the data explorer (its real handler, the real variables worker).

A viewer's worker is the kernel's main thread forked (between executions, while the kernel
request `view` is served, or inside `mpkernel.view(obj)` in a cell); the child reads the
table's pages shared with the kernel, and after a cell that may have changed the variable a
fresh child takes the comm over (`data_update` / `schema_update`). What can go wrong in such a
child, and the test that would hang or fail if it did:

- polars' thread pool does not exist in a child of a process that used it: polars compute
  there hangs (`test_polars_used_in_the_kernel_before_the_viewer_opens`);
- user threads hold locks at the moment of the fork (their own, logging's, the output
  funnel's, the import system's) and buffered output that a child must not write again
  (`test_user_threads_holding_locks_during_the_fork`);
- debugpy is attached: its tracer and its patched `fork` (`test_debugger_attached`);
- SIGINT arrives during the fork, also at the children (the kernel's process group)
  (`test_interrupts_while_viewers_open`);
- the user mutates the table while the child sorts it
  (`test_mutation_while_a_sort_runs`);
- the memory limit must count what the child owns, not the pages it shares with the kernel
  (`test_memory_limit_counts_what_the_worker_owns`);
- a child must not outlive the kernel (`test_no_process_outlives_a_killed_kernel`).

Every wait is on a message with a deadline (a hang is a failure, not a stuck run); every
kernel is stopped and its process tree proven gone whatever the outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from mpkernel.client.control import Debugger
from tests.frontend import (
    PROCESS_EXIT_TIMEOUT,
    KernelHandle,
    claim,
    describe,
    frontend,
    kind,
    parent_id,
    process_tree,
    recv,
    stop_kernel,
    wait_gone,
)
from tests.integration.comm_client import (
    IOPubLog,
    Msg,
    call,
    close_comm,
    comm_id_of,
    configured_kernels,
    execute_ok,
    is_event,
    is_response_to,
    kernel_children,
    msg_type,
    open_comm,
    send_rpc,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

EXPLORER = "positron.dataExplorer"
VARIABLES = "positron.variables"
#: The default configuration of the data explorer, spelled out: its real handler, one
#: process per comm, the default memory limit; the variables worker is the real one.
CONFIG = """
[workers.data_explorer]
enabled = true
"""
#: Hang guard of one explorer request (they take milliseconds to a second here).
RPC_TIMEOUT = 30.0
#: Hang guard of a cell that builds or views a table.
CELL_TIMEOUT = 60.0
FORMAT = {
    "large_num_digits": 2,
    "small_num_digits": 4,
    "max_integral_digits": 7,
    "max_value_length": 1000,
    "thousands_sep": ",",
}
#: A permutation of 0..n-1 (7919 is prime and divides none of the sizes used): sorted, the
#: values are 0, 1, 2, ...; unsorted, the first is 12345. `PERMUTED.format(n=...)` in a cell.
MULTIPLIER, OFFSET = 7919, 12345
PERMUTED = f"(np.arange({{n}}) * {MULTIPLIER} + {OFFSET}) % {{n}}"


def row_of(value: int, n: int) -> int:
    """The row of the permuted column holding `value`."""
    return ((value - OFFSET) * pow(MULTIPLIER, -1, n)) % n


def thousands(value: int) -> str:
    return f"{value:,}"


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def kernel(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[KernelHandle]:
    """A kernel of its own with the default explorer configuration; always stopped."""
    with configured_kernels(request.node, tmp_path) as start:
        yield start(CONFIG)


class Explorer:
    """One `positron.dataExplorer` comm, as Positron uses it (requests without `id`)."""

    def __init__(self, log: IOPubLog, comm_id: str) -> None:
        self.log = log
        self.comm_id = comm_id

    def __repr__(self) -> str:
        return f"<explorer {self.comm_id}>"

    def result(self, method: str, params: Any = None, *, timeout: float = RPC_TIMEOUT) -> Any:
        """The request's result, within `timeout` (a hang fails here); an error fails."""
        try:
            done = call(self.log, self.comm_id, method, params, timeout=timeout)
        except AssertionError as exc:
            closes = self.closes()
            if not closes:
                raise
            raise AssertionError(f"{self!r} was closed: {describe(closes)}") from exc
        assert "result" in done.data, f"{method} on {self!r} failed: {done.data}"
        return done.data["result"]

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.result("get_state")
        return state

    def sort(self, column: int, *, ascending: bool) -> None:
        keys = {"sort_keys": [{"column_index": column, "ascending": ascending}]}
        assert self.result("set_sort_columns", keys) is None

    def values(self, column: int, first: int = 0, last: int = 2) -> list[Any]:
        spec = {"first_index": first, "last_index": last}
        params = {"columns": [{"column_index": column, "spec": spec}], "format_options": FORMAT}
        values: list[Any] = self.result("get_data_values", params)["columns"][0]
        return values

    def profiles(self, columns: list[int], callback_id: str) -> list[dict[str, Any]]:
        """null_count and summary_stats of `columns`: the reply (`{}`) at once, the results
        in a `return_column_profiles` event, each within the hang guard."""
        wanted = [{"profile_type": "null_count"}, {"profile_type": "summary_stats"}]
        params = {
            "callback_id": callback_id,
            "profiles": [{"column_index": c, "profiles": wanted} for c in columns],
            "format_options": FORMAT,
        }
        assert self.result("get_column_profiles", params) == {}

        def answered(m: Msg) -> bool:
            if not is_event(m, self.comm_id):
                return False
            data = m["content"]["data"]
            return bool(
                data["method"] == "return_column_profiles"
                and data["params"].get("callback_id") == callback_id
            )

        event = self.log.wait_for(answered, timeout=RPC_TIMEOUT, what=f"profiles {callback_id}")
        got: dict[str, Any] = event["content"]["data"]["params"]
        assert "error_message" not in got, got
        profiles: list[dict[str, Any]] = got["profiles"]
        return profiles

    def closes(self) -> list[Msg]:
        return [
            m
            for m in self.log.msgs
            if msg_type(m) == "comm_close" and comm_id_of(m) == self.comm_id
        ]


def opened_explorers(log: IOPubLog, msgs: list[Msg] | None = None) -> list[Explorer]:
    """The explorers whose `comm_open` is in `msgs` (default: everything logged)."""
    found = []
    for m in log.msgs if msgs is None else msgs:
        if msg_type(m) == "comm_open" and m["content"]["target_name"] == EXPLORER:
            found.append(Explorer(log, m["content"]["comm_id"]))
    return found


def view_in_cell(log: IOPubLog, code: str) -> Explorer:
    """Run a cell that opens exactly one explorer (`mpkernel.view`); its comm."""
    msgs = execute_ok(log, code, timeout=CELL_TIMEOUT)
    explorers = opened_explorers(log, msgs)
    assert len(explorers) == 1, f"one comm_open expected from {code!r}:\n{describe(msgs)}"
    return explorers[0]


def execute_any(log: IOPubLog, code: str) -> dict[str, Any]:
    """Execute `code`, wait for its idle and reply; the reply's content, whatever its status."""
    msg_id: str = log.kc.execute(code)
    log.wait_idle(msg_id, timeout=CELL_TIMEOUT)
    reply = recv(log.kc, "shell", lambda m: parent_id(m) == msg_id, timeout=RPC_TIMEOUT)
    content: dict[str, Any] = reply["content"]
    return content


def wait_since(log: IOPubLog, since: int, match: Callable[[Msg], bool], *, what: str) -> Msg:
    """The first message logged at index `since` or later for which `match` is true."""
    log.read_until(lambda: any(map(match, log.msgs[since:])), timeout=RPC_TIMEOUT, what=what)
    return next(m for m in log.msgs[since:] if match(m))


def no_close_within(explorer: Explorer, seconds: float) -> None:
    """Read IOPub for `seconds`: the explorer's comm must not close meanwhile (a worker killed
    by its supervisor closes it with reason `worker_crashed`)."""
    try:
        explorer.log.read_until(
            lambda: bool(explorer.closes()), timeout=seconds, what="no comm_close (expected)"
        )
    except AssertionError:
        return  # nothing closed it within the window
    raise AssertionError(f"{explorer!r} was closed: {describe(explorer.closes())}")


def variables_key(name: str) -> str:
    """The variables pane's access key of a variable."""
    return json.dumps({"type": "str", "data": name}, separators=(",", ":"))


def view_from_pane(log: IOPubLog, name: str) -> Explorer:
    """Open the variables pane (if not yet) and ask it to `view` variable `name`: the kernel
    request `view`, served by the main thread between executions."""
    panes = [
        comm_id_of(m)
        for m in log.msgs
        if msg_type(m) == "comm_open" and m["content"].get("target_name") == VARIABLES
    ]
    pane = open_comm(log, VARIABLES, timeout=CELL_TIMEOUT) if not panes else panes[0]
    assert pane is not None
    done = call(log, pane, "view", {"path": [variables_key(name)]}, timeout=CELL_TIMEOUT)
    comm_id = done.result
    assert isinstance(comm_id, str), done.data
    assert [e.comm_id for e in opened_explorers(log)].count(comm_id) == 1
    return Explorer(log, comm_id)


def describe_process(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid} (parent {proc.ppid()}): {' '.join(proc.cmdline())}"
    except psutil.Error:
        return f"pid {proc.pid}"


class DebugClient:
    """JupyterLab's debugger (``mpkernel.client.control.Debugger``); every request must
    succeed."""

    def __init__(self, handle: KernelHandle) -> None:
        self._debugger = Debugger(frontend(handle.kc))

    def __call__(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        response, _ = self._debugger.request(command, arguments)
        assert response.get("success"), f"debug {command}: {response}"
        return response

    def attach(self) -> None:
        """What JupyterLab sends when the debugger is switched on."""
        self._debugger.start()

    def event(self, name: str, log: IOPubLog) -> dict[str, Any]:
        msg = log.wait_for(
            lambda m: kind(m) == "debug_event" and m["content"].get("event") == name,
            timeout=RPC_TIMEOUT,
            what=f"the debug_event {name!r}",
        )
        event: dict[str, Any] = msg["content"]
        return event


def stream_lines(log: IOPubLog, name: str) -> list[str]:
    text = "".join(
        m["content"]["text"]
        for m in log.msgs
        if msg_type(m) == "stream" and m["content"]["name"] == name
    )
    return text.splitlines()


# ---------------------------------------------------------------------------------------------
# 1. polars' pool


POLARS_ROWS = 1_000_000


def test_polars_used_in_the_kernel_before_the_viewer_opens(kernel: KernelHandle) -> None:
    """The kernel sorts and groups a 1M-row polars frame (polars' pool now runs in the
    kernel), then views it, from a cell and from the variables pane. Each explorer answers
    get_state, a sort, the sorted first rows and summary statistics (both big enough for the
    worker's polars paths) within the hang guard: in a forked child polars compute hangs
    (its string conversion for Arrow too), so the child takes polars' buffers as they are
    and computes with pyarrow."""
    n = POLARS_ROWS
    log = IOPubLog(kernel.kc)
    execute_ok(
        log,
        "import mpkernel, numpy as np, polars as pl\n"
        f"n = {n}\n"
        f"pf = pl.DataFrame({{'a': {PERMUTED.format(n='n')}, 'g': np.arange(n) % 7,"
        " 'x': np.arange(n) / 4, 's': [f'k{i:07d}' for i in range(n)]})\n"
        "by_a = pf.sort('a')\n"
        "groups = pf.group_by('g').agg(pl.col('x').sum(), pl.len()).sort('g')\n"
        "assert by_a['a'][0] == 0 and by_a['a'][-1] == n - 1 and groups.height == 7\n",
        timeout=CELL_TIMEOUT,
    )
    from_cell = view_in_cell(
        log,
        # polars busy in the same cell, right before the fork
        "assert pf.select(pl.col('a').sum()).item() == n * (n - 1) // 2\nmpkernel.view(pf, 'pf')",
    )
    from_pane = view_from_pane(log, "pf")
    last = row_of(n - 1, n)
    for i, explorer in enumerate((from_cell, from_pane)):
        state = explorer.state()
        assert state["table_shape"] == {"num_rows": n, "num_columns": 4}
        # strings: polars converts them on its pool unless they leave as views
        explorer.sort(3, ascending=False)
        assert explorer.values(3, 0, 0) == [f"k{n - 1:07d}"]
        explorer.sort(0, ascending=False)
        assert explorer.values(0) == [thousands(n - 1), thousands(n - 2), thousands(n - 3)]
        assert explorer.values(1, 0, 0) == [str(last % 7)]
        a, x = explorer.profiles([0, 2], f"polars-{i}")
        assert a["null_count"] == 0
        assert a["summary_stats"]["number_stats"]["min_value"] == "0"
        assert a["summary_stats"]["number_stats"]["max_value"] == thousands(n - 1)
        assert x["summary_stats"]["number_stats"]["max_value"] == f"{(n - 1) / 4:,.2f}"
        assert explorer.state()["sort_keys"] == [{"column_index": 0, "ascending": False}]


# ---------------------------------------------------------------------------------------------
# 2. user threads holding locks


THREADS = """
import importlib, logging, os, pathlib, sys, tempfile, threading

_dir = tempfile.mkdtemp()
pathlib.Path(_dir, "fork_probe_mod.py").write_text("VALUE = 1\\n")
sys.path.insert(0, _dir)
import fork_probe_mod

stop = threading.Event()
mine = threading.Lock()
taken = threading.Event()
reloads = [0]


def hold():  # (a) a lock of the user's, held for ever (until `stop`)
    with mine:
        taken.set()
        stop.wait()


class Buffered(logging.StreamHandler):
    def flush(self):  # lines stay in the file's buffer until it is full
        pass


# (b) logging, to a buffered file on fd 2: at the fork its buffer holds lines a child
# must never write again
_err = os.fdopen(2, "w", buffering=1 << 16, encoding="utf-8", closefd=False)
probe_log = logging.getLogger("fork_probe")
probe_log.propagate = False
_handler = Buffered(_err)
_handler.setFormatter(logging.Formatter("%(message)s"))
probe_log.addHandler(_handler)
probe_log.setLevel(logging.INFO)


def log_loop():
    n = 0
    while not stop.is_set():
        n += 1
        probe_log.info("log %d", n)


def print_loop():  # (c) print (the kernel's stdout: its lock, its queue)
    n = 0
    while not stop.is_set():
        n += 1
        print("tick", n)


def import_loop():  # (d) the import system's locks
    while not stop.is_set():
        importlib.reload(fork_probe_mod)
        importlib.invalidate_caches()
        reloads[0] += 1


threads = [
    threading.Thread(target=f, daemon=True, name=f.__name__)
    for f in (hold, log_loop, print_loop, import_loop)
]
for t in threads:
    t.start()
assert taken.wait(10)
"""

STOP_THREADS = """
stop.set()
for t in threads:
    t.join(10)
assert not [t.name for t in threads if t.is_alive()]
assert reloads[0] > 0
_err.flush()
"""


def test_user_threads_holding_locks_during_the_fork(kernel: KernelHandle) -> None:
    """Daemon threads hold a lock of their own for ever, log, print and reload a module in
    tight loops while two viewers open (in a cell, and through the kernel request `view`
    that `open_data_explorer` makes) and answer get_state, get_data_values and a sort.
    Then the threads stop, the explorers close and their processes exit: the threads'
    output arrived complete and once (every stdout line is `tick N`, every stderr line
    `log N`, N counting up by one): a child that wrote a buffer of theirs again, or wrote
    anything else to the kernel's stdout or stderr, would break the count."""
    n = 1_000_000
    log = IOPubLog(kernel.kc)
    execute_ok(
        log,
        "import mpkernel, numpy as np, pandas as pd\n"
        f"df = pd.DataFrame({{'i': np.arange({n}), 'f': {PERMUTED.format(n=n)} / 1.0}})",
        timeout=CELL_TIMEOUT,
    )
    workers_before = {p.pid for p in kernel_children(kernel)}
    execute_ok(log, THREADS, timeout=CELL_TIMEOUT)
    first = view_in_cell(log, "mpkernel.view(df, 'df')")
    assert first.state()["table_shape"] == {"num_rows": n, "num_columns": 2}
    assert first.values(1) == [f"{(OFFSET + i * MULTIPLIER) % n:,}.00" for i in range(3)]
    first.sort(1, ascending=True)
    assert first.values(1) == ["0.00", "1.00", "2.00"]
    # a second explorer through the kernel request `view` (served between executions)
    assert first.result("open_data_explorer", timeout=CELL_TIMEOUT) is None
    (second,) = [e for e in opened_explorers(log) if e.comm_id != first.comm_id]
    assert second.state()["table_shape"] == {"num_rows": n, "num_columns": 2}
    second.sort(1, ascending=False)
    assert second.values(1) == [f"{n - 1:,}.00", f"{n - 2:,}.00", f"{n - 3:,}.00"]
    assert first.values(0, 0, 0) == [thousands(row_of(0, n))]
    execute_ok(log, STOP_THREADS, timeout=CELL_TIMEOUT)

    explorer_procs = [p for p in kernel_children(kernel) if p.pid not in workers_before]
    assert explorer_procs, "the explorers run in processes of the kernel's tree"
    for explorer in (first, second):
        assert not explorer.closes(), describe(explorer.closes())
        close_comm(log, explorer.comm_id, timeout=RPC_TIMEOUT)
    survivors = wait_gone(explorer_procs, PROCESS_EXIT_TIMEOUT)
    left = [describe_process(p) for p in survivors]
    assert not left, f"explorer processes left after their comms closed: {left}"
    execute_ok(log, "pass")  # whatever they wrote before exiting is published by now
    ticks = stream_lines(log, "stdout")
    assert len(ticks) > 100, "the print loop ran"
    bad = [(i, line) for i, line in enumerate(ticks) if line != f"tick {i + 1}"]
    assert not bad, f"stdout is not the print loop's lines, once each: {bad[:5]}"
    logs = stream_lines(log, "stderr")
    assert len(logs) > 100, "the logging loop ran"
    bad = [(i, line) for i, line in enumerate(logs) if line != f"log {i + 1}"]
    assert not bad, f"stderr is not the logging loop's lines, once each: {bad[:5]}"


# ---------------------------------------------------------------------------------------------
# 3. the debugger attached


BREAK = "def probe(v):\n    w = v + 1\n    return w\nprobe(41)\n"


def test_debugger_attached(kernel: KernelHandle) -> None:
    """With debugpy attached (what JupyterLab sends: initialize, attach, configurationDone)
    a viewer opens and answers; its process is not taken for a new debuggee (no
    `debugpyAttach`, no process event about another pid); the debugger still works after it
    (a breakpoint stops, `evaluate` in the paused frame answers), then disconnects."""
    log = IOPubLog(kernel.kc)
    debug = DebugClient(kernel)
    debug.attach()
    execute_ok(
        log,
        "import mpkernel, numpy as np, pandas as pd\n"
        f"df = pd.DataFrame({{'i': np.arange(300_000), 'f': {PERMUTED.format(n=300_000)} * 0.5}})",
        timeout=CELL_TIMEOUT,
    )
    explorer = view_in_cell(log, "mpkernel.view(df, 'df')")
    assert explorer.state()["table_shape"] == {"num_rows": 300_000, "num_columns": 2}
    explorer.sort(1, ascending=True)
    assert explorer.values(1) == ["0.00", "0.5000", "1.00"]
    from_pane = view_from_pane(log, "df")
    assert from_pane.values(0) == ["0", "1", "2"]

    info = debug("debugInfo")["body"]
    assert info["isStarted"] is True
    assert info["stoppedThreads"] == []
    names = {v["name"] for v in debug("inspectVariables")["body"]["variables"]}
    assert "df" in names
    path = debug("dumpCell", {"code": BREAK})["body"]["sourcePath"]
    debug("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 2}]})
    msg_id: str = kernel.kc.execute(BREAK)
    stopped = debug.event("stopped", log)
    thread = stopped["body"]["threadId"]
    frames = debug("stackTrace", {"threadId": thread})["body"]["stackFrames"]
    assert (frames[0]["name"], frames[0]["line"]) == ("probe", 2)
    answer = debug("evaluate", {"expression": "v * 2", "frameId": frames[0]["id"]})
    assert answer["body"]["result"] == "82"
    assert explorer.values(1, 0, 0) == ["0.00"], "the explorer answers while the cell is paused"
    debug("continue", {"threadId": thread})
    log.wait_idle(msg_id, timeout=RPC_TIMEOUT)
    reply = recv(kernel.kc, "shell", lambda m: parent_id(m) == msg_id, timeout=RPC_TIMEOUT)
    assert reply["content"]["status"] == "ok"
    debug("disconnect", {"restart": False, "terminateDebuggee": True})

    # the debug events read so far, by the log or put aside by the debug requests' reads
    # (events that arrive after the disconnect are not this test's business)
    aside = claim(kernel.kc, "iopub", lambda m: kind(m) == "debug_event")
    debug_events = [m["content"] for m in [*log.msgs, *aside] if kind(m) == "debug_event"]
    assert not [e for e in debug_events if e.get("event") == "debugpyAttach"], debug_events
    processes = [e for e in debug_events if e.get("event") == "process"]
    assert all(e["body"].get("systemProcessId") in (None, kernel.pid) for e in processes), processes
    assert explorer.state()["sort_keys"] == [{"column_index": 1, "ascending": True}]
    assert from_pane.values(1, 0, 0) == [f"{OFFSET * 0.5:,.2f}"]
    claim(kernel.kc, "iopub", lambda m: kind(m) == "debug_event")


# ---------------------------------------------------------------------------------------------
# 4. interrupts during the fork


# An interrupt that arrives while `mpkernel.view` forks is held until the viewer is handed
# to the io thread: the cell may end in KeyboardInterrupt with its viewer open (a fork is
# never left half done), so one call per cell; its comm_open says whether it opened.
VIEW_UNTIL_OPEN = """
mpkernel.view(df, "df")
"""


class InterruptFlood:
    """A thread that sends SIGINT to the kernel's process group (as jupyter_client's
    `interrupt_kernel` does) every `period` seconds until stopped."""

    def __init__(self, handle: KernelHandle, period: float = 0.003) -> None:
        self.pgid = os.getpgid(handle.pid)
        assert self.pgid != os.getpgrp(), "the kernel must have a process group of its own"
        self.period = period
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sigint-flood", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                os.killpg(self.pgid, signal.SIGINT)
            except ProcessLookupError:
                return
            self.sent += 1

    def __enter__(self) -> InterruptFlood:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_interrupts_while_viewers_open(kernel: KernelHandle) -> None:
    """SIGINT to the kernel's process group every 3 ms while ten viewers open one after the
    other (cells calling `mpkernel.view`, and `open_data_explorer`, i.e. the kernel request
    `view` served between executions). A cell may end in KeyboardInterrupt; the kernel lives,
    every explorer that opened answers get_state (during the flood and after it), a later
    execute works; once they are closed no process started for them is left (none forked
    and then forgotten), and shutdown leaves no process behind."""
    log = IOPubLog(kernel.kc)
    n = 1_000_000
    execute_ok(
        log,
        "import mpkernel, numpy as np, pandas as pd\n"
        f"df = pd.DataFrame({{'i': np.arange({n}), 'f': np.arange({n}) / 2}})",
        timeout=CELL_TIMEOUT,
    )
    workers_before = {p.pid for p in kernel_children(kernel)}
    anchor = view_in_cell(log, "mpkernel.view(df, 'df')")
    assert anchor.state()["table_shape"]["num_rows"] == n
    with InterruptFlood(kernel) as flood:
        for round_ in range(10):
            if round_ % 2 == 0:
                content = execute_any(log, VIEW_UNTIL_OPEN)
                assert content["status"] == "ok" or content.get("ename") == "KeyboardInterrupt", (
                    content
                )
            else:
                done = call(log, anchor.comm_id, "open_data_explorer", timeout=CELL_TIMEOUT)
                assert "result" in done.data or "error" in done.data
            assert psutil.pid_exists(kernel.pid)
        explorers = opened_explorers(log)
        assert len(explorers) >= 3, f"only {len(explorers)} explorers opened under the flood"
        for explorer in explorers:
            assert not explorer.closes(), f"{explorer!r} closed: {describe(explorer.closes())}"
            assert explorer.state()["table_shape"] == {"num_rows": n, "num_columns": 2}
        assert flood.sent > 10
    assert kernel.process().is_running()
    done_msgs = execute_ok(log, "print('alive', len(df))")
    assert "alive 1000000" in "".join(
        m["content"]["text"] for m in done_msgs if kind(m) == "stream:stdout"
    )
    for explorer in explorers:
        assert explorer.values(0, 0, 0) == ["0"]
    # No process forked for a view that the interrupt cut short is left over: once every
    # explorer is closed, every process started since is gone (the kernel still runs).
    for explorer in explorers:
        close_comm(log, explorer.comm_id, timeout=RPC_TIMEOUT)
    started = [p for p in kernel_children(kernel) if p.pid not in workers_before]
    left = wait_gone(started, PROCESS_EXIT_TIMEOUT)
    assert not left, (
        f"processes left after every explorer closed: {list(map(describe_process, left))}"
    )
    stop_kernel(kernel)  # fails if any process of the kernel's tree survives


# ---------------------------------------------------------------------------------------------
# 5. a mutation while a sort runs


def test_mutation_while_a_sort_runs(kernel: KernelHandle) -> None:
    """`set_sort_columns` on a 3M-row column, and right behind it (without waiting for the
    answer) a cell that edits the table in place. The sort answers without error, a
    data_update follows the edit, and the sorted view then starts with the edited value
    (-1.0, the smallest) followed by the old smallest ones: the explorer saw the edit and
    kept the sort across the concurrent mutation (and the takeover by a fresh child)."""
    n = 3_000_000
    log = IOPubLog(kernel.kc)
    execute_ok(
        log,
        "import mpkernel, numpy as np, pandas as pd\n"
        f"df = pd.DataFrame({{'i': np.arange({n}), 'f': ({PERMUTED.format(n=n)}) / 1.0}})",
        timeout=CELL_TIMEOUT,
    )
    explorer = view_in_cell(log, "mpkernel.view(df, 'df')")
    assert explorer.values(1, 0, 0) == [f"{OFFSET:,}.00"]
    keys = [{"column_index": 1, "ascending": True}]
    sort, _ = send_rpc(kernel.kc, explorer.comm_id, "set_sort_columns", {"sort_keys": keys})
    mutation: str = kernel.kc.execute("df.loc[0, 'f'] = -1.0")
    answer = log.wait_for(
        lambda m: is_response_to(m, sort, explorer.comm_id),
        timeout=RPC_TIMEOUT,
        what="the answer to set_sort_columns",
    )
    assert answer["content"]["data"].get("result", "missing") is None, answer["content"]
    log.wait_idle(mutation, timeout=CELL_TIMEOUT)
    reply = recv(kernel.kc, "shell", lambda m: parent_id(m) == mutation, timeout=RPC_TIMEOUT)
    assert reply["content"]["status"] == "ok", reply["content"]
    # the update that follows the edit (a view opened by a cell may have had one before)
    edit = log.index(next(m for m in log.msgs if parent_id(m) == mutation))
    wait_since(
        log,
        edit,
        lambda m: (
            is_event(m, explorer.comm_id)
            and m["content"]["data"]["method"] in ("data_update", "schema_update")
        ),
        what="data_update after the edit",
    )
    log.wait_idle(sort.msg_id, timeout=RPC_TIMEOUT)
    sorted_f = explorer.values(1)
    unsorted = ["-1.00", *(f"{(OFFSET + i * MULTIPLIER) % n:,}.00" for i in (1, 2))]
    assert sorted_f == ["-1.00", "0.00", "1.00"], (
        f"the view sorted by f starts {sorted_f} after the edit (unsorted: {unsorted})"
    )
    assert explorer.values(0) == ["0", thousands(row_of(0, n)), thousands(row_of(1, n))]
    state = explorer.state()
    assert state["sort_keys"] == keys
    assert state["table_shape"] == {"num_rows": n, "num_columns": 2}
    assert not explorer.closes()


# ---------------------------------------------------------------------------------------------
# 6. the memory limit


LIMIT = 256 << 20
LIMITED = """
[workers.data_explorer]
memory_limit = "256MiB"
"""


def test_memory_limit_counts_what_the_worker_owns(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """An 800 MB frame (10M x 10 float64, each column contiguous: readable without a copy)
    viewed by an explorer limited to 256 MiB. The view and its first pages work, and over six
    checks of the limit (every 250 ms) the worker is not killed (no `worker_crashed` close),
    although its RSS, which counts the pages it shares with the kernel, is over the limit
    (the premise, asserted: a worker that maps only the pages it reads does not test this)."""
    rows = 10_000_000
    with configured_kernels(request.node, tmp_path) as start:
        handle = start(LIMITED)
        log = IOPubLog(handle.kc)
        execute_ok(
            log,
            "import mpkernel, numpy as np, pandas as pd\n"
            f"big = pd.DataFrame({{c: np.arange({rows}, dtype=np.float64) * 10 + j"
            " for j, c in enumerate('abcdefghij')})\n"
            f"assert big.shape == ({rows}, 10)",
            timeout=CELL_TIMEOUT,
        )
        before = {p.pid for p in kernel_children(handle)}
        explorer = view_in_cell(log, "mpkernel.view(big, 'big')")
        assert explorer.state()["table_shape"] == {"num_rows": rows, "num_columns": 10}
        assert explorer.values(0) == ["0.00", "10.00", "20.00"]
        assert explorer.values(3, 123_456, 123_456) == ["1,234,563.00"]
        no_close_within(explorer, 1.5)
        assert explorer.values(5, 1, 1) == ["15.00"]
        assert not explorer.closes()
        new = [p for p in kernel_children(handle) if p.pid not in before]
        assert new, "the explorer's process is one of the kernel's tree"
        rss = max(p.memory_info().rss for p in new)
        assert rss > LIMIT, (
            f"premise not met: the explorer's RSS ({rss >> 20} MiB) should count the pages it "
            f"shares with the kernel and be over the limit ({LIMIT >> 20} MiB)"
        )


# ---------------------------------------------------------------------------------------------
# 7. no process outlives the kernel


def test_no_process_outlives_a_killed_kernel(kernel: KernelHandle) -> None:
    """SIGKILL to the kernel's main process while two explorers are open: every process of
    its tree (as it was just before, forked explorers included) is gone within 5 s."""
    log = IOPubLog(kernel.kc)
    execute_ok(
        log,
        "import mpkernel, numpy as np, pandas as pd\n"
        "df = pd.DataFrame({'i': np.arange(1_000_000)})",
        timeout=CELL_TIMEOUT,
    )
    one = view_in_cell(log, "mpkernel.view(df, 'df')")
    two = view_from_pane(log, "df")
    for explorer in (one, two):
        assert explorer.state()["table_shape"]["num_rows"] == 1_000_000
    procs = process_tree(kernel.pid)
    assert len(procs) >= 4, "the kernel, the explorers' processes and the pane's"
    os.kill(kernel.pid, signal.SIGKILL)
    survivors = wait_gone(procs, 5.0)
    described = [describe_process(p) for p in survivors]
    for p in survivors:  # orphans: no longer in the kernel's tree for stop_kernel to find
        with contextlib.suppress(psutil.Error):
            p.kill()
    wait_gone(survivors, PROCESS_EXIT_TIMEOUT)
    stop_kernel(kernel)
    assert not survivors, f"processes of the kernel alive 5 s after it was killed: {described}"


# ---------------------------------------------------------------------------------------------
# 8. the kernel's signal handlers are not the child's


def test_a_terminated_explorer_takes_nothing_of_the_kernel_with_it(kernel: KernelHandle) -> None:
    """SIGTERM to a forked explorer: it ends as a crash of its own comm (I6). The kernel's
    own SIGTERM handler (which removes the kernel's directories and exits) must not have
    run in it: a new explorer is forked afterwards, the variables pane's worker (started by
    the forkserver, whose directory that handler removes) starts, and the kernel runs."""
    log = IOPubLog(kernel.kc)
    execute_ok(
        log,
        "import mpkernel, numpy as np, pandas as pd\ndf = pd.DataFrame({'i': np.arange(100_000)})",
        timeout=CELL_TIMEOUT,
    )
    before = {p.pid for p in kernel_children(kernel)}
    doomed = view_in_cell(log, "mpkernel.view(df, 'df')")
    assert doomed.state()["table_shape"]["num_rows"] == 100_000
    forked = [p for p in kernel_children(kernel) if p.pid not in before]
    assert len(forked) == 1, "the explorer's process is a child of the kernel"
    forked[0].send_signal(signal.SIGTERM)
    log.wait_for(
        lambda m: msg_type(m) == "comm_close" and comm_id_of(m) == doomed.comm_id,
        timeout=RPC_TIMEOUT,
        what="the terminated explorer's comm_close",
    )
    again = view_in_cell(log, "mpkernel.view(df, 'df')")
    assert again.state()["table_shape"]["num_rows"] == 100_000
    pane = view_from_pane(log, "df")  # the variables worker starts from the forkserver
    assert pane.values(0, 0, 0) == ["0"]
    stop_kernel(kernel)
