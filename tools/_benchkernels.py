"""Kernel processes for the benchmarks: who is measured, how it is started, how it is stopped.

- `Contender`: one kernel configuration under test (kernelspec name, optional mpkernel
  configuration text, transport). The A/B driver runs two of them side by side.
- `KernelProcess`: one kernel started from its kernelspec through jupyter_client's
  `KernelManager`. Its stdout/stderr go to a log file whose tail is shown on failure.
- `KernelSet`: every kernel a run starts. `close()` stops them all: a `shutdown_request`,
  jupyter_client's SIGTERM/SIGKILL escalation, then a kill of the process group and of any
  descendant that left it. Errors, Ctrl-C and SIGTERM (see `sigterm_raises`) go through it
  too, so no kernel or worker is ever left behind.

Nothing here prints.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import psutil
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import KernelManager

__all__ = [
    "BenchError",
    "Contender",
    "KernelProcess",
    "KernelSet",
    "kernelspec_argv",
    "sigterm_raises",
]


class BenchError(RuntimeError):
    """A scenario could not produce its figure (a kernel did not start, died, timed out...)."""


@dataclass(frozen=True)
class Contender:
    """One kernel configuration under test.

    `config` is the text of an mpkernel TOML configuration, passed as MPKERNEL_CONFIG
    (empty: none). `transport` is the ZMQ transport of the connection file (tcp or ipc).
    `encrypted`: started with jupyter_client's `transport_encryption="required"` (CurveZMQ
    keys in the connection file; the kernelspec must declare curve support).
    `checked`: a failed correctness check on this contender fails the run (exit status 1);
    on the reference kernel (ipykernel) it is only reported.
    """

    label: str
    kernel_name: str
    config: str = ""
    transport: str = "tcp"
    checked: bool = True
    encrypted: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        """Contenders with the same key can share one running kernel."""
        transport = f"{self.transport}+curve" if self.encrypted else self.transport
        return (self.kernel_name, self.config, transport)


def kernelspec_argv(kernel_name: str) -> list[str]:
    """The kernelspec's argv, or BenchError naming how to get the kernelspec."""
    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        hint = (
            " (install it with `mpkernel install --sys-prefix --name mpkernel`)"
            if kernel_name == "mpkernel"
            else ""
        )
        raise BenchError(
            f"no kernelspec named {kernel_name!r}{hint}; `jupyter kernelspec list` shows "
            "what is installed, --kernels picks others"
        ) from None
    return list(spec.argv)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into SystemExit for the duration, so `finally` blocks still run."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class KernelProcess:
    """One kernel started from its kernelspec by `KernelManager`, with its own cleanup."""

    def __init__(
        self, contender: Contender, label: str, workdir: Path, env: Mapping[str, str]
    ) -> None:
        self.contender = contender
        self.label = label
        self.log_path = workdir / f"{label}.log"
        self._env = dict(env)
        self._workdir = workdir
        self.manager = KernelManager(
            kernel_name=contender.kernel_name,
            transport=contender.transport,
            transport_encryption="required" if contender.encrypted else "disabled",
        )
        self.manager.connection_file = str(workdir / f"{label}.json")
        if contender.transport == "ipc":
            # Short: a socket path has at most 107 bytes (ipc://<ip>-<port>).
            self.manager.ip = str(workdir / f"i{label.rsplit('-', 1)[-1]}")
        self.manager.shutdown_wait_time = 5.0
        self._log: IO[bytes] | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self._pgid: int | None = None
        self._stopped = False
        self.cleanup_notes: list[str] = []

    def open_log(self) -> None:
        """Open the log file; done before a timed start so it is not part of the figure."""
        if self._log is None:
            self._log = self.log_path.open("wb")

    def start(self) -> None:
        """`KernelManager.start_kernel()`, nothing else (cold start times exactly this call)."""
        self.open_log()
        self.manager.start_kernel(
            env=self._env, cwd=str(self._workdir), stdout=self._log, stderr=self._log
        )
        provisioner = self.manager.provisioner
        self._popen = getattr(provisioner, "process", None)
        self.pid = getattr(provisioner, "pid", None)
        self._pgid = getattr(provisioner, "pgid", None)

    def is_alive(self) -> bool:
        """Whether the kernel process (the one started from the kernelspec) still runs."""
        return self._popen is not None and self._popen.poll() is None

    def exit_status(self) -> int | None:
        """The kernel's exit status, None while it runs (or before it started)."""
        return None if self._popen is None else self._popen.poll()

    def connection_info(self) -> dict[str, Any]:
        """The connection file's content (ports, key, signature scheme, transport, ip)."""
        return dict(self.manager.get_connection_info(session=False))

    def processes(self) -> list[psutil.Process]:
        """The kernel process and all its live descendants (workers, forkserver...)."""
        if self.pid is None:
            return []
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> tuple[int, int]:
        """(resident bytes, process count) of the kernel process and all its descendants."""
        total = count = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += proc.memory_info().rss
                count += 1
        return total, count

    def memory(self) -> tuple[int, list[int]]:
        """(PSS bytes of the kernel and all its descendants, USS bytes of each descendant).

        PSS counts a page shared by n processes as 1/n in each, so the tree's sum is what
        the tree costs the machine; RSS would count pages shared with the forkserver again
        in every worker. USS is what a process alone holds: what one more worker costs.
        """
        pss = 0
        children: list[int] = []
        for i, proc in enumerate(self.processes()):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                info = proc.memory_full_info()
                pss += info.pss
                if i > 0:
                    children.append(info.uss)
        return pss, children

    def cpu_seconds(self) -> float:
        """user+system CPU time of the kernel process and its live descendants."""
        total = 0.0
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the kernel's stdout/stderr."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def shutdown(self, *, graceful: bool = True) -> None:
        """Stop the kernel; whatever happens, kill its process group and escaped descendants.

        Graceful: shutdown_request on control, then jupyter_client's own SIGTERM/SIGKILL
        escalation after `shutdown_wait_time`. Safe to call twice.
        """
        if self._stopped:
            return
        self._stopped = True
        descendants = self.processes()[1:]
        try:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=not graceful)
        except Exception as exc:  # noqa: BLE001 - cleanup must go on to the kill below
            self.cleanup_notes.append(f"shutdown_kernel failed: {exc!r}")
        finally:
            self._kill_leftovers(descendants)
            if self._log is not None:
                self._log.close()
                self._log = None

    def _kill_leftovers(self, descendants: list[psutil.Process]) -> None:
        if self._popen is not None and self._popen.poll() is None:
            self.cleanup_notes.append("kernel process still alive after shutdown: killed")
            with contextlib.suppress(ProcessLookupError):
                self._popen.kill()
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=5)
        pgid = self._pgid
        if pgid is not None and pgid != os.getpgrp():
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                pass
            else:
                self.cleanup_notes.append(f"process group {pgid} outlived the kernel: killed")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
        for proc in descendants:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    self.cleanup_notes.append(f"descendant {proc.pid} outlived the kernel: killed")
                    proc.kill()


