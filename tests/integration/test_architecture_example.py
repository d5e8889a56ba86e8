"""docs/architecture.md section 9, "how to add a handler", run as the page shows it.

The page's three files (fenced blocks whose info string names the file: ``python
wordcount.py``, ``toml config.toml``, ``python try_wordcount.py``) are written into a
temporary folder and the client script is run with this interpreter against the test
kernelspec; its output must be the page's, line for line (the worker's pid aside). The
script starts and stops its own kernel; afterwards no process may name its private runtime
directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.conftest import KERNEL_NAME
from tests.frontend import PROCESS_EXIT_TIMEOUT, STARTUP_TIMEOUT, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"
FILES = ("wordcount.py", "config.toml", "try_wordcount.py")
_FENCE = re.compile(r"^```(\w+) (\S+)\n(.*?)^```\n", re.S | re.M)
_OUTPUT = re.compile(r"^```\n\$ \.venv/bin/python try_wordcount\.py\n(.*?)^```\n", re.S | re.M)
_PID = re.compile(r"'worker_pid': \d+")


def page_files(text: str) -> dict[str, str]:
    """File name -> content of the fenced blocks that name a file."""
    return {name: body for _lang, name, body in _FENCE.findall(text)}


def page_output(text: str) -> list[str]:
    match = _OUTPUT.search(text)
    assert match, "docs/architecture.md shows no run of try_wordcount.py"
    return match.group(1).splitlines()


def test_page_has_the_example() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert sorted(page_files(text)) == sorted(FILES)
    assert len(page_output(text)) == 6


def test_the_example_runs_as_shown(tmp_path: Path) -> None:
    text = PAGE.read_text(encoding="utf-8")
    for name, body in page_files(text).items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
    try:
        done = subprocess.run(
            [sys.executable, str(tmp_path / "try_wordcount.py"), KERNEL_NAME],
            env=env,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT * 2,
            check=False,
        )
    finally:
        left = [
            p
            for p in psutil.process_iter(["cmdline"])
            if any(str(runtime) in arg for arg in p.info["cmdline"] or [])
        ]
        survivors = wait_gone(left, PROCESS_EXIT_TIMEOUT)
        for p in survivors:
            p.kill()
        assert not survivors, f"processes of the example's kernel left: {survivors}"
    assert done.returncode == 0, done.stderr
    got = [_PID.sub("'worker_pid': N", line) for line in done.stdout.splitlines()]
    want = [_PID.sub("'worker_pid': N", line) for line in page_output(text)]
    assert got == want, f"stderr:\n{done.stderr[-3000:]}"
