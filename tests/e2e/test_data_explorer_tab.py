"""The data explorer tab of the mpkernel-panes JupyterLab extension, in headless Chromium.

"View" on a table in the Variables sidebar asks the kernel to open a
``positron.dataExplorer`` comm; the extension opens a main-area tab with a virtual grid
(@lumino/datagrid) over it, fetching rows a page at a time as the grid shows them. The
grid draws on a canvas: the tab's status line (its text and data attributes) tells what
was loaded, and the screenshot shows the grid.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.support import require

require("chromium", "playwright")

from playwright.sync_api import Page, expect  # noqa: E402

from tests.e2e.notebook import KERNEL_TIMEOUT_MS, UI_TIMEOUT_MS, Notebook  # noqa: E402
from tests.e2e.panes import Sidebar, record_timing  # noqa: E402
from tests.e2e.support import ARTIFACTS, LabServer  # noqa: E402

pytestmark = pytest.mark.e2e

ROWS = 10_000_000
#: The grid's geometry (explorer.ts): row header width, column width, header height.
ROW_HEADER_WIDTH = 90
COLUMN_WIDTH = 140
HEADER_HEIGHT = 24


def test_view_a_10m_row_frame_sort_and_scroll(page: Page, lab_server: LabServer) -> None:
    notebook = Notebook.open(page, lab_server)
    sidebar = Sidebar.open(page)
    notebook.run_done(
        "import numpy as np, pandas as pd\n"
        f"df = pd.DataFrame({{'n': np.arange({ROWS}), 'half': np.arange({ROWS}) / 2}})"
    )
    start = time.monotonic()
    sidebar.row("df").locator(".mpk-Variables-view").click()
    status = page.locator(".mpk-Explorer-status")
    expect(status).to_have_attribute("data-first-value", "0", timeout=KERNEL_TIMEOUT_MS)
    record_timing(
        "View on a 10M-row frame: click to its first rows loaded (wall clock)",
        (time.monotonic() - start) * 1000,
    )
    expect(status).to_have_attribute("data-loaded-first", "0")
    expect(status).to_contain_text("10,000,000 rows")

    grid = page.locator(".mpk-Explorer-grid")
    header_n = {"x": ROW_HEADER_WIDTH + COLUMN_WIDTH // 2, "y": HEADER_HEIGHT // 2}
    grid.click(position=header_n)
    expect(status).to_have_attribute("data-sort", "sorted by n ascending", timeout=UI_TIMEOUT_MS)
    grid.click(position=header_n)
    expect(status).to_have_attribute("data-sort", "sorted by n descending", timeout=UI_TIMEOUT_MS)
    expect(status).to_have_attribute("data-first-value", "9,999,999", timeout=UI_TIMEOUT_MS)

    # The summary of a column: computed by the explorer's worker, shown when it comes.
    page.locator(".mpk-Explorer-summaryColumn").select_option(label="n")
    summary = page.locator(".mpk-Explorer-summary")
    expect(summary).to_contain_text("nulls 0", timeout=KERNEL_TIMEOUT_MS)
    expect(summary).to_contain_text("max 9,999,999")

    # A row filter, and a value that is not a number (the kernel says so), then cleared.
    page.locator(".mpk-Explorer-filterColumn").select_option(label="n")
    page.locator(".mpk-Explorer-filterOp").select_option("<")
    page.locator(".mpk-Explorer-filterValue").fill("10")
    page.locator(".mpk-Explorer-filterApply").click()
    expect(status).to_contain_text("10 of 10,000,000 rows", timeout=UI_TIMEOUT_MS)
    expect(status).to_have_attribute("data-first-value", "9", timeout=UI_TIMEOUT_MS)
    page.locator(".mpk-Explorer-filterValue").fill("ten")
    page.locator(".mpk-Explorer-filterApply").click()
    expect(page.locator(".mpk-Explorer-filterMessage")).not_to_be_empty(timeout=UI_TIMEOUT_MS)
    page.locator(".mpk-Explorer-filterClear").click()
    expect(status).to_contain_text("10,000,000 rows", timeout=UI_TIMEOUT_MS)
    expect(status).not_to_contain_text(" of ")
    expect(page.locator(".mpk-Explorer-filterMessage")).to_be_empty()

    # Drag the vertical scroll bar's thumb to the middle: rows around 5,000,000 load.
    thumb = page.locator(
        ".mpk-Explorer-grid .lm-ScrollBar[data-orientation='vertical'] .lm-ScrollBar-thumb"
    )
    bar = page.locator(".mpk-Explorer-grid .lm-ScrollBar[data-orientation='vertical']")
    box = thumb.bounding_box()
    bar_box = bar.bounding_box()
    assert box is not None
    assert bar_box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, bar_box["y"] + bar_box["height"] / 2, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "() => Number(document.querySelector('.mpk-Explorer-status').dataset.loadedFirst)"
        " > 4000000",
        timeout=UI_TIMEOUT_MS,
    )
    page.screenshot(path=str(ARTIFACTS / "data_explorer_tab.png"))

    # The kernel still answers the notebook.
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=".ipynb").first.click()
    cell = notebook.run("1+1")
    expect(notebook.outputs(cell)).to_have_text("2", timeout=UI_TIMEOUT_MS)


def test_a_viewer_opened_by_the_kernel_gets_a_tab_that_follows_the_data(
    page: Page, lab_server: LabServer
) -> None:
    notebook = Notebook.open(page, lab_server)
    notebook.run_done(
        "import mpkernel, pandas as pd\n"
        "small = pd.DataFrame({'x': [3, 1, 2], 'label': ['c', 'a', 'b']})\n"
        "mpkernel.view(small, 'small frame')"
    )
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="small frame")
    expect(tab).to_be_visible(timeout=KERNEL_TIMEOUT_MS)
    status = page.locator(".mpk-Explorer-status")
    expect(status).to_have_attribute("data-first-value", "3", timeout=UI_TIMEOUT_MS)
    expect(status).to_contain_text("3 rows")

    # A cell that changes the frame: the kernel's data_update drops the grid's rows, and
    # the grid fetches them again when its tab is shown.
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=".ipynb").first.click()
    notebook.run_done("small.iloc[0, 0] = 42")
    tab.click()
    expect(status).to_have_attribute("data-first-value", "42", timeout=UI_TIMEOUT_MS)

    # The %view magic opens one more, titled with its expression.
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=".ipynb").first.click()
    notebook.run_done("%view small")
    titled = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab .lm-TabBar-tabLabel")
    expect(titled.filter(has_text=re.compile(r"^small$"))).to_have_count(
        1, timeout=KERNEL_TIMEOUT_MS
    )
    expect(page.locator(".mpk-Explorer-status").last).to_contain_text(
        "3 rows", timeout=UI_TIMEOUT_MS
    )
