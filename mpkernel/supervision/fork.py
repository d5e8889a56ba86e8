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
  kernel's handler would raise KeyboardInterrupt in a stranger's stack); every other
  Python signal handler goes back to the default (the kernel's SIGTERM handler removes the
  kernel's directories), and no signal wakes the kernel's wakeup fd;
- fd 1 and 2 point at /dev/null at once (the kernel's are captured into the user's
  output), then at the child's own forwarder;
- tracing (the debugger) and profiling are switched off, and `posix.fork` is called, not
  `os.fork`, which debugpy replaces to attach children to the debug session;
- the parent's objects are frozen out of the garbage collector (`gc.freeze`): a collection
  would write into every page that holds a container, copying the user's data;
- zmq: a new context; the kernel's sockets are never touched (pyzmq does not close a
  parent's sockets in a child);
- polars: its thread pool does not exist in the child and hangs the first parallel call,
  so handlers ask `forked()` and use pyarrow there (polars' data leaves it as Arrow views,
  `to_arrow` at the newest level; the default level converts strings on the pool);
- an interrupt during the fork is held (`interrupt_shield`) until the child is handed to
  the io thread, which adopts and reaps it: no child is forked and then forgotten;
- the child never returns into the kernel's stack: it leaves through `os._exit`.

Workers exit when their liveness pipe's write end closes; the child closes its copy of
its own. Copies of older workers' write ends that it inherited keep those alive at most
as long as itself, which ends with the kernel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import logging
import os
import posix
import shutil
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpkernel.interrupt_shield import shielded
from mpkernel.supervision.runtime import HandlerImportError, WorkerSpec, load_handler_class
from mpkernel.titles import title

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mpkernel.config.model import Config
    from mpkernel.funnel.outbox import Outbox
    from mpkernel.wire import Header

log = logging.getLogger(__name__)

# The supervisor sees a forked child's exit through a pidfd (Linux 5.3 and later); where
# there is none, viewers copy their object instead.
_CAN_WATCH = hasattr(os, "pidfd_open")

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
    # for a viewer that follows a variable: the main thread stops following it (any thread)
    forget: Callable[[], None] | None = None


@dataclass(slots=True)
class _Followed:
    """A forked viewer that shows a variable of the namespace."""

    variable: str
    target: str
    obj_id: int  # the object it was forked with: another one under the name is news
    fresh: bool = True  # forked during the execution that has not ended yet


class ForkSite:
    """Forks viewers from the main thread, and forks them afresh after a cell that may
    have changed what they show (`after_execute`). The pipes live in `directory` (0700,
    in the kernel's root), made at the first fork and removed by `close` (kernel shutdown);
    `kernel_id` names the children's processes."""

    def __init__(
        self,
        config: Config,
        outbox: Outbox,
        user_ns: Mapping[str, Any],
        directory: Path,
        kernel_id: str = "",
    ) -> None:
        self._config = config
        self._outbox = outbox
        self._user_ns = user_ns
        self._log_level = config.kernel.log_level
        self._directory = directory
        self._made = False
        self._kernel_id = kernel_id
        self._counter = itertools.count(1)
        self._lock = threading.Lock()  # `_followed` loses closed comms on the io thread
        self._followed: dict[str, _Followed] = {}

    def viewer(
        self,
        target: str,
        subject: Any,
        comm_id: str,
        variable: str | None = None,
        *,
        fresh: bool = True,
    ) -> ForkedWorker | None:
        """A worker forked for the comm `comm_id` on `target` about `subject`, when its
        worker is configured so (`subject = "fork"`); None: the subject is to be copied.
        With `variable`, the viewer follows that name across executions. A fork that fails
        (no memory for the page tables, say) is logged and copies instead."""
        cfg = self._config.worker_for_target(target)
        if cfg is None or not cfg.forks_for_subject or not _CAN_WATCH:
            return None
        try:
            # Imported here once, its modules are the children's already (shared pages):
            # a viewer's fresh fork after each edit starts without importing them.
            load_handler_class(cfg.handler)
            import mpkernel.supervision.worker_loop  # noqa: F401  # the children's loop, likewise
        except HandlerImportError as e:
            log.warning("the handler of %s cannot be imported here (%s)", target, e)
        try:
            forked = self.fork(cfg.name, cfg.target, cfg.handler, subject)
        except OSError as e:
            log.warning("forking a worker for %s failed (%s): its object is copied", target, e)
            return None
        if variable is not None:
            with self._lock:
                self._followed[comm_id] = _Followed(variable, target, id(subject), fresh)
            forked = dataclasses.replace(forked, forget=_Forget(self, comm_id))
        return forked

    def after_execute(self, cell: str | None, parent: Header | None = None) -> None:
        """After an execution (`cell`: its code), or after the kernel deleted names
        (None): each viewer whose variable the cell may have changed gets a fresh fork,
        which takes its comm over; a viewer whose variable is gone is closed. What they
        send about it is parented to `parent` (the execution), outside its bracket."""
        with self._lock:
            followed = list(self._followed.items())
        if not followed:
            return
        from mpkernel.funnel.items import ReplaceViewer
        from mpkernel.snapshots import names

        ns = self._user_ns
        touched: set[str] | None = set()
        if cell is not None:
            read = names.read_cell(cell)
            touched = None if read.dynamic else names.reach(read.names, ns)
        for comm_id, view in followed:
            if view.fresh:
                # Forked by this very cell (`mpkernel.view(df)`): as of the view call.
                view.fresh = False
                continue
            value = ns.get(view.variable, _MISSING)
            forget = _Forget(self, comm_id)
            if value is _MISSING:
                forget()
                self._outbox.put(ReplaceViewer(comm_id, None, forget, parent))
                continue
            if id(value) == view.obj_id and touched is not None and view.variable not in touched:
                continue
            with shielded():  # the fork reaches the io thread whole
                forked = self.viewer(view.target, value, comm_id, view.variable, fresh=False)
                if forked is not None:
                    self._outbox.put(ReplaceViewer(comm_id, forked, forget, parent))

    def forget(self, comm_id: str) -> None:
        """The viewer's comm is closed (any thread)."""
        with self._lock:
            self._followed.pop(comm_id, None)

    def fork(self, name: str, target: str, handler: str, subject: Any) -> ForkedWorker:
        """Fork a worker serving `target` with `handler` about `subject` (main thread)."""
        with self._lock:
            if not self._made:
                self._directory.mkdir(mode=0o700, exist_ok=True)
                self._made = True
            wid = f"{name}-f{next(self._counter)}"
            directory = self._directory
        spec = WorkerSpec(
            name=name,
            target=target,
            handler=handler,
            in_addr=f"ipc://{directory}/{wid}.in",
            out_addr=f"ipc://{directory}/{wid}.out",
            token=os.urandom(16),
            log_level=self._log_level,
            title=title("viewer", self._kernel_id, name),
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
            sys.settrace(None)  # before any call: a debugger's tracer must not see one
            _child(spec, alive_r, alive_w, mask, subject)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(alive_r)
        return ForkedWorker(spec, pid, alive_w)

    def close(self) -> None:
        with self._lock:
            if self._made:
                shutil.rmtree(self._directory, ignore_errors=True)
                self._made = False


_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class _Forget:
    site: ForkSite
    comm_id: str

    def __call__(self) -> None:
        self.site.forget(self.comm_id)


def _reset_signals() -> None:
    """The kernel's signal handlers are not the child's: its SIGTERM handler would remove
    the kernel's directories, and user code's handlers would run in a stranger's process.
    SIGINT is ignored (the kernel's process group receives every interrupt)."""
    signal.set_wakeup_fd(-1)
    for signum in signal.valid_signals():
        if signum == signal.SIGINT:
            signal.signal(signum, signal.SIG_IGN)
            continue
        with contextlib.suppress(OSError, ValueError):
            if callable(signal.getsignal(signum)):
                signal.signal(signum, signal.SIG_DFL)


def _child(
    spec: WorkerSpec, alive_r: int, alive_w: int, mask: set[int | signal.Signals], subject: Any
) -> None:
    global _forked
    code = 0
    try:
        _reset_signals()
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
