"""A kernel's files: one private root per kernel, and the janitor that removes it.

Everything a kernel puts in the temporary directory lives under one root,
``$TMPDIR/mpk-<kernel pid>-<random>/`` (0700): the forkserver's socket, the worker pipes
(``workers/``), the forked viewers' pipes (``forks/``) and the debugger's cell files
(``cells/``). Snapshot segments live in a tmpfs directory named after the kernel's pid
(`mpkernel.snapshots.segments`). A clean shutdown removes both; a kernel that is killed
cannot, so its janitor does.

The janitor is forked first thing at start, before the forkserver, any thread or zmq
context, into a session of its own: jupyter_client kills a kernel by signalling its process
group, and the janitor is not in it. It holds the read end of a pipe whose write end every
process of the kernel holds: the kernel, and by inheritance the forkserver, its workers and
the forked viewers (spawned workers exec, which closes it; they exit with the kernel). The
read sees end of file once the last of them is gone, whichever way they died; the janitor
then removes the root and the segments and exits. Before it waits, it removes what kernels
that died with their janitor left (a root or segment directory whose kernel no longer runs):
the one sweep of leftovers.

    kernel ──fork──> janitor (setsid; reads `alive` until EOF, then removes the root)
      │ holds alive_w
      ├── forkserver (inherits alive_w) ── workers (inherit alive_w)
      └── forked viewers (inherit alive_w)
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psutil

from mpkernel.titles import set_title, title

ROOT_PREFIX: Final = "mpk-"
# Ours, with the pid of the kernel that made them: roots, and the pipes and debugger
# directories that earlier versions kept beside them.
_LEFTOVER_RE: Final = re.compile(r"(?:mpk-(?:fork-)?|mpkernel_)(\d+)(?:-\w+)?$")


@dataclass(frozen=True, slots=True)
class KernelDirs:
    """The kernel's root directory and what lives under it."""

    root: Path
    kernel_pid: int
    janitor_pid: int | None = None  # spared when the kernel terminates its children

    @property
    def workers(self) -> Path:
        """The spawned workers' pipes (made by the supervisor)."""
        return self.root / "workers"

    @property
    def forks(self) -> Path:
        """The forked viewers' pipes (made at the first fork)."""
        return self.root / "forks"

    @property
    def cells(self) -> Path:
        """The debugger's cell files."""
        return self.root / "cells"

    @property
    def janitor(self) -> Path:
        """The janitor's pid, written when it starts (for whoever waits for the cleanup)."""
        return self.root / "janitor.pid"

    @property
    def forkserver(self) -> Path:
        """The forkserver's listening socket."""
        return self.root / "forkserver"

    def remove(self) -> None:
        """Remove the root and the kernel's snapshot segments (the kernel is ending)."""
        from mpkernel.snapshots import segments

        segments.remove_kernel_dir(self.kernel_pid)
        shutil.rmtree(self.root, ignore_errors=True)


def create() -> KernelDirs:
    """This kernel's root, made now (0700)."""
    pid = os.getpid()
    return KernelDirs(Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{pid}-")), pid)


def start_janitor(dirs: KernelDirs, kernel_id: str) -> KernelDirs:
    """Fork the janitor of `dirs` (no thread and no zmq context may exist yet); `dirs` with
    its pid.

    The write end of its pipe stays open in this process, and in every process forked from
    it, until exit: that is the signal."""
    alive_r, alive_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the janitor; tested through killed kernels
        code = 0
        try:
            os.close(alive_w)
            _janitor(dirs, kernel_id, alive_r)
        except BaseException:  # noqa: BLE001 - nowhere to report to; the sweep retries
            code = 1
        finally:
            os._exit(code)
    os.close(alive_r)
    return dataclasses.replace(dirs, janitor_pid=pid)


def _janitor(dirs: KernelDirs, kernel_id: str, alive_r: int) -> None:
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # It keeps nothing of the kernel open (a reader of the kernel's stderr, say, sees its
    # end when the kernel's processes end, not when the janitor does).
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, alive_r)
    os.closerange(alive_r + 1, os.sysconf("SC_OPEN_MAX"))
    set_title(title("janitor", kernel_id))
    remove_dead_kernels_files()
    # Written once the sweep is done: whoever reads it may wait for the janitor to end.
    dirs.janitor.write_text(f"{os.getpid()}\n", encoding="ascii")
    while os.read(alive_r, 4096):
        pass  # nobody writes; only end of file matters
    dirs.remove()


def remove_dead_kernels_files() -> list[Path]:
    """Remove this user's kernel roots and segment directories whose kernel no longer runs;
    the paths removed."""
    from mpkernel.snapshots import segments

    removed = []
    uid = os.getuid()
    candidates = [(path, _pid_in_name(path)) for path in Path(tempfile.gettempdir()).iterdir()]
    candidates += [(path, segments.owner_of(path)) for path in segments.kernel_dirs()]
    for path, pid in candidates:
        if pid is None:
            continue
        try:
            if path.lstat().st_uid != uid or owner_alive(pid, path):
                continue
        except OSError:
            continue  # gone meanwhile
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _pid_in_name(path: Path) -> int | None:
    m = _LEFTOVER_RE.fullmatch(path.name)
    return int(m.group(1)) if m is not None else None


def owner_alive(pid: int, path: Path) -> bool:
    """Whether the kernel `pid` that made `path` still runs: a zombie does not, nor a process
    that reused its pid after `path` was made."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return proc.create_time() <= path.lstat().st_ctime + 1
    except (psutil.NoSuchProcess, FileNotFoundError):
        return False
    except psutil.AccessDenied:
        return True
