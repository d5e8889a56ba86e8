"""JupyterLab's variable panes while a cell sleeps, side by side in headless Chromium.

- A: mpkernel with the mpkernel-panes Variables sidebar. A notebook defines a dict and a
  pandas frame, then runs ``time.sleep(S)``; while it sleeps the benchmark clicks the dict's
  row, then the frame's row: click to children shown.
- B: ipykernel (the ``python3`` kernelspec of this venv) with
  lckr-jupyterlab-variableinspector 3.2 (pyproject.toml's ``lab-inspector`` extra). The same
  notebook; while the cell sleeps, a click on the frame's "View Contents" button in the
  inspector: click to its matrix viewer's tab. The inspector runs code in the kernel, so the
  answer waits for the cell; the wait is bounded at S + ``--margin`` and reported.

    .venv/bin/python tools/bench_lab_panes.py [--rounds 5] [--sleep 10] [--margin 15]

Every time is taken in the page (``performance.now()`` before the click, a MutationObserver
on the answer), so Playwright's polling is not in it. The inspector is installed with
``pip install --no-deps --prefix tools/.bench-lab`` (git-ignored) and put on JUPYTER_PATH of
B's JupyterLab only: installed into .venv it would load in every page of tests/e2e's
JupyterLab and run code in their kernels. Both servers are the JupyterLab of this venv,
started as tests/e2e starts it (tests/e2e/support.py), with the tests' private Jupyter and
IPython dirs, removed at the end.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]  # absent on 3.11+

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright  # noqa: E402

# tests.conftest (the e2e support imports it) sets up the tests' private JUPYTER_PATH (with
# the mpkernel-test kernelspec), IPYTHONDIR, runtime dir and TMPDIR in one temporary dir.
import tests.conftest as test_env  # noqa: E402
from tests.e2e.notebook import UI_TIMEOUT_MS, Notebook  # noqa: E402
from tests.e2e.panes import PANEL, Sidebar  # noqa: E402
from tests.e2e.support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    LabServer,
    missing,
    start_lab_server,
)

# pytest's session end removes that dir after the tests; here, the end of this process does.
atexit.register(shutil.rmtree, test_env._TMP, True)

INSPECTOR_PREFIX = ROOT / "tools" / ".bench-lab"
INSPECTOR_SHARE = INSPECTOR_PREFIX / "share" / "jupyter"
INSPECTOR_EXTENSION = INSPECTOR_SHARE / "labextensions" / "@lckr" / "jupyterlab_variableinspector"
IPYKERNEL_TITLE = "Python 3 (ipykernel)"
DICT, FRAME = "bench_dict", "bench_df"
SETUP_CELL = (
    "import time\nimport pandas as pd\n"
    f"{DICT} = {{'alpha': 1, 'beta': [2, 3], 'gamma': 'text'}}\n"
    f"{FRAME} = pd.DataFrame({{'x': range(1000), 'y': [i * 0.5 for i in range(1000)]}})"
)
DICT_CHILDREN, FRAME_COLUMNS = 3, 2

# Clicks ``target`` and resolves with the time until ``count`` elements match ``selector``
# (with exactly ``text`` when given), and when the cell's prompt got its execution count
# (null if not yet); ms is null if nothing answered within ``boundMs``.
_CLICK_TO_ANSWER = """async ({target, prompt, selector, text, count, boundMs}) => {
  const answered = () => [...document.querySelectorAll(selector)]
    .filter(el => text === null || (el.textContent || '').trim() === text).length >= count;
  const finished = () => /^\\[\\d+\\]:$/.test((prompt.textContent || '').trim());
  return await new Promise(resolve => {
    let cellEndMs = null;
    let timer = null;
    const t0 = performance.now();
    const observer = new MutationObserver(() => {
      const now = performance.now() - t0;
      if (cellEndMs === null && finished()) cellEndMs = now;
      if (answered()) {
        observer.disconnect();
        clearTimeout(timer);
        resolve({ms: now, cellEndMs});
      }
    });
    observer.observe(document.body,
      {subtree: true, childList: true, characterData: true, attributes: true});
    timer = setTimeout(() => {
      observer.disconnect();
      resolve({ms: null, cellEndMs});
    }, boundMs);
    target.click();
  });
}"""

# The inspector opens as a tab over the notebook: moved to the notebook's right, both shown.
_OPEN_INSPECTOR = """async () => {
  const app = window.jupyterapp;
  await app.commands.execute('variableinspector:open');
  const panel = [...app.shell.widgets('main')].find(w => w.id === 'jp-variableinspector');
  app.shell.add(panel, 'main', {mode: 'split-right'});
  app.shell.activateById(document.querySelector('.jp-NotebookPanel').id);
}"""

_CLOSE_TABS = """label => {
  const app = window.jupyterapp;
  for (const w of [...app.shell.widgets('main')]) if (w.title.label === label) w.close();
}"""


class BenchError(RuntimeError):
    """The benchmark could not measure what it meant to."""


@dataclass
class Samples:
    """One figure over the rounds, in ms; None for an answer that did not come in time."""

    label: str
    values: list[float | None] = field(default_factory=list)

    def got(self) -> list[float]:
        return [v for v in self.values if v is not None]

    def cell(self) -> str:
        got = self.got()
        if not got:
            return "no answer"
        text = f"{min(got):.1f} / {statistics.median(got):.1f} / {max(got):.1f}"
        lost = len(self.values) - len(got)
        return text + (f" ({lost} timed out)" if lost else "")


def inspector_requirement() -> str:
    """The ``lab-inspector`` extra of pyproject.toml: the inspector B runs."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    requirement: str = extras["lab-inspector"][0]
    return requirement


