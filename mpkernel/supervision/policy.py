"""The supervisor's decisions, without processes, sockets or clocks.

How a worker's exit is classified, whether and when it is restarted, when a crash loop
disables it, and whether its resource use breaks its limits are pure functions of the
worker's configuration, its history and the time the caller passes in. The supervisor
(`supervisor.py`) does the I/O around them; the unit tests drive them with a hand-made
clock (tests/unit/test_supervision_policy.py).
"""

from __future__ import annotations

import dataclasses
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from mpkernel.config.model import WorkerConfig

BACKOFF_BASE_S = 0.05
BACKOFF_MAX_S = 5.0


class WorkerState(str, Enum):
    """A worker process's life, in order; `str` so that it reads as itself in JSON."""

    STARTING = "starting"  # started, not yet Ready: messages queue in its handle
    READY = "ready"
    EXITING = "exiting"  # its process is gone; what it pushed is still being read (I6)
    DEAD = "dead"

    @property
    def live(self) -> bool:
        return self in (WorkerState.STARTING, WorkerState.READY)


class ExitKind(Enum):
    REQUESTED = "requested"  # the kernel asked it to stop (comm closed, shutdown)
    CLEAN = "clean"  # code 0 while nobody asked
    FAILED = "failed"  # a signal, a nonzero code, a limit, a process that could not start


@dataclass(frozen=True, slots=True)
class WorkerExit:
    kind: ExitKind
    reason: str  # what the kernel's log, the comms' close data and doctor say

    @property
    def unexpected(self) -> bool:
        """The comms it served did not expect it: their pending RPCs fail (I6)."""
        return self.kind is not ExitKind.REQUESTED


def describe_exit_code(exitcode: int | None) -> str:
    if exitcode is None:
        return "exited (code unknown)"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def classify_exit(
    exitcode: int | None, stop_reason: str | None, kill_reason: str | None
) -> WorkerExit:
    """`exitcode` as multiprocess reports it (None: another reaper took the status);
    `stop_reason`: the kernel sent StopWorker; `kill_reason`: the supervisor killed it."""
    if kill_reason is not None:
        return WorkerExit(ExitKind.FAILED, kill_reason)
    if exitcode in (0, None):
        if stop_reason is not None:
            return WorkerExit(ExitKind.REQUESTED, f"stopped: {stop_reason}")
        if exitcode == 0:
            return WorkerExit(ExitKind.CLEAN, describe_exit_code(0))
    return WorkerExit(ExitKind.FAILED, describe_exit_code(exitcode))


def start_failure(error: BaseException) -> WorkerExit:
    return WorkerExit(ExitKind.FAILED, f"could not start: {error}")


@dataclass
class WorkerHistory:
    """What happened to one configured worker, kept across its restarts."""

    starts: int = 0
    crashes: int = 0  # unexpected exits
    restarts: int = 0
    last_exit_reason: str | None = None
    restart_exits: deque[float] = field(default_factory=deque)  # within the window
    disabled_reason: str | None = None
    restart_at: float | None = None


def _wants_restart(config: WorkerConfig, kind: ExitKind) -> bool:
    if kind is ExitKind.REQUESTED:
        return False
    if config.restart == "always":
        return True
    return config.restart == "on-failure" and kind is ExitKind.FAILED


def on_exit(history: WorkerHistory, config: WorkerConfig, exit: WorkerExit, now: float) -> bool:
    """Record `exit` in `history`; True when the worker is to be restarted, at
    `history.restart_at`. A crash loop (more than `max_restarts` restarts within
    `restart_window_s`) or a failure under `restart = "never"` disables the worker:
    `history.disabled_reason` says why, and its target refuses new comms."""
    history.last_exit_reason = exit.reason
    if exit.unexpected:
        history.crashes += 1
    if config.processes == "per-comm":
        return False  # its comm is closed with it; the next comm starts a new one
    if not _wants_restart(config, exit.kind):
        if config.restart == "never" and exit.kind is ExitKind.FAILED:
            history.disabled_reason = (
                f"worker {config.name} crashed ({exit.reason}); restart = never"
            )
        return False
    window = history.restart_exits
    window.append(now)
    while window and now - window[0] > config.restart_window_s:
        window.popleft()
    if len(window) > config.max_restarts:
        history.disabled_reason = (
            f"worker {config.name} crashed {len(window)} times in "
            f"{config.restart_window_s:g}s (max_restarts = {config.max_restarts}); not restarted"
        )
        return False
    history.restart_at = now + backoff_s(len(window))
    return True


def backoff_s(exits_in_window: int) -> float:
    """0 for the first restart in the window, then 50 ms, 150 ms, 350 ms, ... at most 5 s."""
    n = max(0, exits_in_window - 1)
    return float(min(BACKOFF_MAX_S, BACKOFF_BASE_S * (2**n) - BACKOFF_BASE_S))


def limit_breach(
    config: WorkerConfig,
    *,
    rss: int,
    cpu_s: float,
    forked: bool,
    uss: Callable[[], int],
) -> str | None:
    """Why the worker must be killed, or None. A worker forked from the kernel shares the
    user's data with it: only the pages it owns (USS) are its cost. `uss` is called only
    when RSS passes the limit: it walks the page tables (7 ms for a worker sharing 3 GB),
    RSS is free, and USS <= RSS."""
    limit = config.memory_limit
    if limit:
        what, used = "RSS", rss
        if forked and used > limit:
            what, used = "USS", uss()
        if used > limit:
            return f"memory limit exceeded: {what} {used >> 20} MiB > {limit >> 20} MiB"
    if config.cpu_limit_s and cpu_s > config.cpu_limit_s:
        return f"CPU limit exceeded: {cpu_s:.1f}s > {config.cpu_limit_s:g}s"
    return None


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One line of the supervisor's status (health RPC, `mpkernel doctor`): a live worker,
    or a configured one with no process now (`state` "stopped" or "disabled")."""

    name: str
    key: str
    target: str | None
    pid: int | None
    state: str  # a WorkerState's value, "stopped" or "disabled"
    rss: int | None
    memory_limit: int | None
    cpu_s: float | None
    starts: int
    crashes: int
    restarts: int
    last_exit_reason: str | None
    disabled_reason: str | None

    @classmethod
    def of(
        cls,
        history: WorkerHistory,
        name: str,
        key: str,
        state: str,
        *,
        target: str | None = None,
        pid: int | None = None,
        rss: int | None = None,
        memory_limit: int | None = None,
        cpu_s: float | None = None,
    ) -> WorkerStats:
        """The line of worker `name`: what is known of its process now, and its history."""
        h = history
        return cls(
            name, key, target, pid, state, rss, memory_limit, cpu_s,
            h.starts, h.crashes, h.restarts, h.last_exit_reason, h.disabled_reason,
        )  # fmt: skip

    def as_json(self, **extra: Any) -> dict[str, Any]:
        return {**dataclasses.asdict(self), **extra}
