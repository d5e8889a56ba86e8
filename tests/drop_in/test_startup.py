"""The drop-in comparison for the user's IPython profile: config files, start-up files,
``exec_lines``, ``exec_files``, extensions and ``code_to_run``, run by ipykernel and by mpkernel
from the same temporary ``IPYTHONDIR``.

Each profile is read by both kernels; a probe cell prints what the start-up code left behind
(the order it ran in, the extensions loaded, what ``%who`` shows). The two outputs must be
equal, and equal to what IPython's documented order gives. Errors in start-up code are shown
and the kernel starts anyway.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from tests.conftest import KERNEL_NAME, KERNEL_NAME_IPYKERNEL, TARGET
from tests.frontend import (
    DEFAULT_TIMEOUT,
    STARTUP_TIMEOUT,
    KernelHandle,
    Msg,
    get_reply,
    recv,
    run,
    start_kernel,
    stop_kernel,
)

pytestmark = pytest.mark.integration

CONFIG = """\
c.InteractiveShellApp.exec_lines = ["order.append('exec_lines')", "hidden_line = 1"]
c.InteractiveShellApp.exec_files = ["not this one.py"]
c.IPKernelApp.exec_files = ["exec_file.py"]
c.InteractiveShellApp.extensions = ["autoreload"]
c.InteractiveShellApp.code_to_run = "order.append('code_to_run'); shown = 1"
c.InteractiveShell.colors = "nocolor"
"""
PROBE = (
    "print(order)\n"
    "print(sorted(get_ipython().extension_manager.loaded))\n"
    "print(__file__ if '__file__' in dir() else 'no __file__')\n"
    "%who"
)
EXPECTED = (
    "['startup 00', 'startup 10', 'exec_lines', 'exec_files', 'code_to_run']\n"
    "['IPython.extensions.autoreload', 'IPython.extensions.storemagic']\n"
    "no __file__\n"
    "shown\t \n"
)


def write_profile(root: Path, config: str) -> Path:
    profile = root / "profile_default"
    (profile / "startup").mkdir(parents=True)
    (profile / "ipython_config.py").write_text(config, encoding="utf-8")
    (profile / "startup" / "00-first.py").write_text("order = ['startup 00']\n", encoding="utf-8")
    (profile / "startup" / "10-second.ipy").write_text(
        "order.append('startup 10')\n%load_ext autoreload\n", encoding="utf-8"
    )
    (root / "exec_file.py").write_text("order.append('exec_files')\n", encoding="utf-8")
    return root


@pytest.fixture
def ipythondir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kernels started in the test read their profile here (``IPYTHONDIR``); exec_files
    are looked for in the kernel's working directory, then here."""
    root = tmp_path / "ipython"
    monkeypatch.setenv("IPYTHONDIR", str(root))
    return root


def probe(kernel_name: str, code: str = PROBE) -> str:
    handle = start_kernel(kernel_name)
    try:
        return run(handle.kc, code).stdout()
    finally:
        stop_kernel(handle)


def test_profile_start_up_code_runs_as_in_ipykernel(ipythondir: Path) -> None:
    write_profile(ipythondir, CONFIG)
    reference = probe(KERNEL_NAME_IPYKERNEL)
    assert reference == EXPECTED, "ipykernel itself: the scenario is what IPython documents"
    assert probe(KERNEL_NAME) == reference


def test_a_broken_config_file_leaves_the_kernel_starting(ipythondir: Path) -> None:
    """A config file that raises is skipped (logged), as in ipykernel: no start-up code from
    it, the start-up files still run."""
    write_profile(ipythondir, "c.InteractiveShellApp.exec_lines = ['x = 1']\n1/0\n")
    code = "print(order, 'x' in dir())"
    reference = probe(KERNEL_NAME_IPYKERNEL, code)
    assert reference == "['startup 00', 'startup 10'] False\n"
    assert probe(KERNEL_NAME, code) == reference


@pytest.mark.skipif(TARGET != "mpkernel", reason="ipykernel drops IOPub output sent at start")
def test_start_up_errors_are_shown_and_the_kernel_runs(ipythondir: Path) -> None:
    """A failing exec_line is shown on IOPub (held until the frontend subscribes: ipykernel
    publishes it before anyone listens), the lines after it still run."""
    write_profile(ipythondir, 'c.InteractiveShellApp.exec_lines = ["1/0", "after = 2"]\n')
    km = KernelManager(kernel_name=KERNEL_NAME)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    handle = KernelHandle(KERNEL_NAME, km, kc, km.provisioner.pid, ("shell", "iopub"))  # type: ignore[union-attr, attr-defined]
    try:
        # Not wait_for_ready: it discards what IOPub had to say.
        get_reply(kc, kc.kernel_info(), "shell", timeout=STARTUP_TIMEOUT)
        error: Msg = recv(kc, "iopub", lambda m: m["msg_type"] == "error", timeout=DEFAULT_TIMEOUT)
        assert error["content"]["ename"] == "ZeroDivisionError"
        assert not error["parent_header"], "start-up output belongs to no request"
        assert run(kc, "print(after)").stdout() == "2\n"
    finally:
        stop_kernel(handle)