def install_inspector() -> Path:
    """The inspector's prebuilt extension under tools/.bench-lab (installed on first use);
    returns the Jupyter data dir holding it."""
    if not (INSPECTOR_EXTENSION / "package.json").is_file():
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        subprocess.run(
            [*pip, "--prefix", str(INSPECTOR_PREFIX), inspector_requirement()], check=True
        )
    return INSPECTOR_SHARE


@contextlib.contextmanager
def lab(base: Path, name: str, extra_jupyter_path: Path | None = None) -> Iterator[LabServer]:
    """A JupyterLab server (stopped, its kernels checked gone, on exit); with
    ``extra_jupyter_path`` its JUPYTER_PATH ends with that dir."""
    saved = os.environ.get("JUPYTER_PATH", "")
    if extra_jupyter_path is not None:
        os.environ["JUPYTER_PATH"] = saved + os.pathsep + str(extra_jupyter_path)
    try:
        server = start_lab_server(base / name, base / f"{name}.log")
    finally:
        os.environ["JUPYTER_PATH"] = saved
    try:
        yield server
    finally:
        server.stop()


def click_to_answer(
    page: Page,
    target: Locator,
    cell: Locator,
    selector: str,
    count: int,
    bound_s: float,
    text: str | None = None,
) -> tuple[float | None, float | None]:
    """Click ``target`` in the page; the ms until ``count`` elements match ``selector`` (with
    exactly ``text`` if given), None after ``bound_s``, and the ms until ``cell`` had ended
    (None if it had not by then)."""
    result: dict[str, float | None] = page.evaluate(
        _CLICK_TO_ANSWER,
        {
            "target": target.element_handle(),
            "prompt": Notebook.prompt(cell).element_handle(),
            "selector": selector,
            "text": text,
            "count": count,
            "boundMs": bound_s * 1000,
        },
    )
    return result["ms"], result["cellEndMs"]


def sleeping_cell(notebook: Notebook, sleep_s: float) -> Locator:
    """Run the sleeping cell; returns it once it has printed that it sleeps."""
    cell = notebook.run(f"print('sleeping', flush=True)\ntime.sleep({sleep_s})")
    expect(notebook.outputs(cell)).to_have_text("sleeping", timeout=UI_TIMEOUT_MS)
    return cell


def wait_cell_done(notebook: Notebook, cell: Locator, sleep_s: float) -> None:
    expect(notebook.prompt(cell)).to_have_text(
        re.compile(r"^\[\d+\]:$"), timeout=UI_TIMEOUT_MS + sleep_s * 1000
    )


