"""How `mpkernel doctor` reads a running kernel's health status (the `mpkernel.health`
comm's `status` result): one check per worker, crash loops and memory pressure flagged."""

from __future__ import annotations

from typing import Any

import pytest

from mpkernel.doctor.kernel import (
    CRASH_LOOP_CRASHES,
    HEALTH_WORKER_KEYS,
    health_results,
    worker_result,
)

MiB = 2**20
GiB = 2**30


def worker(**changes: Any) -> dict[str, Any]:
    """A worker entry as `WorkerSupervisor.stats()` + the router's `open_comms` give it."""
    base: dict[str, Any] = {
        "name": "echo",
        "key": "echo",
        "target": "mpkernel.echo",
        "pid": 4242,
        "state": "ready",
        "rss": 50 * MiB,
        "memory_limit": 2 * GiB,
        "cpu_s": 0.25,
        "starts": 1,
        "crashes": 0,
        "restarts": 0,
        "last_exit_reason": None,
        "open_comms": 1,
    }
    base.update(changes)
    return base


def test_healthy_worker_is_ok_and_shows_its_numbers() -> None:
    result = worker_result(worker())
    assert result.status == "ok"
    assert result.name == "worker echo"
    for text in ("mpkernel.echo", "pid 4242", "RSS 50 MiB of 2.0 GiB (2%)", "CPU 0.2 s", "1 comm"):
        assert text in result.summary
    assert "starts 1, crashes 0, restarts 0" in result.summary
    assert set(result.details) == set(HEALTH_WORKER_KEYS)


def test_disabled_worker_is_a_crash_loop_failure() -> None:
    reason = "worker echo crashed 3 times in 60s (max_restarts = 2); not restarted"
    entry = {
        "name": "echo",
        "key": "echo",
        "target": None,
        "pid": None,
        "state": "disabled",
        "rss": None,
        "memory_limit": None,
        "cpu_s": None,
        "starts": 3,
        "crashes": 3,
        "restarts": 2,
        "last_exit_reason": "killed by SIGKILL",
        "disabled_reason": reason,
        "open_comms": 0,
    }
    result = worker_result(entry)
    assert result.status == "fail"
    assert result.summary.startswith(f"crash loop: {reason}")
    assert "last exit: killed by SIGKILL" in result.summary
    assert "pid None" not in result.summary
    assert result.hint is not None
    assert "restart the kernel" in result.hint
    assert result.details["state"] == "disabled"


def test_running_worker_with_many_crashes_is_flagged() -> None:
    entry = worker(crashes=CRASH_LOOP_CRASHES, restarts=3, last_exit_reason="exited with code 3")
    result = worker_result(entry)
    assert result.status == "warn"
    assert "crash loop?" in result.summary
    assert worker_result(worker(crashes=CRASH_LOOP_CRASHES - 1)).status == "ok"


@pytest.mark.parametrize(("rss", "status"), [(int(0.79 * GiB), "ok"), (820 * MiB, "warn")])
def test_memory_near_the_limit_is_flagged(rss: int, status: str) -> None:
    result = worker_result(worker(rss=rss, memory_limit=GiB, name="variables", key="variables"))
    assert result.status == status
    if status == "warn":
        assert "near its memory limit" in result.summary
        assert result.hint is not None
        assert "[workers.variables]" in result.hint


def test_no_memory_limit_means_no_ratio() -> None:
    result = worker_result(worker(rss=30 * GiB, memory_limit=None))
    assert result.status == "ok"
    assert "RSS 30.0 GiB;" in result.summary


def test_per_comm_workers_are_named_by_key() -> None:
    result = worker_result(worker(name="data_explorer", key="data_explorer:abc123"))
    assert result.name == "worker data_explorer:abc123"


def test_health_results_count_everything_but_the_doctors_own_comm() -> None:
    status = {
        "pid": 100,
        "workers": [worker(), worker(name="variables", key="variables", crashes=5)],
        "comms": {"mine": {}, "c1": {}, "c2": {}},
        "iopub_subscribers": 2,
        "iopub_departures": 1,
    }
    results = health_results(status, own_comm="mine")
    assert [r.name for r in results] == ["health", "worker echo", "worker variables", "iopub"]
    assert results[0].summary == "kernel pid 100, 2 workers, 2 open comms"
    assert [r.status for r in results] == ["ok", "ok", "warn", "ok"]
    assert results[-1].summary == "2 subscribers (1 besides this doctor), 1 departures so far"


def test_health_results_before_any_worker_started() -> None:
    results = health_results({"pid": 7, "workers": [], "comms": {}, "iopub_subscribers": 1})
    assert results[0].summary == "kernel pid 7, no worker started yet, 0 open comms"
    assert all(r.status == "ok" for r in results)
