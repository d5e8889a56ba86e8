"""mpkernel as a drop-in for ipykernel: every corpus notebook runs under nbclient on both
kernels, and each code cell's output, reduced to what a person sees (reduce.py), must match.

The reference is ipykernel's live output in the same test run, never a stored expectation.
Each notebook runs once per test session on both kernels at the same time (two nbclient
clients in one event loop); the per-cell tests then compare the two results. A difference that
is there by design is listed in known_differences.py and expected to stay (strict xfail).

With ``MPKERNEL_TEST_TARGET=ipykernel`` both sides are ipykernel: then every cell must match,
which checks that the reduction removes everything that differs between two runs of one
kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from nbclient import NotebookClient
from nbclient.output_widget import OutputWidget

from tests.conftest import KERNEL_NAME, KERNEL_NAME_IPYKERNEL, TARGET
from tests.drop_in import make_corpus
from tests.drop_in.known_differences import (
    KNOWN_DIFFERENCES,
    STDIN,
    WIDGET_STATE,
    markdown_rows,
)
from tests.drop_in.reduce import Reduced, format_reduced, reduce_notebook, reduce_widget_state
from tests.frontend import PROCESS_EXIT_TIMEOUT, process_tree, wait_gone

pytestmark = pytest.mark.integration

CORPUS = make_corpus.CORPUS
NOTEBOOKS = {path.stem: path for path in sorted(CORPUS.glob("*.ipynb"))}
DOC = Path(__file__).resolve().parents[2] / "docs" / "drop_in.md"

REFERENCE = "ipykernel"
UNDER_TEST = "mpkernel"
KERNELSPECS = {REFERENCE: KERNEL_NAME_IPYKERNEL, UNDER_TEST: KERNEL_NAME}

#: nbclient's hang guard per cell
CELL_TIMEOUT = 120
#: how long nbclient waits, after a cell's reply, for the rest of its outputs and its idle
IOPUB_TIMEOUT = 10
#: hang guard for the test that runs a notebook: one timed-out cell on both kernels at once,
#: plus two kernel starts and shutdowns
NOTEBOOK_TIMEOUT = 2 * CELL_TIMEOUT + 60


class _SideShell:
    """What nbclient's Output widget mimic uses of the kernel client (``session``,
    ``shell_channel.send``), sending on a shell socket of its own.

    The mimic sends the widget's state back to the kernel on the shell channel from the task
    that reads IOPub, while another task awaits the cell's execute_reply on that same socket.
    The socket's file descriptor is edge-triggered: the send can take the readiness of a reply
    that has already arrived, and the await then wakes only at the cell timeout (the cell ends
    normally, 120 s late, on either kernel). On a socket of its own nothing is taken.
    """

    def __init__(self, kc: Any) -> None:
        self.session = kc.session
        self.socket = kc.connect_shell()

    @property
    def shell_channel(self) -> _SideShell:
        return self

    def send(self, msg: dict[str, Any]) -> None:
        self.session.send(self.socket, msg)


class DropInClient(NotebookClient):
    """nbclient, with the Output widget mimic's state updates on a socket of their own."""

    side_shell: _SideShell | None = None

    def on_comm_open_jupyter_widget(self, msg: dict[str, Any]) -> Any | None:
        widget = super().on_comm_open_jupyter_widget(msg)
        if isinstance(widget, OutputWidget):
            if self.side_shell is None:
                self.side_shell = _SideShell(self.kc)
            widget.kernel_client = self.side_shell
        return widget

    def close_side_shell(self) -> None:
        if self.side_shell is not None:
            self.side_shell.socket.close(linger=0)
            self.side_shell = None


class OutputsDiffer(AssertionError):
    """The one failure a known difference expects (any other failure stays a failure)."""


@dataclass
class KernelRun:
    """One notebook executed by nbclient on one kernel."""

    label: str
    nb: Any
    error: BaseException | None = None
    processes: list[psutil.Process] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @cached_property
    def reduced(self) -> dict[int, list[Reduced]]:
        return reduce_notebook(self.nb)

    @cached_property
    def widgets(self) -> dict[str, list[Any]]:
        return reduce_widget_state(self.nb)

    def not_executed(self, index: int) -> str | None:
        """Why cell ``index`` has no result to compare, or None when it ran."""
        if self.nb.cells[index].get("execution_count") is not None:
            return None
        return f"{self.label} did not execute the cell: {self.error!r}"


