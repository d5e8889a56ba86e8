"""Fixtures of the end-to-end tests: one JupyterLab server and one headless Chromium for all
of tests/e2e, a fresh browser page per test, and a screenshot of every test.

The server (``lab_server``) and the browser (``browser``) are shut down after the last test
of tests/e2e (not at the end of a whole-suite run), whatever the outcome, and psutil must
then find none of their processes: not the server, not a kernel it started, not a worker,
not a Chromium process. After each test (``page``), its screenshot goes to
tests/e2e/artifacts/ (``<test>.png``, or ``<test>-failed.png`` with the page's console next
to it when the test failed), and every session the test opened is shut down through the
REST API with its kernel's processes checked gone.

Playwright is imported lazily: without it (or without /usr/bin/chromium) the browser tests
skip, or fail under CI=true, while the console tests still run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from tests.e2e.support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LabServer,
    artifact_name,
    require,
    start_lab_server,
)
from tests.frontend import PROCESS_EXIT_TIMEOUT, process_tree, wait_gone

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
#: Playwright's own wait for a UI action (click, fill); assertions pass their own timeout.
ACTION_TIMEOUT_MS = 30_000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, for the screenshot's name at teardown."""
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(item: pytest.Item) -> bool:
    return any(r.failed for r in item.stash.get(_REPORTS, {}).values())


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """tests/e2e/artifacts/, emptied of an earlier run's files."""
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.iterdir():
        if old.is_file() and old.suffix in (".png", ".txt", ".log"):
            old.unlink()
    return ARTIFACTS


@pytest.fixture(scope="package")
def lab_server(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[LabServer]:
    server = start_lab_server(tmp_path_factory.mktemp("jupyterlab"), artifacts / "jupyterlab.log")
    try:
        yield server
    finally:
        server.stop()


def _playwright_processes() -> list[psutil.Process]:
    """Playwright's driver (a child of this process) and the browsers under it."""
    procs: list[psutil.Process] = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if any("playwright" in arg for arg in child.cmdline()):
                procs += process_tree(child.pid)
    return procs


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    require("chromium", "playwright")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    procs = _playwright_processes()
    try:
        # Debian's Chromium: Playwright's own browser builds cannot be downloaded here.
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        procs = _playwright_processes()
        # Else the leftover check below would have nothing to check.
        assert any(p.name() == "chromium" for p in procs), f"no Chromium under Playwright: {procs}"
        try:
            yield browser
        finally:
            procs = _playwright_processes()
            browser.close()
    finally:
        pw.stop()
        survivors = wait_gone(procs, PROCESS_EXIT_TIMEOUT)
        for p in survivors:
            with contextlib.suppress(psutil.Error):
                p.kill()
        assert not survivors, f"browser processes left behind: {[p.pid for p in survivors]}"


@pytest.fixture
def page(
    browser: Browser, lab_server: LabServer, request: pytest.FixtureRequest, artifacts: Path
) -> Iterator[Page]:
    """A new browser page of its own; afterwards its screenshot, and every session on the
    server shut down."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        yield page
    finally:
        name = artifact_name(request.node.nodeid)
        try:
            if _failed(request.node):
                (artifacts / f"{name}-console.txt").write_text("\n".join(console) + "\n")
                if not page.is_closed():
                    page.screenshot(path=str(artifacts / f"{name}-failed.png"))
            elif not page.is_closed():
                page.screenshot(path=str(artifacts / f"{name}.png"))
        finally:
            try:
                context.close()
            finally:
                lab_server.shutdown_sessions()
