"""The forkserver, forked from the kernel at its very start.

multiprocess starts its forkserver by exec'ing a fresh interpreter, which imports
everything again (its own 16-17 MiB of memory, measured as USS) and starts a resource
tracker process beside it (about 12 MiB of PSS). Forked instead, from the kernel before
any thread or zmq context exists (docs/architecture.md section 1: workers never fork from a process
holding either), the server shares the interpreter's pages with the kernel, and it imports its
preload on the other core while the kernel goes on starting. It then runs multiprocess'
own server loop (`multiprocess.forkserver.main`), so `Process.start()` works unchanged
once `adopt` has told multiprocess where the server listens.

(Forked from the command line, before the kernel's modules are imported, it broke the
debugger's interrupt-while-paused test for a reason not yet found; the kernel forks it at
the start of `Kernel.run`, where the exec'd server was started before.)

The resource tracker is not started at all: mpkernel creates none of the named
semaphores or shared memory it tracks (snapshot segments have their own cleanup), and the
processes multiprocess starts get /dev/null as its channel.

The listening socket is a file in the kernel's 0700 root (`mpkernel.kernel_dirs`): whoever
can connect to it can have the server run code as this user, so no abstract socket. It goes
when the server ends (every user of it has closed the "alive" pipe), with the kernel's root,
or with the janitor when the kernel was killed.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mpkernel.titles import set_title, title

if TYPE_CHECKING:
    from mpkernel.config.model import WorkerConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Forkserver:
    address: str
    alive_w: int
    pid: int
    preload: tuple[str, ...]


def start(preload: Sequence[str], address: Path, kernel_id: str = "") -> Forkserver:
    """Fork the server now; the caller must have no thread and no zmq context yet."""
    # The preload (the worker runtime, the handler modules) and multiprocess with dill
    # (which the kernel needs to start a worker) are imported before the fork: their pages
    # are shared rather than the server's own, and a worker starts without those imports.
    # A module that fails here fails again in the server, where its workers report it.
    importlib.import_module("multiprocess.forkserver")
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - a handler's import error is its workers'
            log.warning("preloading %s for the workers failed: %s: %s", name, type(e).__name__, e)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(address))
    listener.listen()
    alive_r, alive_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the server process; tested through worker starts
        _serve(listener, alive_r, alive_w, address, list(preload), kernel_id)
    listener.close()
    os.close(alive_r)
    return Forkserver(str(address), alive_w, pid, tuple(preload))


def _serve(
    listener: socket.socket,
    alive_r: int,
    alive_w: int,
    address: Path,
    preload: list[str],
    kernel_id: str,
) -> None:
    # An interrupt sent to the kernel's process group before the preload's signals module
    # is imported must not end the server.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = 0
    own_pid = os.getpid()
    try:
        os.close(alive_w)
        set_title(title("forkserver", kernel_id))
        from multiprocess import forkserver

        forkserver.main(listener.fileno(), alive_r, preload)
    except SystemExit:
        pass  # every user closed the alive pipe
    except BaseException:  # noqa: BLE001 - the server's last words, then it exits
        traceback.print_exc(file=sys.__stderr__)
        code = 1
    finally:
        # Forked children leave through os._exit inside the server loop; only the
        # server itself gets here.
        if os.getpid() == own_pid:
            address.unlink(missing_ok=True)
        os._exit(code)


def start_for(
    workers: Sequence[WorkerConfig], address: Path, kernel_id: str = ""
) -> Forkserver | None:
    """The server for the enabled `forkserver` workers (None: there is none), preloading
    the worker runtime and their handler modules."""
    forked = [w for w in workers if w.enabled and w.start_method == "forkserver"]
    if not forked:
        return None
    handlers = {w.handler.partition(":")[0] for w in forked}
    # The signals module first: the server and every worker ignore SIGINT from the start.
    preload = ["mpkernel.supervision.forkserver_signals", "mpkernel.supervision.runtime"]
    return start(preload + sorted(handlers), address, kernel_id)


# The server `adopt` was given, until `use_in_multiprocess` hands it over.
_adopted: list[Forkserver | None] = []


def adopt(server: Forkserver | None) -> None:
    """Have multiprocess use `server` for its forkserver context, and no resource tracker
    (in the kernel, once). Applied when the first worker starts (without a forkserver,
    multiprocess is not imported before)."""
    _adopted[:] = [server]


def use_in_multiprocess() -> None:
    """Apply what `adopt` said (before multiprocess starts a process; idempotent)."""
    if not _adopted:
        return
    server = _adopted.pop()
    from multiprocess import forkserver, resource_tracker

    if server is not None:
        state = forkserver._forkserver
        state._forkserver_address = server.address
        state._forkserver_alive_fd = server.alive_w
        state._forkserver_pid = server.pid
        state._preload_modules = list(server.preload)
    tracker = resource_tracker._resource_tracker
    with contextlib.suppress(AttributeError):
        if tracker._fd is None:
            # Its liveness probe writes here and succeeds; nothing is ever tracked.
            tracker._fd = os.open(os.devnull, os.O_WRONLY)


def start_forkserver(preload: list[str]) -> None:
    """Start the forkserver now, before any thread or zmq context exists."""
    import multiprocess

    ctx = multiprocess.get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    from multiprocess import forkserver

    forkserver.ensure_running()


def main_module_has_a_spec() -> None:
    """IPython's `%reset` empties the user's `__main__`, its `__spec__` included, and
    starting a spawned or forkserver child reads `__main__.__spec__`: without this, no
    worker would start after a reset (Positron's "clear all" runs `%reset -sf`). None is
    what a script's `__main__` has, and it names no file for the child to run."""
    main = sys.modules.get("__main__")
    if main is not None and not hasattr(main, "__spec__"):
        main.__spec__ = None