async def _execute(label: str, path: Path, workdir: Path) -> KernelRun:
    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    run = KernelRun(label, nb)
    client = DropInClient(
        nb,
        kernel_name=KERNELSPECS[label],
        timeout=CELL_TIMEOUT,
        allow_errors=True,
        store_widget_state=True,
        record_timing=False,
        # outputs that arrive after the reply but never complete are an error, not a cell
        # that silently compares with fewer outputs
        raise_on_iopub_timeout=True,
        iopub_timeout=IOPUB_TIMEOUT,
        resources={"metadata": {"path": str(workdir)}},
    )

    def remember_processes(**_: Any) -> None:
        assert client.km is not None
        known = {p.pid for p in run.processes}
        tree = process_tree(client.km.provisioner.pid)  # type: ignore[union-attr]
        run.processes.extend(p for p in tree if p.pid not in known)

    client.on_notebook_start = remember_processes
    client.on_cell_executed = remember_processes
    start = time.monotonic()
    try:
        await client.async_execute()
    except Exception as exc:  # noqa: BLE001 - kept for the tests of this notebook to report
        run.error = exc
    finally:
        client.close_side_shell()
    run.seconds = time.monotonic() - start
    return run


def _describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid}: {' '.join(proc.cmdline())}"
    except psutil.Error:
        return f"pid {proc.pid}"


def run_on_both_kernels(path: Path, workdir: Path) -> dict[str, KernelRun]:
    """``path`` executed on ipykernel and on mpkernel concurrently; afterwards every process
    of either kernel must exit (survivors are killed and listed in ``left_behind``)."""

    async def both() -> list[KernelRun]:
        return list(
            await asyncio.gather(*(_execute(label, path, workdir / label) for label in KERNELSPECS))
        )

    for label in KERNELSPECS:
        (workdir / label).mkdir(parents=True)
    runs = asyncio.run(both())
    for run in runs:
        survivors = wait_gone(run.processes, PROCESS_EXIT_TIMEOUT)
        run.left_behind = [_describe(p) for p in survivors]
        for proc in survivors:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        wait_gone(survivors, PROCESS_EXIT_TIMEOUT)
    return {run.label: run for run in runs}


@pytest.fixture(scope="session")
def notebook_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], dict[str, KernelRun]]:
    """``runs(name)``: the notebook's results on both kernels, executed once per session."""
    cache: dict[str, dict[str, KernelRun]] = {}
    started: set[str] = set()

    def runs(name: str) -> dict[str, KernelRun]:
        if name not in cache:
            # a run cut short by the test's timeout is not retried by each later test
            if name in started:
                pytest.fail(f"an earlier run of {name}.ipynb did not finish")
            started.add(name)
            cache[name] = run_on_both_kernels(
                NOTEBOOKS[name], tmp_path_factory.mktemp(f"drop-in-{name}")
            )
        return cache[name]

    return runs


def _code_cells(path: Path) -> list[tuple[int, str]]:
    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _params(wheres: Callable[[Path], list[Any]]) -> list[Any]:
    """One param per (notebook, where); a known difference is a strict xfail on mpkernel (with
    ipykernel on both sides there is no difference to expect)."""
    params = []
    for name, path in NOTEBOOKS.items():
        for where in wheres(path):
            marks = [pytest.mark.slow, pytest.mark.timeout(NOTEBOOK_TIMEOUT)]
            reason = KNOWN_DIFFERENCES.get((name, where))
            if reason is not None and TARGET == "mpkernel":
                marks.append(pytest.mark.xfail(reason=reason, raises=OutputsDiffer, strict=True))
            suffix = "" if where == WIDGET_STATE else f"-{where}"
            params.append(pytest.param(name, where, marks=marks, id=f"{name}{suffix}"))
    return params


#: changed word runs shown in a failure message (a long line that differs in a few words,
#: like %lsmagic's, is unreadable as a line diff)
WORD_CHANGES_SHOWN = 10


def _word_changes(expected: list[str], got: list[str]) -> list[str]:
    """Each run of words that differs, as ``- old words`` / ``+ new words`` (words split on
    whitespace and on escaped newlines)."""
    split = re.compile(r"(?:\s|\\n)+")
    old, new = split.split(" ".join(expected)), split.split(" ".join(got))
    changes = [
        (old[i1:i2], new[j1:j2])
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(
            None, old, new, autojunk=False
        ).get_opcodes()
        if op != "equal"
    ]
    lines = []
    for removed, added in changes[:WORD_CHANGES_SHOWN]:
        if removed:
            lines.append(f"  - {' '.join(removed)}")
        if added:
            lines.append(f"  + {' '.join(added)}")
    if len(changes) > WORD_CHANGES_SHOWN:
        lines.append(f"  ... {len(changes) - WORD_CHANGES_SHOWN} more changes")
    return lines


