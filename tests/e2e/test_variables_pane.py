"""The Variables sidebar of the mpkernel-panes JupyterLab extension, in headless Chromium.

The sidebar opens a ``positron.variables`` comm on the notebook's kernel only once it is
shown; the comm is served by the kernel's variables worker, so it answers while a cell
runs. Each test opens a notebook from the launcher, then the sidebar from its tab, and
checks what a person sees in it. How long the pane took (a cell's variable appearing, an
expand answered while a cell sleeps) goes to tests/e2e/artifacts/panes-timings.txt:
the figures are reported, not asserted.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import require

require("chromium", "playwright")

from playwright.sync_api import Page, expect  # noqa: E402

from tests.e2e.notebook import KERNEL_TIMEOUT_MS, UI_TIMEOUT_MS, Notebook  # noqa: E402
from tests.e2e.panes import Sidebar, record_timing  # noqa: E402
from tests.e2e.support import KernelPeer, LabServer, write_kernelspec  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture
def notebook(page: Page, lab_server: LabServer) -> Notebook:
    return Notebook.open(page, lab_server)


def test_nothing_opened_until_the_pane_is_shown(notebook: Notebook, lab_server: LabServer) -> None:
    notebook.run_done("x = 1")
    with KernelPeer(lab_server.connection_file(lab_server.only_kernel_id())) as peer:
        assert "positron.variables" not in str(peer.comm_info())
        sidebar = Sidebar.open(notebook.page)
        expect(sidebar.row("x")).to_be_visible(timeout=UI_TIMEOUT_MS)
        comms = peer.comm_info()
    targets = sorted(c["target_name"] for c in comms.values())
    # Besides its comm, the pane may still be closing the short-lived status comm it asks
    # for the variables worker's crash count.
    assert targets in (["positron.variables"], ["mpkernel.health", "positron.variables"]), comms


def test_a_cell_variable_appears_and_a_dict_expands(notebook: Notebook) -> None:
    sidebar = Sidebar.open(notebook.page)
    expect(sidebar.status).to_have_text("No variables yet.", timeout=UI_TIMEOUT_MS)
    start = time.monotonic()
    notebook.run("zz = 12345")
    row = sidebar.row("zz")
    expect(sidebar.value(row)).to_have_text("12345", timeout=UI_TIMEOUT_MS)
    record_timing(
        "zz = 12345: Shift+Enter to its row in the sidebar (wall clock)",
        (time.monotonic() - start) * 1000,
    )
    expect(row.locator(".mpk-Variables-type")).to_have_text("int", timeout=UI_TIMEOUT_MS)

    notebook.run_done("d = {'alpha': 1, 'beta': [2, 3]}\nzz = 6")
    expect(sidebar.value(sidebar.row("zz"))).to_have_text("6", timeout=UI_TIMEOUT_MS)
    # Sorted by name, whatever the order of assignment.
    expect(sidebar.panel.locator('tr.mpk-Variables-row[data-depth="0"]').first).to_have_attribute(
        "data-name", "d", timeout=UI_TIMEOUT_MS
    )
    sidebar.row("d").click()
    expect(sidebar.children("d")).to_have_count(2, timeout=UI_TIMEOUT_MS)
    expect(sidebar.value(sidebar.row("alpha", depth=1))).to_have_text("1")
    expect(sidebar.value(sidebar.row("beta", depth=1))).to_have_text("[2, 3]")

    # Live: a cell that changes the dict re-expands it from the pane's update event.
    notebook.run_done("d['gamma'] = 'new'")
    expect(sidebar.children("d")).to_have_count(3, timeout=UI_TIMEOUT_MS)
    notebook.run_done("del d")
    expect(sidebar.row("d")).to_have_count(0, timeout=UI_TIMEOUT_MS)
    expect(sidebar.children("d")).to_have_count(0)


def test_expand_answers_while_a_cell_runs(notebook: Notebook) -> None:
    sidebar = Sidebar.open(notebook.page)
    notebook.run_done("import time\nbig = {'k%d' % i: i for i in range(5)}")
    expect(sidebar.row("big")).to_be_visible(timeout=UI_TIMEOUT_MS)
    cell = notebook.run("print('sleeping', flush=True)\ntime.sleep(30)")
    expect(notebook.outputs(cell)).to_have_text("sleeping", timeout=UI_TIMEOUT_MS)
    sidebar.row("big").click()
    expect(sidebar.children("big")).to_have_count(5, timeout=UI_TIMEOUT_MS)
    # The cell is still running: its prompt has no execution count yet.
    expect(notebook.prompt(cell)).to_have_text("[*]:")
    answer_ms = sidebar.row("big").get_attribute("data-answer-ms")
    assert answer_ms is not None
    record_timing(
        "expand of a dict while a cell sleeps: click to children shown (in page)", float(answer_ms)
    )


def test_worker_sigkill_is_shown_and_the_pane_recovers(
    notebook: Notebook, lab_server: LabServer
) -> None:
    sidebar = Sidebar.open(notebook.page)
    notebook.run_done("before = 1")
    expect(sidebar.row("before")).to_be_visible(timeout=UI_TIMEOUT_MS)
    with KernelPeer(lab_server.connection_file(lab_server.only_kernel_id())) as peer:
        pid = peer.worker_pid("variables")
        os.kill(pid, signal.SIGKILL)
        expect(sidebar.notice).to_contain_text("crashed", timeout=KERNEL_TIMEOUT_MS)
        notebook.run_done("after = 2")
        expect(sidebar.value(sidebar.row("after"))).to_have_text("2", timeout=KERNEL_TIMEOUT_MS)
        expect(sidebar.row("before")).to_be_visible()
        assert peer.worker_pid("variables") != pid


def test_another_kernel_is_told_plainly(page: Page, lab_server: LabServer) -> None:
    Notebook.open(page, lab_server, "Python 3 (ipykernel)")
    sidebar = Sidebar.open(page)
    expect(sidebar.status).to_contain_text("needs the mpkernel kernel", timeout=UI_TIMEOUT_MS)
    expect(sidebar.panel.locator("tr.mpk-Variables-row")).to_have_count(0)


@pytest.fixture
def closing_kernel(lab_server: LabServer, tmp_path: Path) -> Iterator[str]:
    """The display name of a kernelspec whose variables comms get a worker each: when that
    worker crashes, the kernel closes the pane's comm (reason ``worker_crashed``) instead
    of reopening it on a restarted shared worker, and a new comm gets a new worker."""
    config = tmp_path / "config.toml"
    config.write_text('[workers.variables]\nprocesses = "per-comm"\n', encoding="utf-8")
    name = "mpkernel-test-closing"
    display_name = write_kernelspec(
        lab_server.jupyter_path,
        name,
        "mpkernel-test (comms closed on a crash)",
        MPKERNEL_CONFIG=str(config),
    )
    try:
        yield display_name
    finally:
        shutil.rmtree(lab_server.jupyter_path / "kernels" / name)


def test_a_comm_closed_by_a_crash_is_shown_and_reopened(
    page: Page, lab_server: LabServer, closing_kernel: str
) -> None:
    notebook = Notebook.open(page, lab_server, closing_kernel)
    sidebar = Sidebar.open(page)
    notebook.run_done("before = 1")
    expect(sidebar.row("before")).to_be_visible(timeout=UI_TIMEOUT_MS)
    with KernelPeer(lab_server.connection_file(lab_server.only_kernel_id())) as peer:
        pid = peer.worker_pid("variables")
        os.kill(pid, signal.SIGKILL)
        expect(sidebar.notice).to_contain_text(
            "The variables worker crashed", timeout=KERNEL_TIMEOUT_MS
        )
        expect(sidebar.notice).to_contain_text(
            "reopened on a new worker", timeout=KERNEL_TIMEOUT_MS
        )
        notebook.run_done("after = 2")
        expect(sidebar.value(sidebar.row("after"))).to_have_text("2", timeout=UI_TIMEOUT_MS)
        expect(sidebar.row("before")).to_be_visible()
        assert peer.worker_pid("variables") != pid
        targets = [c["target_name"] for c in peer.comm_info().values()]
        assert targets.count("positron.variables") == 1, targets


def test_the_pane_follows_the_current_console_or_notebook(
    page: Page, lab_server: LabServer
) -> None:
    page.goto(f"{lab_server.url}/lab?reset")
    title = lab_server.display_name
    page.locator(f'.jp-LauncherCard[data-category="Console"][title="{title}"]').click(
        timeout=KERNEL_TIMEOUT_MS
    )
    expect(page.locator(".jp-StatusBar-TextItem", has_text=f"{title} | Idle")).to_be_visible(
        timeout=KERNEL_TIMEOUT_MS
    )
    sidebar = Sidebar.open(page)
    prompt = page.locator(".jp-CodeConsole-promptCell .cm-content")
    prompt.click()
    page.keyboard.insert_text("in_console = 7")
    page.keyboard.press("Shift+Enter")
    expect(sidebar.value(sidebar.row("in_console"))).to_have_text("7", timeout=UI_TIMEOUT_MS)

    # A notebook of its own kernel becomes current: the pane shows that kernel's variables.
    # The dock's "+" opens a launcher.
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-addButton").first.click()
    page.locator(f'.jp-LauncherCard[data-category="Notebook"][title="{title}"]').click(
        timeout=KERNEL_TIMEOUT_MS
    )
    notebook = Notebook(page, lab_server)
    expect(notebook.panel.locator(".jp-KernelName")).to_have_text(title, timeout=KERNEL_TIMEOUT_MS)
    notebook.wait_idle()
    notebook.run_done("in_notebook = 8")
    expect(sidebar.value(sidebar.row("in_notebook"))).to_have_text("8", timeout=UI_TIMEOUT_MS)
    expect(sidebar.row("in_console")).to_have_count(0)

    # Back to the console's tab: its kernel's variables again.
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Console").first.click()
    expect(sidebar.value(sidebar.row("in_console"))).to_have_text("7", timeout=UI_TIMEOUT_MS)
    expect(sidebar.row("in_notebook")).to_have_count(0)
