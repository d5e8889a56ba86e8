"""mpkernel in ``jupyter console``, driven through tmux as a person at a terminal would.

The console runs in a tmux session on a private tmux server (its own socket: nobody else's
sessions or environment mix in, and killing that server kills nothing else). The test types
with ``send-keys`` and reads the screen with ``capture-pane``; between two looks it blocks on
the pane's output, which tmux copies into a FIFO (``pipe-pane``), so it waits on the console
doing something rather than on a clock. The last screen is saved to tests/e2e/artifacts/.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import KERNEL_NAME
from tests.e2e.support import require
from tests.frontend import PROCESS_EXIT_TIMEOUT, process_tree, wait_gone

require("tmux")

pytestmark = pytest.mark.e2e

#: Hang guards (seconds).
START_TIMEOUT = 60.0
STEP_TIMEOUT = 30.0
#: Longest a look at the screen waits for the pane's output before looking again anyway.
MAX_QUIET = 1.0


class TmuxPane:
    """One tmux session with a single pane, on a tmux server of its own."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.socket = workdir / "tmux.sock"
        self.fifo = workdir / "pane-output"
        self.name = name
        self.screen_text = ""
        self._fd: int | None = None

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=STEP_TIMEOUT,
        )

    def start(self, command: str) -> None:
        # The tmux server starts here, with this process's environment: the private
        # JUPYTER_PATH / IPYTHONDIR / runtime dir of tests/conftest.py.
        self.tmux("new-session", "-d", "-s", self.name, "-x", "120", "-y", "30", command)
        os.mkfifo(self.fifo)
        # Read-write: the FIFO always has a writer (us), so a quiet pane blocks select()
        # instead of reporting end of file.
        self._fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        self.tmux("pipe-pane", "-t", self.name, "-o", f"cat >> {shlex.quote(str(self.fifo))}")

    def value(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", self.name, fmt).stdout.strip()

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        self.screen_text = self.tmux("capture-pane", "-p", "-t", self.name).stdout
        return self.screen_text

    def wait_for(self, pattern: str, timeout: float = STEP_TIMEOUT) -> str:
        """Until the screen matches ``pattern`` (multiline regex); returns the screen."""
        assert self._fd is not None
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while not regex.search(screen := self.screen()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} not on screen after {timeout}s:\n{screen}")
            ready, _, _ = select.select([self._fd], [], [], min(remaining, MAX_QUIET))
            if ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._fd, 65536):
                        pass
        return screen

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", self.name, check=False).returncode == 0

    def close(self) -> None:
        self.tmux("kill-server", check=False)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@pytest.fixture
def pane(tmp_path: Path, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[TmuxPane]:
    pane = TmuxPane(tmp_path, f"mpkernel-e2e-{os.getpid()}")
    try:
        yield pane
    finally:
        (artifacts / f"{request.node.name}.txt").write_text(pane.screen_text)
        procs: list[psutil.Process] = []
        with contextlib.suppress(subprocess.SubprocessError, ValueError):
            procs = process_tree(int(pane.value("#{pid}")))
        if pane.alive():
            # A test that failed half-way: leave the console as a person would, so that it
            # shuts its kernel down; killing the tmux server only hangs the console up.
            with contextlib.suppress(subprocess.SubprocessError):
                pane.send("C-c")
                pane.send("exit", "Enter")
            wait_gone(procs, STEP_TIMEOUT)
        pane.close()
        survivors = wait_gone(procs, PROCESS_EXIT_TIMEOUT)
        for p in survivors:
            with contextlib.suppress(psutil.Error):
                p.kill()
        assert not survivors, f"processes left behind by the console: {[p.pid for p in survivors]}"


def test_console_runs_interrupts_and_exits(pane: TmuxPane) -> None:
    jupyter = Path(sys.executable).parent / "jupyter"
    pane.start(f"{shlex.quote(str(jupyter))} console --kernel {KERNEL_NAME}")
    pane.wait_for(r"^In \[1\]:\s*$", timeout=START_TIMEOUT)
    tmux_server = psutil.Process(int(pane.value("#{pid}")))
    console = psutil.Process(int(pane.value("#{pane_pid}")))

    pane.send("1+1", "Enter")
    pane.wait_for(r"^Out\[1\]: 2$")
    # The console and the kernel it started (with its workers), while they run.
    procs = process_tree(console.pid)
    kernels = [p for p in procs if any(re.search(r"kernel-.*\.json$", a) for a in p.cmdline())]
    assert kernels, f"no kernel process under the console: {[p.cmdline() for p in procs]}"

    # The print says the sleep has begun: a Ctrl-C before the cell started would find no
    # user code to interrupt.
    pane.send("import time; print('sleeping', flush=True); time.sleep(30)", "Enter")
    pane.wait_for(r"^sleeping$")
    started = time.monotonic()
    pane.send("C-c")
    screen = pane.wait_for(r"^In \[3\]:\s*$", timeout=20.0)
    assert "KeyboardInterrupt" in screen, screen
    assert time.monotonic() - started < 20.0

    pane.send("exit", "Enter")
    # The console exits, which ends the only pane, the session, and the tmux server.
    gone = wait_gone([console, *procs, tmux_server], STEP_TIMEOUT)
    assert not gone, f"still running after exit: {[p.cmdline() for p in gone]}\n{pane.screen_text}"
    assert not pane.alive(), "the tmux session outlived the console"
