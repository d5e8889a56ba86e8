"""Workers forked from the kernel's main thread: a viewer that shares the user's table.

A data explorer needs the whole table, but not a copy of it. Forked from the main thread
between executions (or inside `mpkernel.view` in a cell), the child sees the namespace as
it was at that instant and shares every page of it with the kernel until one side writes
one (copy-on-write, the model of Redis' background save). The child becomes an ordinary
worker (its own pipes, limits, crash handling): `ForkSite.fork` returns what the io
thread's supervisor needs to adopt it.

Forking a process that has threads leaves the child with only the forking thread; every
lock another thread held stays held there. So the child touches nothing but its own pipe
and the object:

- SIGINT is blocked across the fork and ignored in the child before it is unblocked (the
  kernel's handler would raise KeyboardInterrupt in a stranger's stack);
- fd 1 and 2 point at /dev/null at once (the kernel's are captured into the user's
  output), then at the child's own forwarder;
- tracing (the debugger) and profiling are switched off, and `posix.fork` is called, not
  `os.fork`, which debugpy replaces to attach children to the debug session;
- the parent's objects are frozen out of the garbage collector (`gc.freeze`): a collection
  would write into every page that holds a container, copying the user's data;
- zmq: a new context; the kernel's sockets are never touched (pyzmq does not close a
  parent's sockets in a child);
- polars: its thread pool does not exist in the child and hangs the first parallel call,
  so handlers ask `forked()` and use pyarrow there (`to_arrow()` needs no pool);
- the child never returns into the kernel's stack: it leaves through `os._exit`.

Workers exit when their liveness pipe's write end closes; the child closes its copy of
its own. Copies of older workers' write ends that it inherited keep those alive at most
as long as itself, which ends with the kernel.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import os
import posix
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpkernel.supervision.runtime import WorkerSpec

if TYPE_CHECKING:
    from mpkernel.config.model import Config

log = logging.getLogger(__name__)

_forked = False


def forked() -> bool:
    """Whether this process is a worker forked from the kernel (no polars pool here)."""
    return _forked


@dataclass(frozen=True, slots=True)
class ForkedWorker:
    """A child forked for a comm, for the io thread to adopt as a worker."""

    spec: WorkerSpec
    pid: int
    alive_w: int  # the liveness pipe's write end: closing it ends the child


class ForkSite:
    """Forks viewers from the main thread; the pipes live in a 0700 directory of its own,
    made at the first fork and removed by `close` (kernel shutdown)."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._log_level = config.kernel.log_level
        self._dir: Path | None = None
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def viewer(self, target: str, subject: Any) -> ForkedWorker | None:
        """A worker forked for a comm on `target` about `subject`, when its worker is
        configured so (`subject = "fork"`); None: the subject is to be copied. A fork that
        fails (no memory for the page tables, say) is logged and copies instead."""
        cfg = self._config.worker_for_target(target)
        if cfg is None or not cfg.forks_for_subject:
            return None
        try:
            return self.fork(cfg.name, cfg.target, cfg.handler, subject)
        except OSError as e:
            log.warning("forking a worker for %s failed (%s): its object is copied", target, e)
            return None

    def fork(self, name: str, target: str, handler: str, subject: Any) -> ForkedWorker:
        """Fork a worker serving `target` with `handler` about `subject` (main thread)."""
        with self._lock:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="mpk-fork-"))
            wid = f"{name}-f{next(self._counter)}"
            directory = self._dir
        spec = WorkerSpec(
            name=name,
            target=target,
            handler=handler,
            in_addr=f"ipc://{directory}/{wid}.in",
            out_addr=f"ipc://{directory}/{wid}.out",
            token=os.urandom(16),
            log_level=self._log_level,
        )
        alive_r, alive_w = os.pipe()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pid = posix.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(alive_r)
            os.close(alive_w)
            raise
        if pid == 0:  # pragma: no cover - the child; tested through real forks
            _child(spec, alive_r, alive_w, mask, subject)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(alive_r)
        return ForkedWorker(spec, pid, alive_w)

    def close(self) -> None:
        with self._lock:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None


def _child(
    spec: WorkerSpec, alive_r: int, alive_w: int, mask: set[int | signal.Signals], subject: Any
) -> None:
    global _forked
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)
        threading.setprofile(None)
        gc.freeze()
        os.close(alive_w)
        _forked = True
        from mpkernel.supervision.runtime import run_worker

        run_worker(spec, alive_r, decode_subject=lambda _payload: subject, snapshots=False)
    except BaseException:  # noqa: BLE001 - the child's last words go to its own log
        with contextlib.suppress(BaseException):
            traceback.print_exc(file=sys.stderr)
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
