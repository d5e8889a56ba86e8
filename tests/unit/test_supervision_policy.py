"""The supervisor's restart and limit policy, driven with a hand-made clock: no process,
socket or sleep (mpkernel/supervision/policy.py)."""

from __future__ import annotations

import dataclasses

import pytest

from mpkernel.config.model import RestartPolicy, WorkerConfig
from mpkernel.supervision.policy import (
    BACKOFF_MAX_S,
    ExitKind,
    WorkerExit,
    WorkerHistory,
    WorkerState,
    WorkerStats,
    backoff_s,
    classify_exit,
    limit_breach,
    on_exit,
    start_failure,
)

MIB = 1 << 20


def config(restart: RestartPolicy = "on-failure", **changes: object) -> WorkerConfig:
    base = WorkerConfig("echo", "mpkernel.echo", "workers.echo:Echo", restart=restart)
    return dataclasses.replace(base, **changes)


FAILED = WorkerExit(ExitKind.FAILED, "killed by SIGKILL")
CLEAN = WorkerExit(ExitKind.CLEAN, "exited with code 0")
REQUESTED = WorkerExit(ExitKind.REQUESTED, "stopped: its comm was closed")


# -- how an exit is read -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exitcode", "stop", "kill", "kind", "reason"),
    [
        (0, "its comm was closed", None, ExitKind.REQUESTED, "stopped: its comm was closed"),
        (None, "shutdown", None, ExitKind.REQUESTED, "stopped: shutdown"),  # reaped elsewhere
        (0, None, None, ExitKind.CLEAN, "exited with code 0"),
        (3, None, None, ExitKind.FAILED, "exited with code 3"),
        (-9, None, None, ExitKind.FAILED, "killed by SIGKILL"),
        (-9, "shutdown", None, ExitKind.FAILED, "killed by SIGKILL"),  # died while stopping
        (None, None, None, ExitKind.FAILED, "exited (code unknown)"),
        (-9, None, "memory limit exceeded", ExitKind.FAILED, "memory limit exceeded"),
        (0, "shutdown", "CPU limit exceeded", ExitKind.FAILED, "CPU limit exceeded"),
    ],
)
def test_an_exit_is_requested_clean_or_failed(
    exitcode: int | None, stop: str | None, kill: str | None, kind: ExitKind, reason: str
) -> None:
    assert classify_exit(exitcode, stop, kill) == WorkerExit(kind, reason)


def test_only_a_requested_exit_is_expected_by_the_comms() -> None:
    assert not REQUESTED.unexpected
    assert CLEAN.unexpected
    assert FAILED.unexpected
    assert start_failure(OSError("no fork")) == WorkerExit(
        ExitKind.FAILED, "could not start: no fork"
    )


def test_live_states() -> None:
    assert [s for s in WorkerState if s.live] == [WorkerState.STARTING, WorkerState.READY]


# -- restart policies ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("restart", "exit", "restarts", "disabled"),
    [
        ("on-failure", FAILED, True, False),
        ("on-failure", CLEAN, False, False),
        ("on-failure", REQUESTED, False, False),
        ("always", FAILED, True, False),
        ("always", CLEAN, True, False),
        ("always", REQUESTED, False, False),
        ("never", FAILED, False, True),
        ("never", CLEAN, False, False),
        ("never", REQUESTED, False, False),
    ],
)
def test_each_policy_restarts_what_it_names(
    restart: RestartPolicy, exit: WorkerExit, restarts: bool, disabled: bool
) -> None:
    history = WorkerHistory()
    assert on_exit(history, config(restart), exit, now=100.0) is restarts
    assert (history.disabled_reason is not None) is disabled
    assert history.restart_at == (100.0 if restarts else None)  # the first one at once
    assert history.crashes == (1 if exit.unexpected else 0)
    assert history.last_exit_reason == exit.reason


def test_never_says_why_the_worker_is_disabled() -> None:
    history = WorkerHistory()
    on_exit(history, config("never"), FAILED, now=0.0)
    assert history.disabled_reason == "worker echo crashed (killed by SIGKILL); restart = never"


@pytest.mark.parametrize("restart", ["on-failure", "always", "never"])
def test_a_per_comm_worker_is_never_restarted_nor_disabled(restart: RestartPolicy) -> None:
    history = WorkerHistory()
    assert not on_exit(history, config(restart, processes="per-comm"), FAILED, now=0.0)
    assert history.disabled_reason is None
    assert history.crashes == 1


