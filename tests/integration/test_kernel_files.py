"""Nothing of a kernel stays on disk once its processes are gone, however they ended.

A kernel with a spawned worker (echo), a snapshot consumer holding shared-memory segments and
a forked viewer is ended five ways: SIGKILL to its main process, SIGKILL to its process group
(what jupyter_client does), SIGKILL to a worker or to the forkserver before a shutdown, and a
plain shutdown. Its root in the temporary directory and its segment directory must be gone
once its janitor is (`mpkernel.kernel_dirs`). Waits are on processes, with deadlines that
only guard against hangs.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from mpkernel.snapshots import segments
from tests.frontend import (
    PROCESS_EXIT_TIMEOUT,
    KernelHandle,
    process_tree,
    request,
    role_of,
    stop_kernel,
    wait_gone,
)
from tests.integration.comm_client import (
    IOPubLog,
    call,
    configured_kernels,
    execute_ok,
    open_comm,
    process_gone,
)
from tests.integration.test_snapshots import CONFIG as PROBE_CONFIG
from tests.integration.test_snapshots import PROBE

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only, pytest.mark.crash]

# The snapshot probe (whole values, so big arrays go to segments) and the data explorer.
CONFIG = PROBE_CONFIG + "\n[workers.data_explorer]\nenabled = true\n"
TIMEOUT = 60.0


@dataclass(frozen=True)
class KernelFiles:
    handle: KernelHandle
    root: Path
    segments: Path
    janitor: psutil.Process

    def gone(self) -> bool:
        return not self.root.exists() and not self.segments.exists()


def root_of(pid: int) -> Path:
    roots = list(Path(os.environ["TMPDIR"]).glob(f"mpk-{pid}-*"))
    assert len(roots) == 1, roots
    return roots[0]


def janitor_of(root: Path) -> psutil.Process:
    """The janitor of the kernel whose root is `root` (it writes its pid when it starts)."""
    path = root / "janitor.pid"
    deadline = time.monotonic() + TIMEOUT
    # a hang guard: it is there, whole (one line), within ms of the kernel's start
    while not (path.exists() and path.read_text(encoding="ascii").endswith("\n")):
        assert time.monotonic() < deadline, "the janitor never wrote its pid"
        time.sleep(0.01)
    return psutil.Process(int(path.read_text(encoding="ascii")))


@pytest.fixture
def start(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], KernelFiles]]:
    """A kernel using every kind of file a kernel makes; its files, once they all exist."""
    with configured_kernels(request.node, tmp_path) as start_kernel:

        def start() -> KernelFiles:
            handle = start_kernel(CONFIG)
            log = IOPubLog(handle.kc)
            probe = open_comm(log, PROBE, timeout=TIMEOUT)
            execute_ok(
                log,
                "import mpkernel, numpy as np, pandas as pd\n"
                "big = np.ones(4_000_000)\n"
                "df = pd.DataFrame({'i': np.arange(1000)})\n"
                "mpkernel.view(df, 'df')",
                timeout=TIMEOUT,
            )
            assert call(log, probe, "evaluate", {"expression": "float(big.sum())"}).result
            root = root_of(handle.pid)
            shm = segments.segment_root() / f"mpkernel-{os.getuid()}-{handle.pid}"
            assert any(shm.iterdir()), "the snapshot's segments"
            assert {p.name for p in root.iterdir()} >= {"forkserver", "workers", "forks"}
            assert any((root / "forks").iterdir()), "the forked viewer's pipes"
            return KernelFiles(handle, root, shm, janitor_of(root))

        yield start


def wait_for_janitor(files: KernelFiles) -> None:
    assert wait_gone([files.janitor], TIMEOUT) == [], "the janitor did not end"
    assert files.gone(), f"left behind: {list(files.root.glob('**/*'))}, {files.segments}"


def shut_down(files: KernelFiles) -> None:
    """A shutdown_request, as a frontend sends it."""
    reply, _ = request(files.handle.kc, "shutdown_request", {"restart": False}, channel="control")
    assert reply["content"]["status"] == "ok"
    assert process_gone(files.handle.pid, TIMEOUT)
    # What the comms' closing published is not this test's subject.
    stop_kernel(files.handle)


def one_of(files: KernelFiles, role: str) -> psutil.Process:
    procs = [p for p in process_tree(files.handle.pid) if role_of(p)[:1] == [role]]
    assert procs, f"no {role}"
    return procs[0]


def test_sigkill_of_the_kernel_leaves_nothing(start: Callable[[], KernelFiles]) -> None:
    files = start()
    tree = process_tree(files.handle.pid)
    os.kill(files.handle.pid, signal.SIGKILL)
    assert wait_gone(tree, PROCESS_EXIT_TIMEOUT) == []
    wait_for_janitor(files)


def test_sigkill_of_the_process_group_leaves_nothing(start: Callable[[], KernelFiles]) -> None:
    """jupyter_client's kill (a test harness's, a restart's): the janitor is out of reach."""
    files = start()
    tree = process_tree(files.handle.pid)
    os.killpg(files.handle.pid, signal.SIGKILL)
    assert wait_gone(tree, PROCESS_EXIT_TIMEOUT) == []
    wait_for_janitor(files)


def test_shutdown_leaves_nothing(start: Callable[[], KernelFiles]) -> None:
    files = start()
    shut_down(files)
    wait_for_janitor(files)


def test_sigkill_of_a_worker_then_shutdown_leaves_nothing(
    start: Callable[[], KernelFiles],
) -> None:
    files = start()
    worker = one_of(files, "worker")
    worker.kill()
    assert wait_gone([worker], PROCESS_EXIT_TIMEOUT) == []
    shut_down(files)
    wait_for_janitor(files)


def test_sigkill_of_the_forkserver_then_of_the_kernel_leaves_nothing(
    start: Callable[[], KernelFiles],
) -> None:
    files = start()
    server = one_of(files, "forkserver")
    server.kill()
    assert wait_gone([server], PROCESS_EXIT_TIMEOUT) == []
    tree = process_tree(files.handle.pid)
    os.kill(files.handle.pid, signal.SIGKILL)
    assert wait_gone(tree, PROCESS_EXIT_TIMEOUT) == []
    wait_for_janitor(files)


def test_what_a_kernel_killed_with_its_janitor_left_goes_at_the_next_start(
    start: Callable[[], KernelFiles],
) -> None:
    first = start()
    first.janitor.kill()
    assert wait_gone([first.janitor], PROCESS_EXIT_TIMEOUT) == []
    tree = process_tree(first.handle.pid)
    os.killpg(first.handle.pid, signal.SIGKILL)
    assert wait_gone(tree, PROCESS_EXIT_TIMEOUT) == []
    assert first.root.exists()
    assert first.segments.exists()
    second = start()
    # The new kernel sweeps in the background once it is ready (a hang guard, no more).
    deadline = time.monotonic() + TIMEOUT
    while not first.gone():
        assert time.monotonic() < deadline, "the next kernel did not remove them"
        time.sleep(0.01)
    shut_down(second)
    wait_for_janitor(second)