def run_mpkernel(browser: Browser, server: LabServer, args: argparse.Namespace) -> list[Samples]:
    """A: the dict's and the frame's expand in the Variables sidebar while the cell sleeps."""
    dict_s = Samples("A: mpkernel sidebar, expand the dict")
    frame_s = Samples("A: mpkernel sidebar, expand the frame")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        notebook = Notebook.open(page, server)
        sidebar = Sidebar.open(page)
        notebook.run_done(SETUP_CELL)
        expect(sidebar.row(FRAME)).to_be_visible(timeout=UI_TIMEOUT_MS)
        for _ in range(args.rounds):
            cell = sleeping_cell(notebook, args.sleep)
            for name, count, samples in (
                (DICT, DICT_CHILDREN, dict_s),
                (FRAME, FRAME_COLUMNS, frame_s),
            ):
                children = f'{PANEL} tr.mpk-Variables-row[data-depth="1"][data-root="{name}"]'
                ms, cell_end = click_to_answer(
                    page, sidebar.row(name), cell, children, count, args.sleep
                )
                if ms is not None and cell_end is not None:
                    raise BenchError(f"the cell ended before the {name} expand was answered")
                samples.values.append(ms)
            wait_cell_done(notebook, cell, args.sleep)
            for name in (DICT, FRAME):
                # On the row itself: a click at its center could land on the frame's View.
                sidebar.row(name).dispatch_event("click")
                expect(sidebar.children(name)).to_have_count(0, timeout=UI_TIMEOUT_MS)
    finally:
        context.close()
        server.shutdown_sessions()
    return [dict_s, frame_s]


def run_inspector(browser: Browser, server: LabServer, args: argparse.Namespace) -> list[Samples]:
    """B: the frame's "View Contents" in the variable inspector while the cell sleeps."""
    viewer = Samples("B: variableinspector, view the frame")
    after_end = Samples("B: from the cell's end to the viewer")
    tab = f"DataFrame: {FRAME}"
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        notebook = Notebook.open(page, server, IPYKERNEL_TITLE)
        page.evaluate(_OPEN_INSPECTOR)
        notebook.run_done(SETUP_CELL)
        name_cell = page.locator(".jp-VarInspector-varName", has_text=FRAME)
        expect(name_cell).to_be_visible(timeout=UI_TIMEOUT_MS)
        # The button's own element has the handler (el.click(), not a click at its center).
        button = page.locator(".jp-VarInspector-table-row", has=name_cell).locator(
            ".jp-VarInspector-inspectButton .icon-button"
        )
        labels = page.locator(".lm-TabBar-tabLabel", has_text=tab)
        for _ in range(args.rounds):
            cell = sleeping_cell(notebook, args.sleep)
            bound = args.sleep + args.margin
            ms, cell_end = click_to_answer(
                page, button, cell, ".lm-TabBar-tabLabel", 1, bound, text=tab
            )
            viewer.values.append(ms)
            after_end.values.append(None if ms is None or cell_end is None else ms - cell_end)
            wait_cell_done(notebook, cell, args.sleep)
            # Each viewer splits the main area: closed, so that the notebook keeps its room.
            page.evaluate(_CLOSE_TABS, tab)
            expect(labels).to_have_count(0, timeout=UI_TIMEOUT_MS)
    finally:
        context.close()
        server.shutdown_sessions()
    return [viewer, after_end]


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sleep", type=float, default=10.0, help="S: the cell's time.sleep(S)")
    parser.add_argument("--margin", type=float, default=15.0, help="B's bound is S + margin")
    args = parser.parse_args()
    absent = missing("chromium")
    if absent:
        print("this benchmark needs " + ", ".join(absent), file=sys.stderr)
        return 2
    share = install_inspector()
    base = Path(tempfile.mkdtemp(prefix="bench-lab-panes-"))
    try:
        with chromium() as browser:
            with lab(base, "mpkernel") as server:
                a = run_mpkernel(browser, server, args)
            with lab(base, "ipykernel", share) as server:
                b = run_inspector(browser, server, args)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(a + b, args)
    return 0


def report(samples: list[Samples], args: argparse.Namespace) -> None:
    print(
        f"\nwhile a cell runs time.sleep({args.sleep:g}): click to answer in the page, ms, "
        f"min / median / max over {args.rounds} rounds "
        f"(B bounded at {args.sleep + args.margin:g} s)"
    )
    width = max(len(s.label) for s in samples)
    for s in samples:
        print(f"  {s.label:<{width}}  {s.cell()}")
    frame_a, frame_b = samples[1].got(), samples[2].got()
    dict_a = samples[0].got()
    if frame_a and frame_b and dict_a:
        b = statistics.median(frame_b)
        print(
            f"  ratio B / A (medians): {b / statistics.median(dict_a):.0f}x against the dict, "
            f"{b / statistics.median(frame_a):.0f}x against the frame"
        )


if __name__ == "__main__":
    sys.exit(main())
