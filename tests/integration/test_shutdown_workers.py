"""No worker starts once the kernel's shutdown has begun, and a worker that ends during it is
not reported as a crash.

A shared worker with ``restart = "always"`` is busy on its loop thread (it cannot read its
StopWorker) when the shutdown request arrives, and a cell takes a second to stop: the
kernel's reaper terminates the worker while the kernel still serves. Before,
the supervisor took that for a crash, restarted the worker (which then failed, the
forkserver being gone too) and logged both as errors. The kernel's log says what happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.frontend import KernelHandle, request, stop_kernel
from tests.integration.comm_client import (
    IOPubLog,
    call,
    configured_kernels,
    open_comm,
    process_gone,
    send_rpc,
    status_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

TIMEOUT = 60.0
SLOW_TO_STOP = """
import time
try:
    time.sleep(600)
except KeyboardInterrupt:
    time.sleep(1)
"""


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    return tmp_path / "kernel.log"


@pytest.fixture
def kernel(
    tmp_path: Path, request: pytest.FixtureRequest, log_file: Path
) -> Iterator[KernelHandle]:
    config = (
        f'[kernel]\nlog_file = "{log_file}"\nlog_level = "info"\n\n'
        '[workers.echo]\nrestart = "always"\n'
    )
    with configured_kernels(request.node, tmp_path) as start:
        yield start(config)


def test_no_worker_starts_once_shutdown_has_begun(kernel: KernelHandle, log_file: Path) -> None:
    log = IOPubLog(kernel.kc)
    echo = open_comm(log, "mpkernel.echo", timeout=TIMEOUT)
    assert call(log, echo, "pid", timeout=TIMEOUT).result
    _, header = send_rpc(kernel.kc, echo, "block", {"seconds": 600})
    log.wait_for(status_of(header["msg_id"], "busy"), what="the blocking RPC's busy")
    # A cell that takes a moment to stop: the kernel goes on serving during its shutdown,
    # which is when the supervisor learns that the busy worker was terminated.
    cell = kernel.kc.execute(SLOW_TO_STOP)
    log.wait_for(status_of(cell, "busy"), what="the cell's busy")
    reply, _ = request(kernel.kc, "shutdown_request", {"restart": False}, channel="control")
    assert reply["content"]["status"] == "ok"
    assert process_gone(kernel.pid, TIMEOUT)
    stop_kernel(kernel)  # what the closing comm published is not this test's subject

    lines = log_file.read_text(encoding="utf-8").splitlines()
    begun = next(i for i, line in enumerate(lines) if "shutdown requested" in line)
    after = lines[begun:]
    assert not [line for line in after if "started worker" in line], "\n".join(after)
    assert not [line for line in after if " E " in line.split("]")[0]], "\n".join(after)
