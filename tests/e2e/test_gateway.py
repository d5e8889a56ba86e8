"""mpkernel run remotely: JupyterLab (``--gateway-url``) with its kernels on a Jupyter Kernel
Gateway, driven in headless Chromium.

Two servers of their own for this module: a Kernel Gateway (``jupyter_kernel_gateway``)
serving the ``mpkernel-test`` kernelspec, and a JupyterLab that manages no kernel itself but
forwards every kernel request and websocket to the gateway. One page goes through what a
person does with a remote kernel: run a cell, use an ipywidgets slider both ways, open
Positron's variables comm from the page and get its list, interrupt a running cell, restart
the kernel from the Kernel menu. That the kernel runs under the gateway (and not under
JupyterLab) is checked on the processes.

After the test the session is shut down through JupyterLab's REST API and the gateway's
kernel processes must be gone; then JupyterLab, and then the gateway, are stopped and psutil
must find none of their processes (``LabServer.stop``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.e2e.support import require

require("chromium", "playwright")

from playwright.sync_api import Page, expect  # noqa: E402

from tests.e2e.notebook import UI_TIMEOUT_MS, Notebook  # noqa: E402
from tests.e2e.support import LabServer, start_kernel_gateway, start_lab_server  # noqa: E402
from tests.frontend import PROCESS_EXIT_TIMEOUT, wait_gone  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[LabServer]:
    server = start_kernel_gateway(
        tmp_path_factory.mktemp("kernel-gateway"), artifacts / "kernel-gateway.log"
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def lab_server(
    gateway: LabServer, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[LabServer]:
    """This module's JupyterLab (the ``page`` fixture's server): kernels on ``gateway``.
    Stopped before the gateway, which it asks to shut its kernels down."""
    server = start_lab_server(
        tmp_path_factory.mktemp("jupyterlab-gateway"),
        artifacts / "jupyterlab-gateway.log",
        gateway=gateway,
    )
    try:
        yield server
    finally:
        server.stop()


# The page's own kernel connection (JupyterLab's kernel API, as an extension uses it), used
# as Positron uses the pane: open a comm on positron.variables, wait for its `refresh`
# event (a `list` sent before the worker has its first snapshot would find it empty), then
# ask `list` (no JSON-RPC id: the reply is matched by its parent header), close the comm.
_LIST_VARIABLES = """async () => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const comm = kernel.createComm('positron.variables');
  let request = null;
  let refreshed, listed;
  const refresh = new Promise((resolve) => { refreshed = resolve; });
  const reply = new Promise((resolve) => { listed = resolve; });
  comm.onMsg = (msg) => {
    const data = msg.content.data;
    if (data.method === 'refresh') refreshed(data.params);
    if (request && msg.parent_header.msg_id === request.msg.header.msg_id) listed(data);
  };
  const within = (promise, what) => Promise.race([promise, new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`no ${what} within 30 s`)), 30000))]);
  await comm.open({}).done;
  const first = await within(refresh, 'refresh');
  request = comm.send({method: 'list', params: {}});
  await request.done;
  const answer = await within(reply, 'reply to list');
  await comm.close().done;
  return {refresh: first, reply: answer};
}"""


def _kernel_process(gateway: LabServer, lab: LabServer, pid: int) -> psutil.Process:
    """The kernel process ``pid``, checked to run mpkernel under the gateway."""
    under_gateway = {p.pid: p for p in gateway.descendants()}
    assert pid in under_gateway, f"kernel pid {pid} is not a process of the gateway"
    cmdline = under_gateway[pid].cmdline()
    assert cmdline[1:4] == ["-m", "mpkernel", "run"], cmdline
    lab_children = psutil.Process(lab.pid).children(recursive=True)
    assert not lab_children, f"JupyterLab started processes of its own: {lab_children}"
    return under_gateway[pid]


def _printed_pid(notebook: Notebook) -> int:
    cell = notebook.run("import os\nprint(os.getpid())")
    out = notebook.outputs(cell)
    expect(out).to_have_text(re.compile(r"^\d+\s*$"), timeout=UI_TIMEOUT_MS)
    return int(out.inner_text())


def test_lab_runs_mpkernel_on_a_kernel_gateway(
    page: Page, lab_server: LabServer, gateway: LabServer
) -> None:
    notebook = Notebook.open(page, lab_server)

    # execute
    cell = notebook.run("gw_answer = 6 * 7\nprint('answer', gw_answer)")
    expect(notebook.outputs(cell)).to_have_text("answer 42", timeout=UI_TIMEOUT_MS)
    kernel = _kernel_process(gateway, lab_server, _printed_pid(notebook))

    # a widget, both ways: the kernel's value shown, the page's edit seen by the kernel
    cell = notebook.run(
        "import ipywidgets as widgets\nslider = widgets.IntSlider(value=10)\nslider"
    )
    readout = notebook.outputs(cell).locator(".widget-readout")
    expect(readout).to_have_text("10", timeout=UI_TIMEOUT_MS)
    readout.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text("73")
    page.keyboard.press("Enter")
    cell = notebook.run("print(slider.value)")
    expect(notebook.outputs(cell)).to_have_text("73", timeout=UI_TIMEOUT_MS)
    notebook.run("slider.value = 25")
    expect(readout).to_have_text("25", timeout=UI_TIMEOUT_MS)

    # the variables comm, opened by the page through the gateway
    pane: dict[str, Any] = page.evaluate(_LIST_VARIABLES)
    assert "result" in pane["reply"], f"list failed: {pane['reply']}"
    for variables in (pane["refresh"]["variables"], pane["reply"]["result"]["variables"]):
        shown = {v["display_name"]: v["display_value"] for v in variables}
        assert shown.get("gw_answer") == "42", shown
        assert shown.get("slider") == "IntSlider(value=25)", shown

    # interrupt: the gateway signals the kernel's process group
    cell = notebook.run("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
    out = notebook.outputs(cell)
    expect(out.first).to_have_text("sleeping", timeout=UI_TIMEOUT_MS)
    notebook.interrupt()
    # Well before the 60 s the sleep would take.
    expect(out.last).to_contain_text("KeyboardInterrupt", timeout=UI_TIMEOUT_MS)
    notebook.wait_idle()
    assert kernel.is_running(), "the interrupt ended the kernel"

    # restart: a new kernel process under the gateway, with an empty namespace. The page's
    # own reconnection to the restarted kernel through JupyterLab's gateway websocket is
    # not reliable (its status can stay "Unknown"; docs/deploy.md): a reload, as a person
    # would do, connects it.
    notebook.ask_restart()
    assert not wait_gone([kernel], PROCESS_EXIT_TIMEOUT), "the kernel before the restart lives"
    page.reload()
    notebook.wait_idle()
    cell = notebook.run("gw_answer")
    expect(notebook.outputs(cell)).to_contain_text(
        "NameError: name 'gw_answer' is not defined", timeout=UI_TIMEOUT_MS
    )
    expect(notebook.prompt(cell)).to_have_text("[1]:")
    restarted = _kernel_process(gateway, lab_server, _printed_pid(notebook))
    assert restarted.pid != kernel.pid
