"""mpkernel in JupyterLab, driven in headless Chromium the way a person uses it.

Each test opens a notebook of its own from the launcher on the ``mpkernel-test`` kernelspec
and checks in the page what a person would see: printed text, rich HTML, an inline
matplotlib PNG, a traceback, an ``input()`` answered in the page, an ipywidgets slider
dragged with the mouse, the toolbar's interrupt, a restart from the Kernel menu, comms
served by a worker, and JupyterLab's debugger stopping at a breakpoint.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.support import artifact_name, require

require("chromium", "playwright")

from playwright.sync_api import Page, expect  # noqa: E402

from tests.e2e.notebook import UI_TIMEOUT_MS, Notebook  # noqa: E402
from tests.e2e.support import ARTIFACTS, KernelPeer, LabServer  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture
def notebook(page: Page, lab_server: LabServer) -> Notebook:
    return Notebook.open(page, lab_server)


def test_print(notebook: Notebook) -> None:
    cell = notebook.run("print('hello from mpkernel')")
    expect(notebook.outputs(cell)).to_have_text("hello from mpkernel", timeout=UI_TIMEOUT_MS)
    expect(notebook.prompt(cell)).to_have_text("[1]:", timeout=UI_TIMEOUT_MS)


def test_display_html(notebook: Notebook) -> None:
    cell = notebook.run(
        "from IPython.display import HTML, display\ndisplay(HTML('<b id=\"x\">bold</b>'))"
    )
    # Rendered as HTML: an element, not the markup as text.
    expect(notebook.outputs(cell).locator("b#x")).to_have_text("bold", timeout=UI_TIMEOUT_MS)


def test_matplotlib_inline_png(notebook: Notebook) -> None:
    cell = notebook.run(
        "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
    )
    img = notebook.outputs(cell).locator("img")
    expect(img).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(img).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    size = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert min(size) > 100, f"the PNG did not decode to a figure: {size}"


def test_error_traceback(notebook: Notebook) -> None:
    cell = notebook.run("def fail():\n    raise ValueError('boom from e2e')\n\nfail()")
    out = notebook.outputs(cell)
    expect(out).to_contain_text("ValueError: boom from e2e", timeout=UI_TIMEOUT_MS)
    expect(out).to_contain_text("Traceback", timeout=UI_TIMEOUT_MS)
    # Shown as an error (JupyterLab's traceback MIME type), not as plain output.
    expect(
        cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    ).to_have_count(1)


def test_input_answered_in_page(notebook: Notebook) -> None:
    cell = notebook.run("name = input('name? ')\nprint('hello', name)")
    box = cell.locator(".jp-Stdin-input")
    expect(box).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(cell.locator(".jp-Stdin-prompt")).to_contain_text("name?")
    box.fill("Ada")
    box.press("Enter")
    expect(notebook.outputs(cell).last).to_have_text("hello Ada", timeout=UI_TIMEOUT_MS)
    expect(box).to_have_count(0)


def test_slider_dragged_with_the_mouse(notebook: Notebook) -> None:
    cell = notebook.run(
        "import ipywidgets as widgets\nslider = widgets.IntSlider(value=10, min=0, max=100)\nslider"
    )
    out = notebook.outputs(cell)
    handle = out.locator(".noUi-handle")
    expect(handle).to_be_visible(timeout=UI_TIMEOUT_MS)
    readout = out.locator(".widget-readout")
    expect(readout).to_have_text("10")
    track = out.locator(".noUi-base").bounding_box()
    grip = handle.bounding_box()
    assert track is not None
    assert grip is not None
    y = grip["y"] + grip["height"] / 2
    page = notebook.page
    page.mouse.move(grip["x"] + grip["width"] / 2, y)
    page.mouse.down()
    # Three quarters of the way: far from the start value whatever the track's width.
    page.mouse.move(track["x"] + track["width"] * 0.75, y, steps=10)
    page.mouse.up()
    expect(readout).not_to_have_text("10", timeout=UI_TIMEOUT_MS)
    shown = int(readout.inner_text())
    assert 50 < shown < 100, f"dragging to 3/4 of the track gave {shown}"

    check = notebook.run("print(slider.value)")
    # The kernel's copy of the value, synced over the widget's comm.
    expect(notebook.outputs(check)).to_have_text(str(shown), timeout=UI_TIMEOUT_MS)


def test_interrupt_from_toolbar(notebook: Notebook) -> None:
    # The print says the sleep has begun: an interrupt sent before the cell started
    # would find no user code to interrupt.
    cell = notebook.run("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
    out = notebook.outputs(cell)
    expect(out.first).to_have_text("sleeping", timeout=UI_TIMEOUT_MS)
    expect(notebook.prompt(cell)).to_have_text("[*]:")
    notebook.interrupt()
    # Well before the 60 s the sleep would take.
    expect(out.last).to_contain_text("KeyboardInterrupt", timeout=UI_TIMEOUT_MS)
    expect(notebook.prompt(cell)).to_have_text("[1]:", timeout=UI_TIMEOUT_MS)
    notebook.wait_idle()
    after = notebook.run("print('still alive')")
    expect(notebook.outputs(after)).to_have_text("still alive", timeout=UI_TIMEOUT_MS)


def test_restart_from_kernel_menu(notebook: Notebook) -> None:
    notebook.run_done("before_restart = 42")
    notebook.wait_idle()
    notebook.restart()
    cell = notebook.run("before_restart")
    out = notebook.outputs(cell)
    expect(out).to_contain_text(
        "NameError: name 'before_restart' is not defined", timeout=UI_TIMEOUT_MS
    )
    # A new kernel process numbers its executions from 1 again.
    expect(notebook.prompt(cell)).to_have_text("[1]:")


@pytest.mark.mpkernel_only
def test_cell_opened_worker_comm_is_closed(
    notebook: Notebook, lab_server: LabServer, request: pytest.FixtureRequest
) -> None:
    """A comm that user code opens on a worker's target (``mpkernel.comms.open``), checked
    from a second client after the page is closed: the kernel no longer lists it, and the
    worker's handler saw its close.

    JupyterLab has no handler for ``mpkernel.echo``, so it answers the comm_open with a
    comm_close at once: the comm is closed by the page before the page goes away. What this
    proves end to end is that a comm_close from the browser reaches the worker (its
    ``on_close`` runs once) and leaves nothing in the kernel's registry.
    """
    cell = notebook.run(
        "import mpkernel.comms\n"
        "cid = mpkernel.comms.open('mpkernel.echo', {'from': 'a cell'})\n"
        "print(cid)"
    )
    out = notebook.outputs(cell)
    expect(out).to_have_text(re.compile(r"^[0-9a-f]{32}\s*$"), timeout=UI_TIMEOUT_MS)
    comm_id = out.inner_text().strip()
    kernel_id = lab_server.only_kernel_id()
    page = notebook.page
    page.screenshot(path=str(ARTIFACTS / f"{artifact_name(request.node.nodeid)}.png"))
    page.close()
    lab_server.wait_no_connections()

    with KernelPeer(lab_server.connection_file(kernel_id)) as peer:
        comms = peer.comm_info()
        assert comm_id not in comms, f"comm {comm_id} still open after the page went: {comms}"
        closes = [
            e for e in peer.echo_journal() if e["event"] == "close" and e["comm_id"] == comm_id
        ]
        assert len(closes) == 1, f"the echo handler's on_close ran {len(closes)} times: {closes}"


_OPEN_FROM_PAGE = """async () => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const comm = kernel.createComm('mpkernel.echo');
  const echoed = new Promise((resolve, reject) => {
    comm.onMsg = (msg) => resolve(msg.content.data);
    setTimeout(() => reject(new Error('no echo within 30 s')), 30000);
  });
  await comm.open({from: 'the page'}).done;
  await comm.send({ping: 'e2e'}).done;
  return {commId: comm.commId, echoed: await echoed};
}"""


@pytest.mark.mpkernel_only
def test_page_opened_worker_comm_after_page_closes(
    notebook: Notebook, lab_server: LabServer, request: pytest.FixtureRequest
) -> None:
    """A comm the page opens on a worker's target (as a JupyterLab extension would) is
    served through the browser's websocket; after the page is closed a second client
    still finds it open, and can close it.

    Closing the tab tells the kernel nothing: jupyter_server keeps the kernel's channels
    (buffering for a reconnect, and its activity monitor's IOPub subscription), so the
    kernel's "frontend disconnected" policy does not fire. The comm ends when someone
    closes it or when the session is shut down.
    """
    notebook.run_done("1 + 1")
    opened = notebook.page.evaluate(_OPEN_FROM_PAGE)
    comm_id = opened["commId"]
    assert opened["echoed"] == {"ping": "e2e"}, opened
    kernel_id = lab_server.only_kernel_id()

    with KernelPeer(lab_server.connection_file(kernel_id)) as peer:
        assert peer.comm_info().get(comm_id) == {"target_name": "mpkernel.echo"}
        page = notebook.page
        page.screenshot(path=str(ARTIFACTS / f"{artifact_name(request.node.nodeid)}.png"))
        page.close()
        lab_server.wait_no_connections()

        assert comm_id in peer.comm_info(), "the comm was closed when the page went"
        journal = peer.echo_journal()
        assert not [e for e in journal if e["comm_id"] == comm_id], journal

        peer.close_comm(comm_id)
        assert comm_id not in peer.comm_info()
        closes = [
            e for e in peer.echo_journal() if e["event"] == "close" and e["comm_id"] == comm_id
        ]
        assert len(closes) == 1, f"the echo handler's on_close ran {len(closes)} times: {closes}"


def test_debugger_breakpoint(notebook: Notebook) -> None:
    page = notebook.page
    notebook.panel.locator(".jp-DebuggerBugButton").click()
    # The panel shows the kernel's globals once the debugger has started and taken the
    # kernel's state; a breakpoint set before that would be replaced by the kernel's (none).
    expect(page.locator(".jp-DebuggerVariables-body:visible .jp-TreeItem").first).to_be_visible(
        timeout=UI_TIMEOUT_MS
    )

    cell = notebook.run_done("def add(a, b):\n    total = a + b\n    return total")
    line_two = cell.locator(".cm-lineNumbers .cm-gutterElement", has_text=re.compile(r"^2$"))
    gutter = cell.locator(".cm-gutter.cm-breakpoint-gutter").bounding_box()
    line = line_two.bounding_box()
    assert gutter is not None
    assert line is not None
    page.mouse.click(gutter["x"] + gutter["width"] / 2, line["y"] + line["height"] / 2)
    breakpoints = page.locator(".jp-DebuggerBreakpoints")
    expect(breakpoints.locator(".jp-DebuggerBreakpoint")).to_have_count(1, timeout=UI_TIMEOUT_MS)

    call = notebook.run("result = add(1, 2)\nprint('result', result)")
    paused = cell.locator(".cm-line.jp-DebuggerEditor-highlight")
    expect(paused).to_have_count(1, timeout=UI_TIMEOUT_MS)
    expect(paused).to_contain_text("total = a + b")
    variables = page.locator(".jp-DebuggerVariables-body:visible .jp-TreeItem")
    for name, value in (("a", "1"), ("b", "2")):
        item = variables.filter(
            has=page.locator(".jp-DebuggerVariables-name", has_text=re.compile(f"^{name}$"))
        )
        expect(item.locator(".jp-DebuggerVariables-detail")).to_have_text(
            value, timeout=UI_TIMEOUT_MS
        )
    expect(notebook.outputs(call)).to_have_count(0)

    page.locator('jp-button[data-command="debugger:continue"]').click()
    expect(notebook.outputs(call)).to_have_text("result 3", timeout=UI_TIMEOUT_MS)
    expect(paused).to_have_count(0)


_CONSOLE_HAS_A_SUBSHELL = """() => {
  for (const widget of window.jupyterapp.shell.widgets("main")) {
    const kernel = widget.console && widget.sessionContext?.session?.kernel;
    if (kernel && kernel.subshellId) return true;
  }
  return false;
}"""


def test_subshell_console_answers_while_the_notebook_runs(notebook: Notebook) -> None:
    """ "New Subshell Console for Notebook" on a notebook whose cell sleeps: the console's
    code runs on a subshell, in the notebook's namespace, while the cell still runs (its
    prompt still says [*]); the kernel's status stays busy meanwhile."""
    page = notebook.page
    notebook.run_done("x = 41")
    cell = notebook.run("import time\nprint('sleeping', flush=True)\ntime.sleep(30)")
    expect(notebook.outputs(cell).first).to_have_text("sleeping", timeout=UI_TIMEOUT_MS)
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".lm-CommandPalette-input")
    expect(palette).to_be_visible(timeout=UI_TIMEOUT_MS)
    palette.fill("New Subshell Console for Notebook")
    page.locator(
        ".lm-CommandPalette-item", has_text="New Subshell Console for Notebook"
    ).first.click(timeout=UI_TIMEOUT_MS)
    console = page.locator(".jp-ConsolePanel")
    editor = console.locator(".jp-CodeConsole-input .cm-content")
    expect(editor).to_be_visible(timeout=UI_TIMEOUT_MS)
    # JupyterLab shows the console before its subshell exists (it asks for one once the
    # kernel's info is in): code run in that instant goes to the busy main shell. A person
    # is slower than that; the test waits for the subshell as they would.
    page.wait_for_function(_CONSOLE_HAS_A_SUBSHELL, timeout=UI_TIMEOUT_MS)
    editor.click()
    page.keyboard.insert_text("print(x + 1)")
    page.keyboard.press("Shift+Enter")
    answer = console.locator(".jp-CodeConsole-content .jp-OutputArea-output")
    expect(answer.last).to_have_text("42", timeout=UI_TIMEOUT_MS)
    # The notebook's cell is still running: the console did not wait for it.
    expect(notebook.prompt(cell)).to_have_text("[*]:")
    expect(
        page.locator(".jp-StatusBar-TextItem", has_text=f"{notebook.server.display_name} | Busy")
    ).to_be_visible(timeout=UI_TIMEOUT_MS)
    notebook.panel.click()
    notebook.panel.locator(
        '.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]'
    ).click()
    expect(notebook.outputs(cell).last).to_contain_text("KeyboardInterrupt", timeout=UI_TIMEOUT_MS)
