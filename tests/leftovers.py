"""What kernels leave on disk: the session-level check that the suite leaves none.

The tests' kernels get a temporary directory of the session's own (``TMPDIR``), so whatever
appears there is theirs. At the end of the session every entry of mpkernel's there (a kernel's
root ``mpk-<pid>-*``, and the directories older versions made beside it) that was not there at
the start and whose kernel no longer runs is a leftover; so is a snapshot segment directory in
the tmpfs (``mpkernel-<uid>-<pid>``) of a kernel the session started (the tmpfs is shared with
every other kernel of this user on the machine). Janitors still at work are waited for first
(their pid is in the root they are removing), so a kernel killed by the last test is not
reported.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import psutil

from mpkernel.kernel_dirs import owner_alive
from mpkernel.snapshots import segments

#: how long a janitor may take to remove what its kernel left (a liveness bound)
JANITOR_TIMEOUT = 30.0

# A kernel's root, and what earlier versions made: forkserver and worker pipe directories
# (no pid in their name), forked viewers' pipes and debugger cell files.
_OURS = re.compile(r"mpk-(\d+)-\w+|mpk-fork-(\d+)-\w+|mpkernel_(\d+)|mpk-fs-\w+|mpk-\w{8}")


@dataclass(frozen=True, slots=True)
class Entry:
    path: Path
    pid: int | None  # the kernel that made it, when its name says

    def alive(self) -> bool:
        return self.pid is not None and owner_alive(self.pid, self.path)


def entries(tmp: Path) -> set[Entry]:
    """mpkernel's entries in `tmp` and in the segments' tmpfs."""
    found = set()
    with contextlib.suppress(FileNotFoundError):
        for path in tmp.iterdir():
            m = _OURS.fullmatch(path.name)
            if m is not None:
                pid = next((int(g) for g in m.groups() if g is not None), None)
                found.add(Entry(path, pid))
    for path in segments.kernel_dirs():
        found.add(Entry(path, segments.owner_of(path)))
    return found


def wait_for_janitors(found: set[Entry]) -> None:
    """Wait until the janitors of the roots in `found` are done (or the bound is past)."""
    procs = []
    for entry in found:
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            text = (entry.path / "janitor.pid").read_text(encoding="ascii")
            procs.append(psutil.Process(int(text)))
    psutil.wait_procs(procs, timeout=JANITOR_TIMEOUT)


def left_behind(before: set[Entry], tmp: Path, kernels: Collection[int]) -> list[Path]:
    """What appeared since `before` and remains though its kernel is gone: in `tmp`, and
    in the tmpfs for the `kernels` (pids) of this session."""

    def new() -> set[Entry]:
        found = {e for e in entries(tmp) - before if not e.alive()}
        return {e for e in found if e.path.is_relative_to(tmp) or e.pid in kernels}

    left = new()
    if left:
        wait_for_janitors(left)
        left = new()
    return sorted(e.path for e in left if e.path.exists())


def private_tmp(parent: Path) -> Path:
    """A temporary directory for the session's kernels (``TMPDIR``), made now."""
    tmp = parent / "tmp"
    tmp.mkdir(mode=0o700)
    os.environ["TMPDIR"] = str(tmp)
    return tmp


__all__ = ["Entry", "entries", "left_behind", "private_tmp"]
