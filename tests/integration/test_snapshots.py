"""User data in workers, seen through a real kernel: the snapshot probe worker
(`mpkernel.snapshot_probe`) reports each snapshot it takes and reads its copy of the
user's objects (docs/architecture.md section 4, "snapshots").

What is checked: rebinding and in-place mutation (also through an alias and by a called
function) reach the worker; arrays cross as arrays; hidden names stay out; an execution
that changes nothing builds no snapshot; unpicklable objects arrive as descriptors; the
kernel's shared-memory directory is gone after shutdown. Waits are on IOPub messages with
a deadline (hang guards, not speed assertions).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mpkernel.snapshots import segments
from tests.frontend import KernelHandle, describe
from tests.integration.comm_client import (
    IOPubLog,
    assert_bracket,
    call,
    close_comm,
    configured_kernels,
    execute_ok,
    is_event,
    is_response_to,
    msg_type,
    open_comm,
    process_gone,
    send_rpc,
)

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

PROBE = "mpkernel.snapshot_probe"
# Whole values, not previews: these tests follow the data itself into the worker.
CONFIG = f"""
[kernel]
preview_min_bytes = "1GiB"

[workers.probe]
target = "{PROBE}"
handler = "mpkernel_workers.snapshot_probe:SnapshotProbeHandler"
"""
TIMEOUT = 60.0


class Probe:
    def __init__(self, log: IOPubLog) -> None:
        self.log = log
        self.comm_id = open_comm(log, PROBE, timeout=TIMEOUT)
        self.version = 0
        # A new consumer is given the whole namespace at once, not at the next execution.
        self.first = self.next_event()

    def snapshot_after(self, code: str) -> dict[str, Any]:
        """Run `code`; the first snapshot event newer than the last one seen."""
        execute_ok(self.log, code)
        return self.next_event()

    def next_event(self) -> dict[str, Any]:
        seen = self.version

        def newer(m: Any) -> bool:
            if not is_event(m, self.comm_id) or m["content"]["data"]["method"] != "snapshot":
                return False
            return int(m["content"]["data"]["params"]["version"]) > seen

        msg = self.log.wait_for(newer, timeout=TIMEOUT, what="a snapshot event")
        params: dict[str, Any] = msg["content"]["data"]["params"]
        self.version = params["version"]
        return params

    def evaluate(self, expression: str) -> Any:
        result = call(self.log, self.comm_id, "evaluate", {"expression": expression}).result
        return result["value"]

    def rpc(self, method: str, **params: Any) -> Any:
        return call(self.log, self.comm_id, method, params).result


@pytest.fixture(scope="module")
def kernel(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[KernelHandle]:
    with configured_kernels(request.node, tmp_path_factory.mktemp("snapshots")) as start:
        handle = start(CONFIG)
        yield handle
        shut_down(handle)


@pytest.fixture(scope="module")
def probe(kernel: KernelHandle) -> Probe:
    p = Probe(IOPubLog(kernel.kc))
    p.snapshot_after("import numpy as np\nimport pandas as pd\nstart = 1")
    return p


def test_rebinding_and_new_names_reach_the_worker(probe: Probe) -> None:
    event = probe.snapshot_after("a = 41\na += 1")
    assert "a" in event["changed"]
    assert probe.evaluate("a") == 42


@pytest.mark.parametrize(
    ("setup", "mutation", "changed", "expression", "expected"),
    [
        ("lst = [1]", "lst.append(2)", {"lst"}, "lst", [1, 2]),
        ("d = {}", "d['k'] = 'v'", {"d"}, "d", {"k": "v"}),
        ("al = [0]\nbl = al", "bl.append(1)", {"al", "bl"}, "al", [0, 1]),
        ("acc = []\ndef add(v):\n    acc.append(v)", "add(7)", {"acc"}, "acc", [7]),
        (
            "df = pd.DataFrame({'a': np.arange(2_000_000.0)})",
            "df.loc[0, 'a'] = 1.5",
            {"df"},
            "float(df.loc[0, 'a'])",
            1.5,
        ),
    ],
    ids=["append", "setitem", "alias", "function", "dataframe"],
)
def test_in_place_mutation_reaches_the_worker(
    probe: Probe, setup: str, mutation: str, changed: set[str], expression: str, expected: Any
) -> None:
    probe.snapshot_after(setup)
    event = probe.snapshot_after(mutation)
    assert changed <= set(event["changed"])
    assert probe.evaluate(expression) == expected


def test_arrays_arrive_as_arrays(probe: Probe) -> None:
    probe.snapshot_after("arr = np.arange(3_000_000, dtype=np.int64)")
    described = probe.rpc("describe", name="arr")
    assert described["type"] == "numpy.ndarray"
    assert described["shape"] == [3_000_000]
    assert probe.evaluate("int(arr.sum())") == sum(range(3_000_000))
    assert probe.evaluate("arr.flags.owndata") is False  # mapped, not copied


def test_an_execution_that_changes_nothing_builds_no_snapshot(probe: Probe) -> None:
    before = probe.snapshot_after("marker = 0")["version"]
    execute_ok(probe.log, "pass")
    execute_ok(probe.log, "1 + 1")
    event = probe.snapshot_after("marker = 1")
    assert event["version"] == before + 1
    assert event["changed"] == ["marker"]


def test_hidden_names_stay_out(probe: Probe) -> None:
    probe.snapshot_after("40 + 2\nvisible_one = 1")
    names = set(probe.rpc("state")["names"])
    assert "visible_one" in names
    hidden = {"In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_ih", "_oh", "_dh"}
    assert not names & hidden
    assert not [n for n in names if n.startswith(("_i", "__")) or n.lstrip("_").isdigit()]
    assert not {"np", "pd"} & names  # modules


def test_unpicklable_objects_arrive_as_descriptors(probe: Probe) -> None:
    event = probe.snapshot_after("import threading\nlock = threading.Lock()")
    assert "lock" in event["unavailable"]
    described = probe.rpc("describe", name="lock")
    assert described["type"] == "_thread.lock"
    assert "cannot be pickled" in described["unavailable"]


def test_a_busy_worker_gets_only_the_newest_snapshot(probe: Probe, tmp_path: Path) -> None:
    # The probe's loop thread blocks reading a FIFO until the test writes to it: snapshots
    # built meanwhile wait in the kernel, and only the newest of them is ever sent.
    probe.snapshot_after("busy = -1")  # the worker is up to date
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    request, header = send_rpc(
        probe.log.kc, probe.comm_id, "evaluate", {"expression": f"open({str(fifo)!r}).read()"}
    )
    before = probe.version
    for i in range(4):
        execute_ok(probe.log, f"busy = {i}")  # snapshots before + 1 .. before + 4
    with fifo.open("w") as gate:
        gate.write("go")
    probe.log.wait_idle(header["msg_id"], timeout=TIMEOUT)
    assert any(is_response_to(m, request) for m in probe.log.msgs)
    in_flight = probe.next_event()["version"]  # sent before the worker was busy
    newest = probe.next_event()["version"]
    assert (in_flight, newest) == (before + 1, before + 4)
    assert probe.evaluate("busy") == 3


def test_a_viewer_gets_its_object_through_shared_memory(probe: Probe) -> None:
    execute_ok(
        probe.log,
        "import mpkernel\n"
        "frame = pd.DataFrame({'a': np.arange(1_000_000.0)})\n"
        f"mpkernel.view(frame, target={PROBE!r})",
    )

    def opened(m: Any) -> bool:
        return msg_type(m) == "comm_open" and m["content"]["target_name"] == PROBE

    open_msg = probe.log.wait_for(opened, timeout=TIMEOUT, what="the viewer's comm_open")
    viewer = open_msg["content"]["comm_id"]
    answer = call(probe.log, viewer, "evaluate", {"expression": "float(subject['a'].sum())"})
    assert answer.result["value"] == float(sum(range(1_000_000)))
    close_comm(probe.log, viewer)
    probe.next_event()  # the cell's snapshot (frame) on the probe's own comm


def test_deleting_a_name_removes_it(probe: Probe) -> None:
    probe.snapshot_after("gone_soon = [1]")
    event = probe.snapshot_after("del gone_soon")
    assert event["removed"] == ["gone_soon"]


def test_a_consumer_that_arrives_late_gets_the_namespace_at_once(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Names bound before any consumer existed reach the first consumer when it is ready,
    without another execution; it can also ask for a fresh complete snapshot."""
    with configured_kernels(request.node, tmp_path) as start:
        handle = start(CONFIG)
        log = IOPubLog(handle.kc)
        execute_ok(log, "early = [1, 2]")  # no consumer yet: nothing is built
        p = Probe(log)
        assert "early" in p.first["changed"]
        assert p.evaluate("early") == [1, 2]
        version = p.rpc("refresh")["version"]
        event = p.next_event()
        assert event["version"] == version > p.first["version"]
        shut_down(handle)


