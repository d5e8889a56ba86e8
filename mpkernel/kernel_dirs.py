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
then removes the root and the segments and exits. It is `/bin/sh`, exec'd: a forked Python
process would come to own every page the kernel writes after the fork (about 8 MiB, measured
as USS), a shell costs a fraction of one. Its command line starts with
``mpkernel janitor <kernel id>``.

What kernels that died with their janitor left (a root or segment directory whose kernel no
longer runs) is removed by the next kernel, in the background once it is ready
(`remove_dead_kernels_files`): the one sweep of leftovers.

    kernel ──fork──> janitor (setsid; reads `alive` until EOF, then removes the root)
      │ holds alive_w
      ├── forkserver (inherits alive_w) ── workers (inherit alive_w)
      └── forked viewers (inherit alive_w)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mpkernel.titles import title

log = logging.getLogger(__name__)

ROOT_PREFIX: Final = "mpk-"
# Ours, with the pid of the kernel that made them: roots, and the pipes and debugger
# directories that earlier versions kept beside them.
# (A root always has its random part: "mpk-<digits>" alone may be an older version's
# worker pipe directory, whose random name happened to be all digits.)
_LEFTOVER_RE: Final = re.compile(r"mpk-(?:fork-)?(\d+)-\w+|mpkernel_(\d+)")


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


# Unix socket paths (the forkserver's, the workers' ipc:// pipes) hold at most 107 bytes,
# and the longest one below a root takes about 40 ("workers/data_explorer-1234.out"): a
# root longer than this goes to the system's temporary directory instead of $TMPDIR.
_ROOT_MAX = 64
_SHORT_TMP = "/tmp"


def parents() -> list[Path]:
    """Where kernel roots are made: $TMPDIR, and /tmp for a $TMPDIR too long for sockets."""
    found = [Path(tempfile.gettempdir())]
    short = Path(_SHORT_TMP)
    if short not in found and short.is_dir():
        found.append(short)
    return found


def create() -> KernelDirs:
    """This kernel's root, made now (0700)."""
    pid = os.getpid()
    parent = tempfile.gettempdir()
    root_length = len(str(Path(parent) / f"{ROOT_PREFIX}{pid}-")) + 8  # mkdtemp adds 8
    if root_length > _ROOT_MAX and os.access(_SHORT_TMP, os.W_OK):
        parent = _SHORT_TMP
    return KernelDirs(Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{pid}-", dir=parent)), pid)


# Records its pid (for whoever waits for it), waits for end of file on stdin, removes.
_JANITOR_SCRIPT: Final = (
    'echo $$ > "$1/janitor.pid"; while read -r _; do :; done; rm -rf -- "$2" "$1"'
)


def start_janitor(dirs: KernelDirs, kernel_id: str) -> KernelDirs:
    """Fork the janitor of `dirs` (no thread and no zmq context may exist yet); `dirs` with
    its pid.

    The write end of its pipe stays open in this process, and in every process forked from
    it, until exit: that is the signal."""
    from mpkernel.snapshots import segments

    argv = [
        title("janitor", kernel_id),
        "-c",
        _JANITOR_SCRIPT,
        "mpkernel-janitor",
        str(dirs.root),
        str(segments.kernel_dir_path(dirs.kernel_pid)),
    ]
    alive_r, _alive_w = os.pipe()  # the write end stays open for the kernel's life
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the janitor; tested through killed kernels
        try:
            os.setsid()
            # It keeps nothing of the kernel open but the pipe, as its stdin.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(alive_r, 0)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # kept across exec
            os.execv(_SHELL, argv)
        finally:
            os._exit(1)
    os.close(alive_r)
    return dataclasses.replace(dirs, janitor_pid=pid)


_SHELL: Final = "/bin/sh"


def sweep_in_background() -> None:
    """`remove_dead_kernels_files` on a daemon thread (a failure is logged)."""
    from mpkernel.threads import hidden_from_debugger, start_without_sigint

    def sweep() -> None:
        try:
            removed = remove_dead_kernels_files()
        except Exception:
            log.exception("removing what killed kernels left failed")
            return
        if removed:
            log.info("removed what %d killed kernels left: %s", len(removed), removed)

    start_without_sigint(
        hidden_from_debugger(threading.Thread(target=sweep, name="mpkernel-sweep", daemon=True))
    )


def remove_dead_kernels_files() -> list[Path]:
    """Remove this user's kernel roots and segment directories whose kernel no longer runs;
    the paths removed."""
    from mpkernel.snapshots import segments

    removed = []
    uid = os.getuid()
    candidates = [(path, _pid_in_name(path)) for parent in parents() for path in parent.iterdir()]
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
    return int(m.group(1) or m.group(2)) if m is not None else None


def owner_alive(pid: int, path: Path) -> bool:
    """Whether the kernel `pid` that made `path` still runs: a zombie does not, nor a process
    that reused its pid after `path` was made."""
    import psutil  # in the kernel's background sweep, not on its way to start

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return proc.create_time() <= path.lstat().st_ctime + 1
    except (psutil.NoSuchProcess, FileNotFoundError):
        return False
    except psutil.AccessDenied:
        return True
