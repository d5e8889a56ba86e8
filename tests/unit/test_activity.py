"""KernelActivity: the kernel's own status while requests run side by side (S3)."""

from __future__ import annotations

import pytest

from mpkernel.funnel.activity import KernelActivity


@pytest.mark.invariant("S3")
def test_idle_that_leaves_others_running_keeps_the_kernel_busy() -> None:
    activity = KernelActivity()
    assert not activity.still_busy_after("busy", "main")
    assert not activity.still_busy_after("busy", "sub")
    assert activity.still_busy_after("idle", "sub")
    assert not activity.still_busy_after("idle", "main")
    assert activity.running == frozenset()


@pytest.mark.invariant("S3")
def test_sequential_requests_never_add_a_busy() -> None:
    activity = KernelActivity()
    for request_id in ("a", "b", "c"):
        assert not activity.still_busy_after("busy", request_id)
        assert not activity.still_busy_after("idle", request_id)


def test_other_states_and_unknown_idles_change_nothing() -> None:
    activity = KernelActivity()
    activity.still_busy_after("busy", "main")
    assert not activity.still_busy_after("starting", "x")
    # An idle for a request never seen busy still reports the one that runs.
    assert activity.still_busy_after("idle", "never-busy")
    assert activity.running == frozenset({"main"})