def kernel_dir_of(handle: KernelHandle) -> Path:
    return segments.segment_root() / f"mpkernel-{os.getuid()}-{handle.pid}"


def shut_down(handle: KernelHandle) -> None:
    """A shutdown_request, as a frontend sends it (the test harness would kill the kernel,
    which leaves its shared memory to the next kernel); then nothing of it is left."""
    handle.km.shutdown_kernel(now=False)
    assert process_gone(handle.pid, TIMEOUT)
    assert not kernel_dir_of(handle).exists()


def start_with_data(start: Callable[[str], KernelHandle]) -> tuple[KernelHandle, Path]:
    handle = start(CONFIG)
    p = Probe(IOPubLog(handle.kc))
    p.snapshot_after("import numpy as np\nbig = np.ones(4_000_000)")
    assert p.evaluate("float(big.sum())") == 4_000_000.0
    directory = kernel_dir_of(handle)
    assert any(directory.iterdir())
    return handle, directory


def test_shutdown_frees_the_kernels_shared_memory(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with configured_kernels(request.node, tmp_path) as start:
        handle, directory = start_with_data(start)
        shut_down(handle)
        assert not directory.exists()


@pytest.mark.invariant("I3")
def test_i3_a_consumers_news_of_an_execution_comes_before_its_idle(probe: Probe) -> None:
    """The probe's `snapshot` event about a cell is parented to that cell's execute request
    and published inside its busy/idle (the snapshot fits the budget easily here)."""
    msgs = execute_ok(probe.log, "bracketed = [1, 2, 3]")
    bracket = assert_bracket(probe.log.msgs, msgs[0]["parent_header"]["msg_id"])
    events = [m for m in bracket if is_event(m, probe.comm_id)]
    assert len(events) == 1, describe(bracket)
    params = events[0]["content"]["data"]["params"]
    assert "bracketed" in params["changed"]
    probe.version = params["version"]
