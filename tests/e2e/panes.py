"""The mpkernel-panes extension as a test sees it in the page: the Variables sidebar, and
where the panes' timings go (figures for the docs, never assertions).

Imports Playwright: only modules that have checked for it (``support.require``) import this.
"""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.e2e.notebook import UI_TIMEOUT_MS
from tests.e2e.support import ARTIFACTS

PANEL = "#mpkernel-variables"
TIMINGS = ARTIFACTS / "panes-timings.txt"


def record_timing(what: str, ms: float) -> None:
    """Append a measured figure to the artifacts' panes-timings.txt."""
    with TIMINGS.open("a", encoding="utf-8") as f:
        f.write(f"{what}: {ms:.1f} ms\n")


class Sidebar:
    """The Variables sidebar of a page, opened from its tab in the left area."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.panel = page.locator(PANEL)
        self.status = self.panel.locator(".mpk-Variables-status")
        self.notice = self.panel.locator(".mpk-Variables-notice")

    @classmethod
    def open(cls, page: Page) -> Sidebar:
        page.locator('.jp-SideBar .lm-TabBar-tab[data-id="mpkernel-variables"]').click()
        sidebar = cls(page)
        expect(sidebar.panel).to_be_visible(timeout=UI_TIMEOUT_MS)
        return sidebar

    def row(self, name: str, depth: int = 0) -> Locator:
        return self.panel.locator(f'tr.mpk-Variables-row[data-name="{name}"][data-depth="{depth}"]')

    def children(self, name: str) -> Locator:
        """The rows one level under the top-level row ``name`` (once it is expanded)."""
        return self.panel.locator(f'tr.mpk-Variables-row[data-depth="1"][data-root="{name}"]')

    @staticmethod
    def value(row: Locator) -> Locator:
        return row.locator(".mpk-Variables-value")