def _difference(title: str, source: str, expected: list[str], got: list[str]) -> str:
    diff = difflib.unified_diff(expected, got, REFERENCE, UNDER_TEST, lineterm="", n=2)
    return "\n".join(
        [
            title,
            "source:",
            *(f"    {line}" for line in source.split("\n")),
            f"{REFERENCE} (reduced):",
            *expected,
            f"{UNDER_TEST} (reduced):",
            *got,
            "diff:",
            *(f"  {line}" for line in diff),
            f"words ({REFERENCE} -, {UNDER_TEST} +):",
            *_word_changes(expected, got),
        ]
    )


@pytest.mark.parametrize(
    ("notebook", "index"), _params(lambda path: [i for i, _ in _code_cells(path)])
)
def test_cell_output_matches_ipykernel(
    notebook: str, index: int, notebook_runs: Callable[[str], dict[str, KernelRun]]
) -> None:
    """The cell's outputs on mpkernel reduce to the same as on ipykernel."""
    runs = notebook_runs(notebook)
    reference, under_test = runs[REFERENCE], runs[UNDER_TEST]
    for run in (reference, under_test):
        missing = run.not_executed(index)
        assert missing is None, missing
    expected, got = reference.reduced[index], under_test.reduced[index]
    if expected != got:
        raise OutputsDiffer(
            _difference(
                f"cell {index} of {notebook}.ipynb differs",
                reference.nb.cells[index].source,
                format_reduced(expected),
                format_reduced(got),
            )
        )


@pytest.mark.parametrize(("notebook", "where"), _params(lambda path: [WIDGET_STATE]))
def test_widget_state_matches_ipykernel(
    notebook: str, where: str, notebook_runs: Callable[[str], dict[str, KernelRun]]
) -> None:
    """The widget models the notebook left behind (names; what each Output widget captured)
    are the same on both kernels."""
    runs = notebook_runs(notebook)
    expected, got = runs[REFERENCE].widgets, runs[UNDER_TEST].widgets
    if expected != got:
        raise OutputsDiffer(
            _difference(
                f"the {where} of {notebook}.ipynb differs",
                "(the whole notebook)",
                [f"    {key}: {value!r}" for key, value in expected.items()],
                [f"    {key}: {value!r}" for key, value in got.items()],
            )
        )


@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("notebook", list(NOTEBOOKS))
def test_notebook_runs_to_the_end(
    notebook: str, notebook_runs: Callable[[str], dict[str, KernelRun]]
) -> None:
    """nbclient raised nothing (no cell timed out, the kernel did not die) and every code cell
    got an execution count, on both kernels."""
    for run in notebook_runs(notebook).values():
        assert run.error is None, f"{run.label}, after {run.seconds:.1f} s: {run.error!r}"
        unexecuted = [i for i, _ in _code_cells(NOTEBOOKS[notebook]) if run.not_executed(i)]
        assert unexecuted == [], f"{run.label}: cells without an execution count: {unexecuted}"


@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("notebook", list(NOTEBOOKS))
def test_kernel_processes_are_gone(
    notebook: str, notebook_runs: Callable[[str], dict[str, KernelRun]]
) -> None:
    """After nbclient shut each kernel down, every process it had (seen after each cell) is
    gone."""
    for run in notebook_runs(notebook).values():
        assert run.processes, f"{run.label}: no kernel process was ever seen"
        assert run.left_behind == [], f"{run.label} left processes behind: {run.left_behind}"


def test_corpus_is_what_make_corpus_writes(tmp_path: Path) -> None:
    """The committed notebooks are exactly the generator's output (regenerate with
    ``python -m tests.drop_in.make_corpus``)."""
    written = make_corpus.write_corpus(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in CORPUS.glob("*.ipynb"))
    for path in written:
        committed = (CORPUS / path.name).read_text(encoding="utf-8")
        assert path.read_text(encoding="utf-8") == committed, f"{path.name} is stale"


def test_known_differences_point_at_code_cells() -> None:
    """Every entry names a corpus notebook and one of its code cells (or its widget state);
    test_stdin.py checks the stdin entries."""
    for notebook, where in KNOWN_DIFFERENCES:
        if notebook == STDIN:
            continue
        assert notebook in NOTEBOOKS, f"{notebook!r} is not a corpus notebook"
        if where != WIDGET_STATE:
            assert where in [i for i, _ in _code_cells(NOTEBOOKS[notebook])], (
                f"{notebook}.ipynb has no code cell {where}"
            )


def test_known_differences_are_documented() -> None:
    """docs/drop_in.md's "What differs" table has one row per entry, with its reason."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"^## What differs\n(?P<body>.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"{DOC.name} has no '## What differs' section"
    rows = [
        line for line in match["body"].splitlines() if line.startswith("| `") and line.endswith("|")
    ]
    assert rows == markdown_rows(), (
        f"{DOC.name}'s table is not the list in known_differences.py; it should read:\n"
        + "\n".join(markdown_rows())
    )
