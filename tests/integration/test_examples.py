"""The notebooks in examples/ run without error under nbclient, and run_notebook.py works.

nbclient is a real frontend (its own async client, its own kernel manager), so this also
checks that the kernel serves a client other than this suite's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from nbclient import NotebookClient

from tests.conftest import KERNEL_NAME
from tests.frontend import PROCESS_EXIT_TIMEOUT, process_tree, wait_gone

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_there_are_example_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS], "examples/ holds no notebook"
    assert "tour.ipynb" in [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_without_error(path: Path) -> None:
    """Every code cell of the notebook runs (nbclient raises CellExecutionError otherwise),
    no output is an error, and the kernel's processes are gone afterwards."""
    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    trees: list[list[psutil.Process]] = []

    client = NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=120,
        resources={"metadata": {"path": str(EXAMPLES)}},
    )

    def remember_processes(**_: Any) -> None:
        assert client.km is not None
        trees.append(process_tree(client.km.provisioner.pid))  # type: ignore[union-attr]

    client.on_cell_executed = remember_processes
    try:
        client.execute()
    finally:
        survivors = wait_gone([p for tree in trees for p in tree], PROCESS_EXIT_TIMEOUT)
        for proc in survivors:
            proc.kill()
        assert survivors == [], f"kernel processes left behind: {survivors}"

    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells
    for cell in code_cells:
        assert cell.execution_count is not None
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors == [], f"cell {cell.source!r} produced {errors}"


def test_tour_outputs() -> None:
    """run_notebook.py on tour.ipynb: exit 0, and the printout shows each kind of output
    (ordered streams, displays, the updated display, a rich result, a PNG, a magic)."""
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "run_notebook.py"),
            str(EXAMPLES / "tour.ipynb"),
            "--kernel",
            KERNEL_NAME,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Hello from mpkernel" in out
    assert "[stderr] this line goes to stderr" in out
    assert "<b>bold HTML</b>" in out
    assert "step 2 of 2: done" in out
    assert "step 1 of 2" not in out
    assert "Temperature(31)" in out
    assert "[image/png " in out
    assert "Wall time" in out
    assert "499999500000" in out


def test_ipywidgets_slider_round_trip_under_nbclient() -> None:
    """In-process comms under nbclient: an IntSlider opens its comm from the kernel,
    nbclient records the widget state from the comm traffic, and a value set from code
    after display reaches nbclient too (comm_msg update on the same comm)."""
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [
        nbformat.v4.new_code_cell(  # type: ignore[no-untyped-call]
            "import ipywidgets as w\nslider = w.IntSlider(value=3, description='n')\nslider"
        ),
        nbformat.v4.new_code_cell("slider.value = 7\nprint(slider.value)"),  # type: ignore[no-untyped-call]
    ]
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=120, store_widget_state=True)
    client.execute()
    view = nb.cells[0].outputs[0]["data"]["application/vnd.jupyter.widget-view+json"]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    model = state[view["model_id"]]
    assert model["model_name"] == "IntSliderModel"
    assert model["state"]["value"] == 7, model["state"]
    assert nb.cells[1].outputs[0]["text"] == "7\n"


def test_panes_example_shows_the_mission() -> None:
    """run_notebook.py --panes on panes.ipynb: a second frontend acting as Positron's panes
    sees the variables pane follow the cells, a data explorer page, and a worker crash that
    closes its comm cleanly while the kernel and the namespace go on."""
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "run_notebook.py"),
            str(EXAMPLES / "panes.ipynb"),
            "--kernel",
            KERNEL_NAME,
            "--panes",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    # The names of one update come in no promised order.
    updates = [line for line in out.splitlines() if "[panes] variables pane update:" in line]
    assert any("sales = [6 rows x 3 columns]" in line for line in updates), out
    for expected in (
        "removed units",
        "[panes] data explorer 'sales by total': 6 rows x 4 columns",
        "coffee   3.00     30  90.00",
        "[panes] the request got a JSON-RPC error: worker echo crashed",
        "[panes] then comm_close: worker_crashed",
        "still here: 6 rows, total 263.5",
    ):
        assert expected in out, f"{expected!r} not in:\n{out}"
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]


@pytest.mark.mpkernel_only
def test_the_kernel_log_goes_to_its_file_and_the_output_has_a_heading(tmp_path: Path) -> None:
    """run_notebook.py --kernel-log (what tools/demo.sh uses): the printout starts with the
    notebook's heading and holds only what the notebook shows; the kernel's log lines (its
    SIGINT notes, the crash the notebook causes on purpose) are in the file."""
    kernel_log = tmp_path / "kernel.log"
    notebook = EXAMPLES / "panes.ipynb"
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "run_notebook.py"),
            str(notebook),
            "--kernel",
            KERNEL_NAME,
            "--panes",
            "--kernel-log",
            str(kernel_log),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0] == f"=== {notebook} ===", proc.stdout[:500]
    assert proc.stderr == ""
    assert "[mpkernel" not in proc.stdout
    logged = kernel_log.read_text(encoding="utf-8")
    assert "ready (session" in logged
    assert "exited with code 3" in logged, logged
