"""A JupyterLab notebook as a test sees it in the page: open one from the launcher, run a
cell, find its outputs, follow the kernel's status (JupyterLab 4.6 selectors).

Imports Playwright: only modules that have checked for it (``support.require``) import this.
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.e2e.support import LabServer

#: Hang guard (ms) for what a kernel does in a test cell; none takes more than a second.
UI_TIMEOUT_MS = 30_000
#: Hang guard (ms) for a kernel to start (or restart) and its websocket to connect.
KERNEL_TIMEOUT_MS = 60_000

# Records every text the status bar's kernel item shows, so that a test can wait for the
# kernel to have left "Idle" and come back, however fast that happens.
_STATUS_RECORDER = """() => {
  const seen = [];
  const note = () => {
    for (const el of document.querySelectorAll('.jp-StatusBar-TextItem')) {
      const text = el.textContent || '';
      if (text.includes(' | ') && seen[seen.length - 1] !== text) seen.push(text);
    }
  };
  note();
  new MutationObserver(note).observe(document.body,
    {subtree: true, childList: true, characterData: true});
  window.__e2eKernelStatus = seen;
}"""


class Notebook:
    """The one notebook of a test's page, on the server's test kernelspec."""

    def __init__(self, page: Page, server: LabServer, display_name: str | None = None) -> None:
        self.page = page
        self.server = server
        self.display_name = display_name or server.display_name
        self.panel = page.locator(".jp-NotebookPanel")

    @classmethod
    def open(cls, page: Page, server: LabServer, display_name: str | None = None) -> Notebook:
        """A new notebook from the launcher card of the kernelspec (the server's test
        kernelspec unless ``display_name`` names another); returns once its kernel is
        connected and idle."""
        notebook = cls(page, server, display_name)
        # ?reset: without it JupyterLab restores the last workspace instead of the launcher.
        page.goto(f"{server.url}/lab?reset")
        card = page.locator(
            f'.jp-LauncherCard[data-category="Notebook"][title="{notebook.display_name}"]'
        )
        card.click(timeout=KERNEL_TIMEOUT_MS)
        expect(notebook.panel.locator(".jp-KernelName")).to_have_text(
            notebook.display_name, timeout=KERNEL_TIMEOUT_MS
        )
        notebook.wait_idle()
        return notebook

    def wait_idle(self, timeout: float = KERNEL_TIMEOUT_MS) -> None:
        """Until the status bar says the kernel is idle. The notebook toolbar's indicator
        says "idle" before any kernel exists, and a cell run then is silently dropped; the
        status bar names the kernel only once it is connected."""
        status = self.page.locator(".jp-StatusBar-TextItem", has_text=f"{self.display_name} | Idle")
        expect(status).to_be_visible(timeout=timeout)

    def record_kernel_status(self) -> None:
        self.page.evaluate(_STATUS_RECORDER)

    def wait_idle_again(self, timeout: float = KERNEL_TIMEOUT_MS) -> None:
        """Since ``record_kernel_status``: until the kernel was something else than idle
        (busy, restarting...) and is idle again."""
        self.page.wait_for_function(
            """() => {
              const seen = window.__e2eKernelStatus || [];
              const away = seen.findIndex(t => !t.endsWith('| Idle'));
              return away >= 0 && seen.slice(away).some(t => t.endsWith('| Idle'));
            }""",
            timeout=timeout,
        )
        self.wait_idle(timeout)

    def interrupt(self) -> None:
        """The notebook toolbar's interrupt button."""
        self.panel.locator(
            '.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]'
        ).click()

    def restart(self) -> None:
        """Kernel menu, Restart Kernel..., accept the dialog; returns once the kernel has
        gone away from idle and come back to it."""
        self.record_kernel_status()
        self.ask_restart()
        self.wait_idle_again()

    def ask_restart(self) -> None:
        """Kernel menu, Restart Kernel..., accept the dialog."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
        self.page.locator('.lm-Menu-item[data-command="kernelmenu:restart"]').click()
        dialog = self.page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("Restart Kernel?")
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        expect(dialog).to_have_count(0)

    @property
    def cells(self) -> Locator:
        return self.panel.locator(".jp-Notebook .jp-Cell")

    def run(self, code: str) -> Locator:
        """Type ``code`` into the last (empty) cell and run it with Shift+Enter; returns
        that cell. Does not wait for it to finish."""
        # Pinned by index: "last" would follow the new cell Shift+Enter adds.
        cell = self.cells.nth(self.cells.count() - 1)
        editor = cell.locator(".cm-content")
        expect(editor).to_have_text("", timeout=UI_TIMEOUT_MS)
        editor.click()
        # insert_text, not type: typing a newline would let the editor auto-indent.
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Shift+Enter")
        return cell

    def run_done(self, code: str) -> Locator:
        """``run`` and wait until the cell has its execution count."""
        cell = self.run(code)
        expect(self.prompt(cell)).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=UI_TIMEOUT_MS)
        return cell

    @staticmethod
    def outputs(cell: Locator) -> Locator:
        return cell.locator(".jp-OutputArea-output")

    @staticmethod
    def prompt(cell: Locator) -> Locator:
        return cell.locator(".jp-InputPrompt")
