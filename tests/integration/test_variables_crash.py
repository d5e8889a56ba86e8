"""The variables pane when its worker dies or hangs: a crash during `inspect` (I6) and an
`inspect` stuck in a user's `__repr__` past `rpc_timeout_s` each get the request a
JSON-RPC error; the comm (persistent, restorable) is not closed but reopened on the new
worker, which sends a `refresh`; the pane works again. The console is never held.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.frontend import KernelHandle, describe
from tests.integration.comm_client import (
    INTERNAL_ERROR,
    IOPubLog,
    call,
    configured_kernels,
    execute_ok,
    is_reply,
    msg_type,
    send_rpc,
)
from tests.integration.test_variables import TIMEOUT, Pane, key

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only, pytest.mark.crash]

RPC_TIMEOUT_S = 3
CONFIG = f"""
[workers.variables]
rpc_timeout_s = {RPC_TIMEOUT_S}
restart = "always"
max_restarts = 10
"""
# Objects whose trouble starts only when the pane looks inside them (`inspect` reads their
# attributes); their `repr` is harmless, so the `update` that lists them works.
SETUP = """
import os, time
class Boom:
    @property
    def crash(self):
        os._exit(7)
class Slow:
    def __init__(self):
        self.inner = Sleepy()
class Sleepy:
    def __repr__(self):
        time.sleep(30)
        return 'slept'
boom = Boom()
slow = Slow()
"""


@pytest.fixture(scope="module")
def kernel(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[KernelHandle]:
    with configured_kernels(request.node, tmp_path_factory.mktemp("variables-crash")) as start:
        yield start(CONFIG)


@pytest.fixture(scope="module")
def pane(kernel: KernelHandle) -> Pane:
    log = IOPubLog(kernel.kc)
    p = Pane(log)
    p.update_after(SETUP)
    return p


def pane_works_again(pane: Pane) -> None:
    """The reopened comm sends a `refresh` from the new worker's first snapshot; then
    updates and requests work."""
    event = pane.next_event()
    assert event["method"] == "refresh", event
    assert "boom" in pane.names
    closes = [m for m in pane.log.on_comm(pane.comm_id) if msg_type(m) == "comm_close"]
    assert not closes, describe(closes)
    params = pane.update_after("after = [1, 2]")
    assert [v["display_name"] for v in params["assigned"]] == ["after"]
    assert len(pane.rpc("inspect", path=[key("after")])["children"]) == 2


@pytest.mark.invariant("I6")
def test_a_crash_during_inspect_is_an_error_then_the_pane_works(pane: Pane) -> None:
    error = pane.call("inspect", {"path": [key("boom")]}).error
    assert error["code"] == INTERNAL_ERROR
    assert "crashed" in error["message"]
    pane_works_again(pane)


def test_a_hanging_repr_does_not_hold_the_console_or_the_pane(pane: Pane) -> None:
    log = pane.log
    request, header = send_rpc(log.kc, pane.comm_id, "inspect", {"path": [key("slow")]})
    t0 = time.monotonic()
    # The console answers meanwhile.
    execute_ok(log, "during_hang = 1", timeout=TIMEOUT)
    assert time.monotonic() - t0 < RPC_TIMEOUT_S, "the execute waited for the inspect"
    reply = log.wait_for(
        lambda m: is_reply(m, request, pane.comm_id), timeout=TIMEOUT, what="the inspect's error"
    )
    took = time.monotonic() - t0
    assert "error" in reply["content"]["data"], reply["content"]
    assert RPC_TIMEOUT_S <= took < 25, f"answered after {took:.1f} s"
    log.wait_idle(header["msg_id"], timeout=TIMEOUT)
    # The update of `during_hang` may have been lost with the worker: the refresh has it.
    while True:
        event = pane.next_event()
        if event["method"] == "refresh":
            break
    assert "during_hang" in pane.names
    assert call(log, pane.comm_id, "list").result["length"] == len(pane.names)
