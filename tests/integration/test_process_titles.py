"""Every process of a kernel says what it is (`mpkernel.titles`), as ps, top and psutil see it.

A kernel with a forkserver worker, a spawned worker and a forked viewer: each process but the
kernel itself carries ``mpkernel <role> [<worker>] <kernel id>`` as its command line, and its
role in its short name (what top shows).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.frontend import KernelHandle, process_tree
from tests.integration.comm_client import (
    IOPubLog,
    call,
    configured_kernels,
    execute_ok,
    open_comm,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

SPAWNED = "test.spawned"
CONFIG = f"""
[workers.spawned]
target = "{SPAWNED}"
handler = "mpkernel_workers.echo:EchoHandler"
start_method = "spawn"

[workers.data_explorer]
enabled = true
"""
TIMEOUT = 60.0


@pytest.fixture
def kernel(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[KernelHandle]:
    with configured_kernels(request.node, tmp_path) as start:
        yield start(CONFIG)


def titles(pid: int) -> dict[int, str]:
    out = {}
    for proc in process_tree(pid):
        try:
            # setproctitle leaves empty arguments; the janitor (a shell) has its script after
            out[proc.pid] = " ".join(" ".join(proc.cmdline()).split(" -c ")[0].split())
        except psutil.Error:
            continue
    return out


def test_each_process_is_named_after_its_role_and_kernel(kernel: KernelHandle) -> None:
    log = IOPubLog(kernel.kc)
    echo = open_comm(log, "mpkernel.echo", timeout=TIMEOUT)
    spawned = open_comm(log, SPAWNED, timeout=TIMEOUT)
    pids = {call(log, c, "pid", timeout=TIMEOUT).result: c for c in (echo, spawned)}
    execute_ok(
        log,
        "import mpkernel, pandas as pd\nmpkernel.view(pd.DataFrame({'a': [1]}), 'df')",
        timeout=TIMEOUT,
    )
    kernel_id = Path(kernel.km.connection_file).stem.removeprefix("kernel-")
    found = titles(kernel.pid)
    assert found.pop(kernel.pid).split()[1:3] == ["-m", "mpkernel"], "the kernel keeps its own"
    expected = {
        f"mpkernel janitor {kernel_id}",
        f"mpkernel forkserver {kernel_id}",
        f"mpkernel worker echo {kernel_id}",
        f"mpkernel worker spawned {kernel_id}",
        f"mpkernel viewer data_explorer {kernel_id}",
    }
    assert set(found.values()) == expected, found
    by_title = {title: pid for pid, title in found.items()}
    assert pids == {
        by_title[f"mpkernel worker echo {kernel_id}"]: echo,
        by_title[f"mpkernel worker spawned {kernel_id}"]: spawned,
    }
    for pid, title in found.items():
        if "janitor" in title:
            continue  # a shell: /proc/PID/comm is "sh"
        # top and /proc/PID/comm: 15 bytes, the role first
        comm = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
        assert comm == title.removeprefix("mpkernel ")[:15].rstrip()
