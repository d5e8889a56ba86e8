"""KernelActivity: the kernel's own status while requests run side by side (S3)."""

from __future__ import annotations

import pytest

from mpkernel.funnel.activity import KernelActivity


@pytest.mark.invariant("S3")
def test_idle_that_leaves_others_running_keeps_the_kernel_busy_then_idles_it() -> None:
    activity = KernelActivity()
    assert activity.kernel_status_after("busy", "main") is None
    assert activity.kernel_status_after("busy", "sub") is None
    assert activity.kernel_status_after("idle", "sub") == "busy"
    assert activity.kernel_status_after("idle", "main") == "idle"
    assert activity.running == frozenset()


@pytest.mark.invariant("S3")
def test_the_kernel_is_said_idle_when_the_last_request_is_one_frontends_ignore() -> None:
    """A cell ends while a debug_request (a status JupyterLab does not track) still runs:
    the kernel's own busy must be followed by its own idle when the debug request ends."""
    activity = KernelActivity()
    activity.kernel_status_after("busy", "cell")
    activity.kernel_status_after("busy", "debug_request")
    assert activity.kernel_status_after("idle", "cell") == "busy"
    assert activity.kernel_status_after("idle", "debug_request") == "idle"


@pytest.mark.invariant("S3")
def test_sequential_requests_never_add_a_status() -> None:
    activity = KernelActivity()
    for request_id in ("a", "b", "c"):
        assert activity.kernel_status_after("busy", request_id) is None
        assert activity.kernel_status_after("idle", request_id) is None


@pytest.mark.invariant("S3")
def test_one_kernel_idle_after_several_kernel_busies() -> None:
    activity = KernelActivity()
    for request_id in ("a", "b", "c"):
        activity.kernel_status_after("busy", request_id)
    assert activity.kernel_status_after("idle", "a") == "busy"
    assert activity.kernel_status_after("idle", "b") == "busy"
    assert activity.kernel_status_after("idle", "c") == "idle"
    assert activity.kernel_status_after("busy", "d") is None
    assert activity.kernel_status_after("idle", "d") is None


def test_other_states_and_unknown_idles_change_nothing() -> None:
    activity = KernelActivity()
    activity.kernel_status_after("busy", "main")
    assert activity.kernel_status_after("starting", "x") is None
    # An idle for a request never seen busy still reports the one that runs.
    assert activity.kernel_status_after("idle", "never-busy") == "busy"
    assert activity.running == frozenset({"main"})