class KernelSet:
    """Every kernel a run starts, so that `close()` (or leaving `with`) stops all of them."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self._env = dict(env)
        self._live: list[KernelProcess] = []
        self._count = 0
        self.cleanup_notes: list[str] = []

    def create(self, contender: Contender, label: str) -> KernelProcess:
        """A registered, not yet started kernel (call `.start()`; it is cleaned up anyway).

        Each kernel gets its own empty IPYTHONDIR (no user profile, startup files or shared
        history) and, for a contender with `config`, an MPKERNEL_CONFIG file.
        """
        self._count += 1
        name = f"{label}-{self._count}"
        env = {**self._env, "IPYTHONDIR": str(self.workdir / f"ipython-{name}")}
        if contender.config:
            config = self.workdir / f"{name}.toml"
            config.write_text(contender.config)
            env["MPKERNEL_CONFIG"] = str(config)
        kernel = KernelProcess(contender, name, self.workdir, env)
        self._live.append(kernel)
        return kernel

    def stop(self, kernel: KernelProcess, *, graceful: bool = True) -> None:
        """Shut one kernel down now (see `KernelProcess.shutdown`)."""
        try:
            kernel.shutdown(graceful=graceful)
        finally:
            if kernel in self._live:
                self._live.remove(kernel)
            self.cleanup_notes += [f"{kernel.label}: {n}" for n in kernel.cleanup_notes]

    def close(self) -> None:
        """Stop every live kernel; an interrupt during one stop kills the rest at once."""
        first: BaseException | None = None
        for kernel in list(self._live):
            try:
                self.stop(kernel, graceful=first is None)
            except BaseException as exc:  # noqa: BLE001 - keep stopping the others, re-raise below
                first = first or exc
        if first is not None:
            raise first

    def __enter__(self) -> KernelSet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