def test_restarts_back_off_within_the_window() -> None:
    history = WorkerHistory()
    cfg = config(max_restarts=10, restart_window_s=60.0)
    delays = []
    for now in (0.0, 1.0, 2.0, 3.0, 4.0):
        assert on_exit(history, cfg, FAILED, now)
        assert history.restart_at is not None
        delays.append(round(history.restart_at - now, 6))
    assert delays == [0.0, 0.05, 0.15, 0.35, 0.75]


def test_backoff_is_capped() -> None:
    assert backoff_s(1) == 0.0
    assert backoff_s(30) == BACKOFF_MAX_S


def test_a_crash_loop_disables_the_worker() -> None:
    history = WorkerHistory()
    cfg = config(max_restarts=3, restart_window_s=10.0)
    assert [on_exit(history, cfg, FAILED, float(t)) for t in range(4)] == [True] * 3 + [False]
    assert history.disabled_reason == (
        "worker echo crashed 4 times in 10s (max_restarts = 3); not restarted"
    )
    assert history.crashes == 4


def test_crashes_older_than_the_window_are_forgotten() -> None:
    history = WorkerHistory()
    cfg = config(max_restarts=2, restart_window_s=10.0)
    assert all(on_exit(history, cfg, FAILED, float(t)) for t in (0, 6, 12, 18, 24, 30))
    assert history.disabled_reason is None
    assert len(history.restart_exits) == 2  # 24 and 30: the rest fell out of the window
    assert history.restart_at == 30.0 + backoff_s(2)


def test_always_counts_clean_exits_in_the_crash_loop() -> None:
    history = WorkerHistory()
    cfg = config("always", max_restarts=1, restart_window_s=10.0)
    assert on_exit(history, cfg, CLEAN, 0.0)
    assert not on_exit(history, cfg, CLEAN, 1.0)
    assert history.disabled_reason is not None


# -- limits --------------------------------------------------------------------------------
class Uss:
    """A USS sampler that counts its calls (it walks page tables: only past the limit)."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.value


def test_no_limit_no_breach() -> None:
    uss = Uss(10**12)
    assert limit_breach(config(), rss=10**12, cpu_s=1e6, forked=True, uss=uss) is None
    assert uss.calls == 0


def test_rss_over_the_limit_kills_a_spawned_worker() -> None:
    uss = Uss(0)
    cfg = config(memory_limit=100 * MIB)
    assert limit_breach(cfg, rss=99 * MIB, cpu_s=0, forked=False, uss=uss) is None
    breach = limit_breach(cfg, rss=150 * MIB, cpu_s=0, forked=False, uss=uss)
    assert breach == "memory limit exceeded: RSS 150 MiB > 100 MiB"
    assert uss.calls == 0


def test_a_forked_worker_is_judged_on_the_pages_it_owns() -> None:
    cfg = config(memory_limit=100 * MIB)
    shared = Uss(20 * MIB)  # 3 GiB resident, almost all of it the kernel's pages
    assert limit_breach(cfg, rss=3 << 30, cpu_s=0, forked=True, uss=shared) is None
    assert shared.calls == 1
    own = Uss(120 * MIB)
    breach = limit_breach(cfg, rss=3 << 30, cpu_s=0, forked=True, uss=own)
    assert breach == "memory limit exceeded: USS 120 MiB > 100 MiB"
    cheap = Uss(0)
    assert limit_breach(cfg, rss=50 * MIB, cpu_s=0, forked=True, uss=cheap) is None
    assert cheap.calls == 0


def test_cpu_over_the_limit() -> None:
    cfg = config(cpu_limit_s=2.0)
    assert limit_breach(cfg, rss=0, cpu_s=1.9, forked=False, uss=Uss(0)) is None
    assert limit_breach(cfg, rss=0, cpu_s=2.5, forked=False, uss=Uss(0)) == (
        "CPU limit exceeded: 2.5s > 2s"
    )


# -- status --------------------------------------------------------------------------------
def test_stats_read_as_json_with_extras() -> None:
    stats = WorkerStats(
        "echo", "echo", "mpkernel.echo", 42, "ready", 1 << 20, None, 0.5, 1, 0, 0, None, None
    )
    as_json = stats.as_json(open_comms=2)
    assert as_json["state"] == "ready"
    assert as_json["open_comms"] == 2
    assert list(as_json)[:5] == ["name", "key", "target", "pid", "state"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.pid = 1  # type: ignore[misc]
